"""Messages sent outside a request with several gateway instances, or one restarted: they live in
the database, so a restart loses nothing and any instance answers (real SQLite, PostgreSQL, Redis)."""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.messages import OutboundMessage
from gateway.testing import SIGNATURE_HEADER, RestDriver, runtime_of, sign


async def _poll(client: Any, sender: str, after: int = 0, wait: int = 0) -> dict[str, Any]:
    path = f"/channels/rest/outbox/{sender}?after={after}" + (f"&wait={wait}" if wait else "")
    response = await client.get(path, headers={SIGNATURE_HEADER: sign(path.encode())})
    assert response.status == 200, await response.text()
    return await response.json()


async def _conversation_of(client: Any, channel: str, sender: str) -> str:
    runtime = runtime_of(client)
    (conversation,) = await runtime.store.conversations(customer_id=await runtime.store.customer_for(channel, sender))
    return conversation.id


async def _agent_says(client: Any, conversation_id: str, text: str) -> None:
    await runtime_of(client).pipeline.push(conversation_id, [OutboundMessage(text=text)], author="agent:anna")


async def test_the_rest_outbox_survives_a_restart(demo_settings, gateway_client) -> None:
    settings = demo_settings()  # one SQLite file, used by one instance after the other
    first = await gateway_client(settings)
    await RestDriver(first, sender="bob").say("hello")
    conversation = await _conversation_of(first, "rest", "bob")
    await _agent_says(first, conversation, "Hi, Anna here.")
    await _agent_says(first, conversation, "Still there?")
    read = await _poll(first, "bob")
    assert [m["text"] for m in read["messages"]] == ["Hi, Anna here.", "Still there?"]
    await first.close()  # the gateway stops before the integrator acknowledged anything

    second = await gateway_client(settings)
    again = await _poll(second, "bob")
    assert again == read  # the same messages under the same numbers: the stored cursor still holds
    await _agent_says(second, conversation, "Bye!")
    after = await _poll(second, "bob", after=read["messages"][0]["seq"])
    assert [m["text"] for m in after["messages"]] == ["Still there?", "Bye!"]
    assert after["messages"][-1]["seq"] > read["cursor"]


async def test_two_instances_share_the_rest_outbox(demo_settings, gateway_client, pg_url, pg_schema, redis_url) -> None:
    settings = demo_settings(database={"url": pg_url, "schema": pg_schema}, coordination={"redis_url": redis_url})
    first = await gateway_client(settings)
    second = await gateway_client(settings)
    await RestDriver(first, sender="bob").say("hello")
    conversation = await _conversation_of(first, "rest", "bob")

    await _agent_says(first, conversation, "Hi, Anna here.")
    polled = await _poll(second, "bob")
    assert [m["text"] for m in polled["messages"]] == ["Hi, Anna here."]

    # A long poll on the second instance wakes when the first queues. Its own periodic look at
    # the database is pushed far out, so only the Redis wake-up can end the wait with a message.
    outbox = runtime_of(second).channels["rest"].outbox
    outbox.recheck_s = 600
    waiting = asyncio.create_task(_poll(second, "bob", after=polled["cursor"], wait=30))
    for _ in range(500):  # until the poll has looked once and waits
        if outbox.wakeups.waiters("bob"):
            break
        await asyncio.sleep(0.01)
    assert outbox.wakeups.waiters("bob") == 1
    await _agent_says(first, conversation, "Anything else?")
    later = await waiting
    assert [m["text"] for m in later["messages"]] == ["Anything else?"]
    # The cursor acknowledged the first message on both instances.
    assert [m["text"] for m in (await _poll(first, "bob", after=polled["cursor"]))["messages"]] == ["Anything else?"]
    assert (await _poll(first, "bob", after=later["cursor"]))["messages"] == []
