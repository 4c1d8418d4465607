"""Two gateway instances on one database (ordering through the real Redis): the desk's state is in
the database, so routing, the agent API and the acknowledgement work from either instance, and
sweeping on both at once still acknowledges the waiting customer once."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from gateway.testing import make_settings, runtime_of

from .desk_plugin import DeskTestPlugin
from .test_integration import AGENTS, ANNA, Customer

async def test_two_instances_share_the_desk(tmp_path, gateway_client, redis_url):
    settings = make_settings(
        tmp_path,
        plugins=[],
        channels={"deskchat": {}},
        bots=[{"use": "desk_handoff"}],
        crm=[{"use": "desk_crm"}],
        agents=AGENTS,
        coordination={"redis_url": redis_url},
    )
    first = await gateway_client(settings, extra_plugins=[DeskTestPlugin()])
    second = await gateway_client(settings, extra_plugins=[DeskTestPlugin()])
    runtimes = [runtime_of(first), runtime_of(second)]

    maria = Customer(first, "maria")
    assert await maria.say("I need an agent for my bill") == ["I'm passing you to Anna, who can see our conversation so far."]
    # Anna works on the other instance: she sees the conversation and its history there.
    mine = await (await second.get("/agents/me/conversations", headers=ANNA)).json()
    (summary,) = mine["assigned"]
    assert await maria.say("still there?") == []

    later = datetime.now(timezone.utc) + timedelta(seconds=31)
    for runtime in runtimes:
        runtime.desk.clock = lambda: later
    sent = await asyncio.gather(*(r.desk.sweep_once() for r in runtimes))
    assert sorted(sent) == [0, 1]
    delivered = [r.channels["deskchat"].texts_for("maria") for r in runtimes]
    assert sorted(delivered, key=len) == [[], [runtimes[0].settings.agents.ack_text]]

    response = await second.post(f"/agents/conversations/{summary['id']}/messages", json={"text": "Eccomi!"}, headers=ANNA)
    assert response.status == 200, await response.text()
    assert runtimes[1].channels["deskchat"].texts_for("maria")[-1] == "Eccomi!"
    assert sum(await asyncio.gather(*(r.desk.sweep_once() for r in runtimes))) == 0
