"""Messages sent outside a request with several gateway instances, or one restarted: they live in
the database, so a restart loses nothing and any instance answers (real SQLite, PostgreSQL, Redis)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.errors import GatewayError
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


WS = "/channels/webchat/ws"


async def _hello(ws: Any, session: str | None = None) -> str:
    await ws.send_json({"type": "hello", "session": session})
    ready = await ws.receive_json(timeout=10)
    assert ready["type"] == "ready"
    return ready["session"]


async def test_an_agent_reply_made_on_one_instance_reaches_a_page_on_another(
    demo_settings, gateway_client, pg_url, pg_schema, redis_url, monkeypatch
) -> None:
    # The relay's periodic look at the database is pushed far out: only the Redis announcement
    # can bring the reply to the page within the test.
    monkeypatch.setattr("voicegate_webchat.channel.RELAY_SWEEP_S", 600.0)
    settings = demo_settings(database={"url": pg_url, "schema": pg_schema}, coordination={"redis_url": redis_url})
    first = await gateway_client(settings)
    second = await gateway_client(settings)
    async with first.ws_connect(WS) as page:  # the page's socket is on the first instance
        session = await _hello(page)
        await page.send_json({"type": "message", "id": "m1", "text": "hello"})
        assert (await page.receive_json(timeout=10))["type"] == "reply"
        conversation = await _conversation_of(second, "webchat", session)

        # Made on the second instance, which has no socket for this session.
        await _agent_says(second, conversation, "Hi, I'm Anna.")
        # A bound for the whole wait: the socket's own read timeout restarts at every heartbeat ping.
        push = await asyncio.wait_for(page.receive_json(), 30)
        assert push == {"type": "push", "messages": [{"text": "Hi, I'm Anna.", "buttons": []}]}
    assert await runtime_of(second).channels["webchat"].relay.store.pending(session) == 0

    # No instance holds a socket: the messages wait in the database, for a page on either instance.
    for _ in range(500):
        if not runtime_of(first).channels["webchat"].connected(session):
            break
        await asyncio.sleep(0.01)
    await _agent_says(second, conversation, "Are you still there?")
    await _agent_says(first, conversation, "I'll wait.")
    async with second.ws_connect(WS) as page:
        assert await _hello(page, session) == session
        push = await page.receive_json(timeout=10)
        assert [m["text"] for m in push["messages"]] == ["Are you still there?", "I'll wait."]
    assert await runtime_of(first).channels["webchat"].relay.store.pending(session) == 0


async def test_an_unreachable_redis_stops_start_up_with_what_to_do(demo_settings, gateway_client) -> None:
    settings = demo_settings(coordination={"redis_url": "redis://:hunter22@127.0.0.1:1/0"})  # nothing listens there
    with pytest.raises(GatewayError) as failure:
        await gateway_client(settings)
    message = str(failure.value)
    assert "coordination.redis_url" in message and "127.0.0.1:1" in message and "hunter22" not in message
