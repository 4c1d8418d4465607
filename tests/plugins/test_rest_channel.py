"""The REST channel through a real gateway: the documented contract, its errors, the outbox."""

from __future__ import annotations

import asyncio
import base64
import json

from gateway.testing import SIGNATURE_HEADER, TEST_SECRET, RestDriver, runtime_of, sign
from gateway.messages import OutboundMessage


async def error_of(response) -> dict:
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    data = await response.json()
    assert set(data) == {"error", "hint"} and data["error"] and data["hint"]
    return data


async def test_conversation_with_buttons(demo_settings, gateway_client) -> None:
    client = await gateway_client(demo_settings())
    bob = RestDriver(client, sender="bob")
    response = await bob.post({"sender": "bob", "message_id": "m-hello", "text": "Hello"})
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    replies = (await response.json())["replies"]
    assert replies == [{"text": "Hi Bob! How can I help?", "buttons": [
        {"title": "Opening hours", "payload": "hours"},
        {"title": "My balance", "payload": "balance"},
        {"title": "Talk to an agent", "payload": "agent"},
    ]}]
    hours = await bob.press("hours")
    assert hours[0]["text"].startswith("We're open")


async def test_voice_note_without_verification_gets_the_attachment_answer(demo_settings, gateway_client) -> None:
    client = await gateway_client(demo_settings())
    replies = await RestDriver(client, sender="bob").send_audio(b"OggS" + bytes(200))
    assert replies[0]["text"] == "I can't read files here. An agent can help."


async def test_duplicate_delivery_is_answered_once_with_the_same_replies(demo_settings, gateway_client) -> None:
    client = await gateway_client(demo_settings())
    bob = RestDriver(client, sender="bob")
    first = await bob.say("opening hours?", message_id="dup-1")
    again = await bob.say("opening hours?", message_id="dup-1")
    assert first == again
    store = runtime_of(client).store
    (conversation,) = await store.conversations(customer_id=await store.customer_for("rest", "bob"))
    assert await store.count_messages(conversation.id) == 2  # one in, one out


async def test_bad_requests_get_json_errors_and_store_nothing(demo_settings, gateway_client) -> None:
    settings = demo_settings(channels={"rest": {"secret": TEST_SECRET, "max_body_bytes": 2048,
                                                 "max_attachment_bytes": 1000}, "webchat": {}})
    client = await gateway_client(settings)
    driver = RestDriver(client, sender="bob")
    good = {"sender": "bob", "message_id": "m-1", "text": "hi"}

    response = await driver.post(good, signature="sha256=" + "0" * 64)
    assert response.status == 401 and "does not match" in (await error_of(response))["error"]
    response = await client.post("/channels/rest/messages", data=json.dumps(good))
    assert response.status == 401 and "missing" in (await error_of(response))["error"]
    response = await driver.post(raw=b'{"sender": "bob", ')
    assert response.status == 400 and "not valid JSON" in (await error_of(response))["error"]
    for unstorable in [b'{"sender": "bob", "message_id": "m-s", "text": "\\ud800"}',  # a lone surrogate: no UTF-8
                       b'{"sender": "bob", "message_id": "m-n", "text": "hi", "attachments": ' + b"[" * 300 + b"]" * 300 + b"}"]:
        response = await driver.post(raw=unstorable)
        assert response.status == 400 and "JSON the gateway cannot store" in (await error_of(response))["error"]
    response = await driver.post({"sender": "bob", "text": "hi"})
    assert response.status == 400 and "'message_id' is missing" in (await error_of(response))["error"]
    bad_audio = {**good, "text": None, "attachments": [{"type": "audio", "mime": "audio/ogg", "data_base64": "%%%"}]}
    response = await driver.post(bad_audio)
    assert response.status == 400 and "base64" in (await error_of(response))["error"]
    big_audio = {**good, "text": None, "attachments": [{"type": "audio", "mime": "audio/ogg",
                                                        "data_base64": base64.b64encode(bytes(1200)).decode()}]}
    response = await driver.post(big_audio)
    assert response.status == 413 and "1000" in (await error_of(response))["error"]
    response = await driver.post({**good, "text": "x" * 3000})
    assert response.status == 413 and "2048 bytes" in (await error_of(response))["error"]

    assert await runtime_of(client).store.count_messages() == 0
    assert await driver.say("still fine") != []


async def test_a_channel_without_buttons_gets_numbered_options(demo_settings, gateway_client) -> None:
    settings = demo_settings(channels={"rest": {"secret": TEST_SECRET, "buttons": False}, "webchat": {}})
    client = await gateway_client(settings)
    bob = RestDriver(client, sender="bob")
    (menu,) = await bob.say("hello")
    assert menu["buttons"] == []
    assert menu["text"] == "Hi Bob! How can I help?\n1. Opening hours\n2. My balance\n3. Talk to an agent"
    (answer,) = await bob.say("1")
    assert answer["text"].startswith("We're open")


async def test_messages_outside_a_request_wait_in_the_signed_outbox(demo_settings, gateway_client) -> None:
    client = await gateway_client(demo_settings())
    bob = RestDriver(client, sender="bob")
    await bob.say("hello")
    runtime = runtime_of(client)
    (conversation,) = await runtime.store.conversations(customer_id=await runtime.store.customer_for("rest", "bob"))

    async def poll(query: str = "", secret: str = TEST_SECRET):
        path = f"/channels/rest/outbox/bob{query}"
        return await client.get(path, headers={SIGNATURE_HEADER: sign(path.encode(), secret)})

    empty = await poll()
    assert empty.status == 200 and await empty.json() == {"messages": [], "cursor": 0}

    await runtime.pipeline.push(conversation.id, [OutboundMessage(text="Hi, Anna here.")], author="agent:anna")
    data = await (await poll()).json()
    assert [m["text"] for m in data["messages"]] == ["Hi, Anna here."]
    assert data["messages"][0]["seq"] == data["cursor"]

    # A long poll returns as soon as the next message is pushed.
    waiting = asyncio.create_task(poll(f"?after={data['cursor']}&wait=10"))
    await asyncio.sleep(0.1)
    await runtime.pipeline.push(conversation.id, [OutboundMessage(text="Anything else?")], author="agent:anna")
    later = await (await asyncio.wait_for(waiting, 5)).json()
    assert [m["text"] for m in later["messages"]] == ["Anything else?"]
    # The cursor acknowledged the first message: it is gone.
    assert [m["text"] for m in (await (await poll(f"?after={data['cursor']}")).json())["messages"]] == ["Anything else?"]

    forged = await poll(secret="wrong-secret")
    assert forged.status == 401 and "does not match" in (await error_of(forged))["error"]
    response = await poll("?after=abc")
    assert response.status == 400 and "'after'" in (await error_of(response))["error"]
    # Beyond any 64-bit sequence number: a clear 400, not a database overflow (a message is waiting, so the
    # acknowledgement would reach the database).
    await runtime.pipeline.push(conversation.id, [OutboundMessage(text="Still there?")], author="agent:anna")
    response = await poll(f"?after={2**64}")
    body = await error_of(response)
    assert response.status == 400 and "larger than any sequence number" in body["error"] and "cursor" in body["hint"]
    assert [m["text"] for m in (await (await poll(f"?after={later['cursor']}")).json())["messages"]] == ["Still there?"]


async def test_outbox_of_a_sender_that_needs_percent_encoding(demo_settings, gateway_client) -> None:
    client = await gateway_client(demo_settings())
    await RestDriver(client, sender="+39 333/1").say("hello")
    await runtime_of(client).channels["rest"].outbox.put("+39 333/1", [OutboundMessage(text="ciao")])
    path = "/channels/rest/outbox/%2B39%20333%2F1?after=0"  # signed exactly as sent
    response = await client.get(path, headers={SIGNATURE_HEADER: sign(path.encode())})
    assert [m["text"] for m in (await response.json())["messages"]] == ["ciao"]


async def test_truncated_and_chunked_bodies(demo_settings, gateway_client) -> None:
    """A body cut short of its Content-Length stores nothing; a chunked body (no length) is read to its end."""
    client = await gateway_client(demo_settings())
    body = json.dumps({"sender": "carol", "message_id": "m-1", "text": "hello"}).encode()
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(b"POST /channels/rest/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 + f"{SIGNATURE_HEADER}: {sign(body, TEST_SECRET)}\r\nContent-Length: {len(body) + 50}\r\n\r\n".encode()
                 + body)
    await writer.drain()
    writer.write_eof()  # the client gives up half-way through the declared body
    await asyncio.wait_for(reader.read(), 10)  # whatever the server answers, it closes the connection
    writer.close()
    assert await runtime_of(client).store.count_messages() == 0

    async def chunks():
        yield body[:10]
        yield body[10:]

    response = await client.post("/channels/rest/messages", data=chunks(),
                                 headers={SIGNATURE_HEADER: sign(body, TEST_SECRET), "Content-Type": "application/json"})
    assert response.status == 200 and (await response.json())["replies"]
    assert await runtime_of(client).store.count_messages() >= 2


async def test_a_gzip_body_with_its_compressed_length_is_read_whole(demo_settings, gateway_client) -> None:
    import gzip

    client = await gateway_client(demo_settings())
    body = json.dumps({"sender": "dora", "message_id": "gz-1", "text": "hello"}).encode()
    packed = gzip.compress(body)
    response = await client.post("/channels/rest/messages", data=packed, headers={
        SIGNATURE_HEADER: sign(body, TEST_SECRET), "Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert response.status == 200 and (await response.json())["replies"]


async def test_a_chunked_body_over_the_limit_is_refused_while_streaming(demo_settings, gateway_client) -> None:
    settings = demo_settings(channels={"rest": {"secret": TEST_SECRET, "max_body_bytes": 2048}, "webchat": {}})
    client = await gateway_client(settings)
    body = json.dumps({"sender": "erin", "message_id": "big-1", "text": "x" * 3000}).encode()

    async def chunks():  # no Content-Length: the limit can only be enforced as the bytes arrive
        for start in range(0, len(body), 500):
            yield body[start:start + 500]

    response = await client.post("/channels/rest/messages", data=chunks(),
                                 headers={SIGNATURE_HEADER: sign(body, TEST_SECRET), "Content-Type": "application/json"})
    assert response.status == 413 and "2048 bytes" in (await error_of(response))["error"]
    assert await runtime_of(client).store.count_messages() == 0
