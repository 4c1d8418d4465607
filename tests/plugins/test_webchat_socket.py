"""The web chat channel through a real gateway: the page, the WebSocket protocol, pushes."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import aiohttp

from gateway.messages import OutboundMessage
from gateway.testing import runtime_of

WS = "/channels/webchat/ws"


async def hello(ws: aiohttp.ClientWebSocketResponse, session: str | None = None) -> dict[str, Any]:
    await ws.send_json({"type": "hello", "session": session})
    ready = await ws.receive_json(timeout=5)
    assert ready["type"] == "ready"
    return ready


async def say(ws: aiohttp.ClientWebSocketResponse, id_: str, **fields: Any) -> dict[str, Any]:
    await ws.send_json({"type": "message", "id": id_, **fields})
    return await ws.receive_json(timeout=10)


async def test_page_and_assets_are_served_with_the_selectors(demo_settings, gateway_client) -> None:
    client = await gateway_client(demo_settings(channels={"webchat": {"title": "Banca <Demo>"}}))
    page = await client.get("/channels/webchat/")
    html = await page.text()
    assert page.status == 200 and page.content_type == "text/html"
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    for selector in ('id="message-input"', 'id="send-button"', 'id="record-button"', 'id="recording-timer"',
                     'id="file-input"', 'data-max-upload-bytes="5242880"'):
        assert selector in html
    assert "Banca &lt;Demo&gt;" in html and "<Demo>" not in html
    script = await client.get("/channels/webchat/chat.js")
    assert script.status == 200 and "MediaRecorder" in await script.text() and "quick-reply" in await script.text()
    assert (await client.get("/channels/webchat/chat.css")).status == 200
    bare = await client.get("/channels/webchat", allow_redirects=False)
    assert bare.status == 308 and bare.headers["Location"] == "/channels/webchat/"


async def test_chat_over_the_socket_and_reconnect_keeps_the_conversation(demo_settings, gateway_client) -> None:
    client = await gateway_client(demo_settings())
    async with client.ws_connect(WS) as ws:
        ready = await hello(ws)
        session = ready["session"]
        assert len(session) >= 22 and ready["max_upload_bytes"] == 5 * 1024 * 1024
        reply = await say(ws, "a1", text="Ciao!")
        assert reply["type"] == "reply" and reply["in_reply_to"] == "a1"
        (message,) = reply["messages"]
        assert message["text"] == "Ciao! Come posso aiutarti?"
        assert [b["payload"] for b in message["buttons"]] == ["hours", "balance", "agent"]
    async with client.ws_connect(WS) as ws:
        assert (await hello(ws, session))["session"] == session
        # The button carries no language: the conversation's (Italian, from the first message) is kept.
        reply = await say(ws, "a2", button="hours")
        assert reply["messages"][0]["text"].startswith("Siamo aperti")
    store = runtime_of(client).store
    customer_id = await store.customer_for("webchat", session)
    conversations = await store.conversations(customer_id=customer_id)
    assert len(conversations) == 1 and await store.count_messages(conversations[0].id) == 4


async def test_a_malformed_session_id_gets_a_fresh_one(demo_settings, gateway_client) -> None:
    client = await gateway_client(demo_settings())
    async with client.ws_connect(WS) as ws:
        assert (await hello(ws, "short"))["session"] != "short"


async def test_voice_note_upload_and_the_size_limit(demo_settings, gateway_client) -> None:
    client = await gateway_client(demo_settings(channels={"webchat": {"max_upload_bytes": 2048}}))
    async with client.ws_connect(WS) as ws:
        await hello(ws)
        note = {"type": "audio", "mime": "audio/webm;codecs=opus", "data_base64": base64.b64encode(bytes(1500)).decode(),
                "duration_s": 1.2}
        reply = await say(ws, "n1", attachments=[note])
        assert reply["type"] == "reply" and "files" in reply["messages"][0]["text"]
        big = {**note, "data_base64": base64.b64encode(bytes(4000)).decode()}
        error = await say(ws, "n2", attachments=[big])
        assert error == {"type": "error", "in_reply_to": "n2", "error": "the file is too large (at most 2 KB)",
                         "hint": "Send a shorter recording or a smaller file"}
        # The socket stays usable after an error.
        assert (await say(ws, "n3", text="hello"))["type"] == "reply"


async def test_bad_frames_get_clear_errors(demo_settings, gateway_client) -> None:
    client = await gateway_client(demo_settings())
    async with client.ws_connect(WS) as ws:
        error = await say(ws, "x1", text="hi")
        assert error["type"] == "error" and "hello" in error["hint"]
        await ws.send_str("not json")
        assert "not JSON" in (await ws.receive_json(timeout=5))["error"]
        await ws.send_bytes(b"\x00\x01")
        assert "binary" in (await ws.receive_json(timeout=5))["error"]
        await hello(ws)
        assert "empty" in (await say(ws, "x2", text="  "))["error"]
        assert "'id'" in (await say(ws, "bad id!", text="hi"))["error"]
        attachment = {"type": "audio", "mime": "audio/webm", "data_base64": "@@@"}
        assert "base64" in (await say(ws, "x3", attachments=[attachment]))["error"]
    assert await runtime_of(client).store.count_messages() == 0


async def test_foreign_origins_cannot_open_the_socket(demo_settings, gateway_client) -> None:
    settings = demo_settings(channels={"webchat": {"allowed_origins": ["https://shop.example"]}})
    client = await gateway_client(settings)
    refused = await client.get(WS, headers={"Origin": "https://evil.example", "Connection": "Upgrade",
                                            "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                                            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert refused.status == 403 and "allowed_origins" in (await refused.json())["hint"]
    own = f"http://{client.host}:{client.port}"
    for origin in (own, "https://shop.example"):
        async with client.ws_connect(WS, headers={"Origin": origin}) as ws:
            await hello(ws)


async def test_agent_messages_are_pushed_or_kept_until_the_page_returns(demo_settings, gateway_client) -> None:
    client = await gateway_client(demo_settings())
    runtime = runtime_of(client)
    channel = runtime.channels["webchat"]
    async with client.ws_connect(WS) as ws:
        session = (await hello(ws))["session"]
        await say(ws, "p1", text="hello")
        customer_id = await runtime.store.customer_for("webchat", session)
        (conversation,) = await runtime.store.conversations(customer_id=customer_id)
        await runtime.pipeline.push(conversation.id, [OutboundMessage(text="Hi, Anna here.")], author="agent:anna")
        push = await ws.receive_json(timeout=5)
        assert push == {"type": "push", "messages": [{"text": "Hi, Anna here.", "buttons": []}]}
    for _ in range(500):  # the server notices the close asynchronously
        if not channel.connected(session):
            break
        await asyncio.sleep(0.01)
    assert channel.connected(session) == 0
    await runtime.pipeline.push(conversation.id, [OutboundMessage(text="Still there?")], author="agent:anna")
    async with client.ws_connect(WS) as ws:
        await hello(ws, session)
        assert (await ws.receive_json(timeout=5))["messages"][0]["text"] == "Still there?"


async def test_without_a_pending_queue_an_offline_delivery_is_recorded_as_failed(demo_settings, gateway_client) -> None:
    client = await gateway_client(demo_settings(channels={"webchat": {"pending_per_session": 0}}))
    runtime = runtime_of(client)
    async with client.ws_connect(WS) as ws:
        session = (await hello(ws))["session"]
        await say(ws, "f1", text="hello")
    for _ in range(500):
        if not runtime.channels["webchat"].connected(session):
            break
        await asyncio.sleep(0.01)
    (conversation,) = await runtime.store.conversations(customer_id=await runtime.store.customer_for("webchat", session))
    await runtime.pipeline.push(conversation.id, [OutboundMessage(text="Anyone there?")], author="agent:anna")
    events = [kind for kind, _, _ in await runtime.store.events(conversation.id)]
    assert "delivery_failed" in events
    texts = [m.body.get("text") for m in await runtime.store.history(conversation.id)]
    assert "Anyone there?" in texts  # stored all the same


async def test_closing_the_channel_closes_open_pages(demo_settings, gateway_client) -> None:
    client = await gateway_client(demo_settings())
    channel = runtime_of(client).channels["webchat"]
    async with client.ws_connect(WS) as ws:
        await hello(ws)
        await asyncio.wait_for(channel.close(), 10)
        closing = await ws.receive(timeout=5)
        assert (closing.type, closing.data) == (aiohttp.WSMsgType.CLOSE, 1001)  # "going away": the page reconnects


async def test_gateway_shut_down_closes_open_pages_first(demo_settings, gateway_client) -> None:
    # aiohttp waits for open WebSockets before its cleanup steps; the app's on_shutdown step
    # closes the channels first, so an open page does not hold shut-down for its whole timeout.
    client = await gateway_client(demo_settings())
    async with client.ws_connect(WS) as ws:
        await hello(ws)
        shutting_down = asyncio.create_task(client.server.close())
        closing = await ws.receive(timeout=5)
        assert (closing.type, closing.data) == (aiohttp.WSMsgType.CLOSE, 1001)
        await asyncio.wait_for(shutting_down, 10)


async def test_pending_messages_of_customers_who_never_return_expire(demo_settings, gateway_client) -> None:
    client = await gateway_client(demo_settings(channels={"webchat": {"pending_ttl_s": 60}}))
    channel = runtime_of(client).channels["webchat"]
    gone, fresh = "g" * 32, "f" * 32
    await channel.deliver(gone, [OutboundMessage(text="for someone who left")])
    later = channel.clock() + 3600
    channel.clock = lambda: later
    await channel.deliver(fresh, [OutboundMessage(text="for a new visitor")])
    async with client.ws_connect(WS) as ws:
        await hello(ws, gone)
        await ws.send_json({"type": "hello"})  # a second hello just repeats ready: nothing was pending
        assert (await ws.receive_json(timeout=5))["type"] == "ready"
    async with client.ws_connect(WS) as ws:
        await hello(ws, fresh)
        assert (await ws.receive_json(timeout=5))["messages"][0]["text"] == "for a new visitor"
