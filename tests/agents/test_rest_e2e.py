"""The product path end to end with the built-in plugins: a REST customer asks the demo bot for
an agent, the demo CRM's profile routes them (Italian + billing -> Anna), Anna reads the history
and answers over the agent API, and the customer receives it from the REST channel's outbox."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from gateway.testing import RestDriver, make_settings, runtime_of, sign

CONFIG = Path(__file__).resolve().parents[2] / "config"
ANNA = {"Authorization": "Bearer anna-token"}


async def _outbox(client: Any, sender: str, after: int = 0) -> dict[str, Any]:
    path = f"/channels/rest/outbox/{sender}?after={after}"
    response = await client.get(path, headers={"X-VoiceGate-Signature": sign(path.encode())})
    body = await response.json()
    assert response.status == 200, body
    return body


async def test_rest_customer_to_live_agent_and_back(tmp_path, gateway_client):
    settings = make_settings(
        tmp_path,
        plugins=["rest", "demo_bot", "demo_crm"],
        bots=[{"use": "demo", "settings": {"flows": str(CONFIG / "flows.yaml")}}],
        crm=[{"use": "demo", "settings": {"customers": str(CONFIG / "customers.yaml")}}],
        agents={
            "ack_after_s": 20,
            "sweep_interval_s": 3600,
            "team": [
                {"id": "anna", "name": "Anna", "skills": ["billing"], "languages": ["it"], "token": "anna-token"},
                {"id": "bob", "name": "Bob", "skills": ["general"], "languages": ["en", "it"], "token": "bob-token"},
            ],
            "templates": [{"name": "saluto", "text": "Ciao {first_name}, sono {agent_name}. Vedo il tuo profilo {tier}."}],
        },
    )
    client = await gateway_client(settings)
    desk = runtime_of(client).desk
    alice = RestDriver(client, sender="alice")  # Alice Rossi, Italian, tier gold in config/customers.yaml

    greeting = await alice.say("ciao")
    assert greeting and "Alice" in greeting[0]["text"]
    handoff = await alice.say("vorrei parlare con un operatore per la mia fattura")
    assert handoff[-1]["text"] == "I'm passing you to Anna, who can see our conversation so far."

    mine = await (await client.get("/agents/me/conversations", headers=ANNA)).json()
    (summary,) = mine["assigned"]
    assert summary["customer_name"] == "Alice Rossi" and summary["channel"] == "rest"
    detail = await (await client.get(f"/agents/conversations/{summary['id']}", headers=ANNA)).json()
    texts = [m["body"].get("text") for m in detail["messages"]]
    assert texts[0] == "ciao" and "vorrei parlare con un operatore per la mia fattura" in texts
    assert detail["customer"]["profile"]["attributes"]["tier"] == "gold"
    assert {"type": "handoff", "skill": "billing"}.items() <= {"type": detail["events"][-1]["type"], **detail["events"][-1]["data"]}.items()

    # The customer writes while waiting; the bot stays quiet; the slow agent triggers one ack.
    assert await alice.say("ci sei?") == []
    desk.clock = lambda: datetime.now(timezone.utc) + timedelta(seconds=21)
    assert await desk.sweep_once() == 1
    waiting = await _outbox(client, "alice")
    assert [m["text"] for m in waiting["messages"]] == [settings.agents.ack_text]

    response = await client.post(
        f"/agents/conversations/{summary['id']}/messages", json={"template": "saluto"}, headers=ANNA
    )
    assert response.status == 200, await response.text()
    answered = await _outbox(client, "alice", after=waiting["cursor"])
    assert [m["text"] for m in answered["messages"]] == ["Ciao Alice, sono Anna. Vedo il tuo profilo gold."]
    assert await desk.sweep_once() == 0  # the customer's turn now

    # Anna hands Alice back to the bot, which answers again in the same conversation.
    assert (await client.post(f"/agents/conversations/{summary['id']}/release", headers=ANNA)).status == 200
    hours = await alice.say("orari?")
    assert hours and "9:00" in hours[0]["text"]
