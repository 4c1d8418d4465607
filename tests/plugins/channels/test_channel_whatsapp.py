"""The WhatsApp channel through a real gateway and a local Graph API: signed webhooks in, the
demo bot's replies out as WhatsApp messages (text, reply buttons, lists), voice notes fetched."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from vendor_fakes import decoded_seconds, FakeGraph, voice_note

from gateway.button_payloads import PayloadCodec
from gateway.messages import Button, OutboundMessage
from gateway.testing import runtime_of
from voicegate_whatsapp.signature import HEADER, sign
from voicegate_whatsapp.wire import outgoing

APP_SECRET = "whatsapp-app-secret"
VERIFY_TOKEN = "verify-me-please"
CUSTOMER = "393331234567"
WEBHOOK = "/channels/whatsapp/webhook"


def whatsapp_settings(graph: FakeGraph, **extra: Any) -> dict[str, Any]:
    return {"verify_token": VERIFY_TOKEN, "app_secret": APP_SECRET, "access_token": graph.token,
            "phone_number_id": graph.phone_number_id, "graph_base_url": graph.base_url, **extra}


async def start(gateway_client, channel_settings, graph, probe=None):
    settings = channel_settings("whatsapp", "whatsapp", whatsapp_settings(graph), probe=probe is not None)
    client = await gateway_client(settings, extra_plugins=[probe] if probe else [])
    return client, runtime_of(client)


def delivery(graph: FakeGraph, *messages: dict[str, Any], statuses: list[dict[str, Any]] | None = None) -> bytes:
    value: dict[str, Any] = {"messaging_product": "whatsapp",
                             "metadata": {"display_phone_number": "15550001111", "phone_number_id": graph.phone_number_id}}
    if messages:
        value["contacts"] = [{"profile": {"name": "Mario"}, "wa_id": CUSTOMER}]
        value["messages"] = list(messages)
    if statuses:
        value["statuses"] = statuses
    body = {"object": "whatsapp_business_account",
            "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": value}]}]}
    return json.dumps(body).encode()


def text(wamid: str, body: str) -> dict[str, Any]:
    return {"from": CUSTOMER, "id": wamid, "timestamp": "1700000000", "type": "text", "text": {"body": body}}


def pressed(wamid: str, kind: str, button_id: str, title: str) -> dict[str, Any]:
    return {"from": CUSTOMER, "id": wamid, "timestamp": "1700000001", "type": "interactive",
            "interactive": {"type": kind, kind: {"id": button_id, "title": title}}}


async def post(client, body: bytes, secret: str = APP_SECRET):
    return await client.post(WEBHOOK, data=body, headers={"Content-Type": "application/json",
                                                          HEADER: sign(body, secret)})


async def test_meta_verification_challenge(gateway_client, channel_settings, graph) -> None:
    client, _ = await start(gateway_client, channel_settings, graph)
    ok = await client.get(WEBHOOK, params={"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN,
                                           "hub.challenge": "1158201444"})
    assert ok.status == 200 and await ok.text() == "1158201444"
    wrong = await client.get(WEBHOOK, params={"hub.mode": "subscribe", "hub.verify_token": "guess",
                                              "hub.challenge": "1"})
    assert wrong.status == 403 and "verify_token" in (await wrong.json())["error"]
    bare = await client.get(WEBHOOK)
    assert bare.status == 400 and (await bare.json())["hint"]


async def test_conversation_with_reply_buttons_and_a_list(gateway_client, channel_settings, graph) -> None:
    client, runtime = await start(gateway_client, channel_settings, graph)
    channel = runtime.channels["whatsapp"]

    response = await post(client, delivery(graph, text("wamid.A1", "Hello")))
    assert response.status == 200 and await response.json() == {"accepted": 1}
    (greeting,) = await graph.wait_for("/messages", 1)
    assert greeting.headers["Authorization"] == f"Bearer {graph.token}"
    assert greeting.json() == {
        "messaging_product": "whatsapp", "recipient_type": "individual", "to": CUSTOMER, "type": "interactive",
        "interactive": {"type": "button", "body": {"text": "Hi! How can I help?"}, "action": {"buttons": [
            {"type": "reply", "reply": {"id": "hours", "title": "Opening hours"}},
            {"type": "reply", "reply": {"id": "balance", "title": "My balance"}},
            {"type": "reply", "reply": {"id": "agent", "title": "Talk to an agent"}}]}}}

    await post(client, delivery(graph, pressed("wamid.A2", "button_reply", "hours", "Opening hours")))
    hours = (await graph.wait_for("/messages", 2))[1].json()
    assert hours["interactive"]["body"]["text"].startswith("We're open Mon-Fri")
    assert [b["reply"]["id"] for b in hours["interactive"]["action"]["buttons"]] == ["balance", "agent"]

    # Italian: "Parla con un operatore" is longer than a reply button's 20 characters -> a list.
    await post(client, delivery(graph, text("wamid.A3", "Ciao")))
    ciao = (await graph.wait_for("/messages", 3))[2].json()["interactive"]
    assert ciao["type"] == "list" and ciao["action"]["button"] == "Choose"
    assert ciao["action"]["sections"][0]["rows"] == [
        {"id": "hours", "title": "Orari"}, {"id": "balance", "title": "Il mio saldo"},
        {"id": "agent", "title": "Parla con un operatore"}]
    await post(client, delivery(graph, pressed("wamid.A4", "list_reply", "hours", "Orari")))
    orari = (await graph.wait_for("/messages", 4))[3].json()
    assert orari["interactive"]["body"]["text"].startswith("Siamo aperti")

    await channel.idle()
    store = runtime.store
    (conversation,) = await store.conversations(customer_id=await store.customer_for("whatsapp", CUSTOMER))
    assert await store.count_messages(conversation.id) == 8
    assert all(graph.token not in r.path for r in graph.requests)  # the token travels in a header only


async def test_forged_signature_is_refused_and_nothing_is_stored(gateway_client, channel_settings, graph) -> None:
    client, runtime = await start(gateway_client, channel_settings, graph)
    body = delivery(graph, text("wamid.F1", "Hello"))
    forged = await post(client, body, secret="not-the-app-secret")
    assert forged.status == 401
    error = await forged.json()
    assert "does not match" in error["error"] and "app_secret" in error["hint"]
    unsigned = await client.post(WEBHOOK, data=body, headers={"Content-Type": "application/json"})
    assert unsigned.status == 401 and "missing" in (await unsigned.json())["error"]
    tampered = await client.post(WEBHOOK, data=body.replace(b"Hello", b"Hellx"),
                                 headers={HEADER: sign(body, APP_SECRET)})
    assert tampered.status == 401
    await runtime.channels["whatsapp"].idle()
    assert await runtime.store.count_messages() == 0 and graph.requests == []


async def test_a_retried_delivery_is_answered_once(gateway_client, channel_settings, graph) -> None:
    client, runtime = await start(gateway_client, channel_settings, graph)
    body = delivery(graph, text("wamid.D1", "opening hours?"))
    assert await (await post(client, body)).json() == {"accepted": 1}
    assert await (await post(client, body)).json() == {"accepted": 1}  # recognised when processed
    await runtime.channels["whatsapp"].idle()
    assert len(graph.calls("/messages")) == 1
    assert await runtime.store.count_messages() == 2  # one in, one out


async def test_a_retry_after_a_restart_is_not_answered_again(gateway_client, channel_settings, graph) -> None:
    # The duplicate is recognised from the stored message ids, not from the process's memory.
    settings = channel_settings("whatsapp", "whatsapp", whatsapp_settings(graph))
    body = delivery(graph, text("wamid.R1", "opening hours?"))
    first = await gateway_client(settings)
    await post(first, body)
    await runtime_of(first).channels["whatsapp"].idle()
    await first.close()
    second = await gateway_client(settings)
    assert await (await post(second, body)).json() == {"accepted": 1}
    await runtime_of(second).channels["whatsapp"].idle()
    assert len(graph.calls("/messages")) == 1
    assert await runtime_of(second).store.count_messages() == 2


async def test_statuses_and_unsupported_types_are_skipped(gateway_client, channel_settings, graph) -> None:
    client, runtime = await start(gateway_client, channel_settings, graph)
    status = {"id": "wamid.out1", "status": "delivered", "timestamp": "1700000002", "recipient_id": CUSTOMER}
    response = await post(client, delivery(graph, statuses=[status]))
    assert await response.json() == {"accepted": 0}
    location = {"from": CUSTOMER, "id": "wamid.L1", "timestamp": "1", "type": "location",
                "location": {"latitude": 45.4, "longitude": 9.2}}
    assert await (await post(client, delivery(graph, location))).json() == {"accepted": 0}
    malformed = await post(client, b'{"object": "whatsapp_business_account"}')
    assert malformed.status == 400 and (await malformed.json())["hint"]
    await runtime.channels["whatsapp"].idle()
    assert await runtime.store.count_messages() == 0 and graph.requests == []


async def test_a_voice_note_is_fetched_and_reaches_the_bot(gateway_client, channel_settings, graph, probe) -> None:
    note = voice_note("george-whatsapp.ogg")
    graph.media["4417221208545391"] = (note, "audio/ogg; codecs=opus")
    client, runtime = await start(gateway_client, channel_settings, graph, probe)
    audio = {"from": CUSTOMER, "id": "wamid.V1", "timestamp": "1700000003", "type": "audio",
             "audio": {"mime_type": "audio/ogg; codecs=opus", "sha256": hashlib.sha256(note).hexdigest(),
                       "id": "4417221208545391", "voice": True}}
    await post(client, delivery(graph, audio))
    (reply,) = await graph.wait_for("/messages", 1)
    assert reply.json()["text"]["body"] == f"Got a voice note: {len(note)} bytes of audio/ogg; codecs=opus"
    (attachment,) = probe.bot.seen
    assert attachment.data == note and attachment.kind.value == "audio"
    assert abs(decoded_seconds(attachment) - 2.77) < 0.1  # george says "4 7 2 9": the note decodes whole
    lookup, download = graph.requests[0], graph.requests[1]
    assert lookup.path.endswith("/4417221208545391") and download.path == "/whatsapp-cdn/4417221208545391"
    assert download.headers["Authorization"] == f"Bearer {graph.token}"


async def test_a_voice_note_that_cannot_be_fetched_asks_to_resend(gateway_client, channel_settings, graph, probe) -> None:
    client, runtime = await start(gateway_client, channel_settings, graph, probe)
    audio = {"from": CUSTOMER, "id": "wamid.V2", "timestamp": "1", "type": "audio",
             "audio": {"mime_type": "audio/ogg", "id": "999", "voice": True}}
    await post(client, delivery(graph, audio))
    sent = [r for r in await graph.wait_for("/messages", 1)]
    assert sent[0].json()["text"]["body"] == "Sorry, I couldn't receive your file. Please send it again."
    assert probe.bot.seen == [] and await runtime.store.count_messages() == 0


async def test_agent_messages_are_delivered_through_the_graph_api(gateway_client, channel_settings, graph) -> None:
    client, runtime = await start(gateway_client, channel_settings, graph)
    await post(client, delivery(graph, text("wamid.P1", "Hello")))
    await graph.wait_for("/messages", 1)
    await runtime.channels["whatsapp"].idle()
    (conversation,) = await runtime.store.conversations(customer_id=await runtime.store.customer_for("whatsapp", CUSTOMER))
    await runtime.pipeline.push(conversation.id, [OutboundMessage(text="Hi, Anna here.")], author="agent:anna")
    pushed = (await graph.wait_for("/messages", 2))[1].json()
    assert pushed["type"] == "text" and pushed["text"]["body"] == "Hi, Anna here." and pushed["to"] == CUSTOMER


def test_long_text_with_buttons_and_long_payloads_fit_whatsapp_limits() -> None:
    codec = PayloadCodec(200)
    long_payload = "x" * 300
    message = OutboundMessage(text="word " * 400, buttons=(Button("Yes", "yes"), Button("Long", long_payload)))
    bodies = outgoing(CUSTOMER, message, encode=codec.encode, list_button="Choose", prompt="Please choose:")
    assert [b["type"] for b in bodies] == ["text", "interactive"]
    assert len(bodies[1]["interactive"]["body"]["text"]) <= 1024
    ids = [b["reply"]["id"] for b in bodies[1]["interactive"]["action"]["buttons"]]
    assert ids[0] == "yes" and len(ids[1]) <= 200 and codec.decode(ids[1]) == long_payload
    assert codec.decode("vg#" + "0" * 32) is None  # forgotten: the channel falls back to the title
    no_text = outgoing(CUSTOMER, OutboundMessage(buttons=(Button("A", "a"),)), encode=codec.encode,
                       list_button="Choose", prompt="Please choose:")
    assert no_text[0]["interactive"]["body"]["text"] == "Please choose:"


async def test_a_reply_survives_a_brief_graph_outage(gateway_client, channel_settings, graph) -> None:
    graph.fail_sends = 2  # Meta answers 503 twice; the third attempt goes through
    client, runtime = await start(gateway_client, channel_settings, graph)
    await post(client, delivery(graph, text("wamid.R1", "opening hours?")))
    sent = await graph.wait_for("/messages", 3)
    assert sent[0].body == sent[2].body and sent[2].json()["interactive"]["body"]["text"].startswith("We're open")


async def test_deliveries_for_another_business_number_are_skipped(gateway_client, channel_settings, graph) -> None:
    client, runtime = await start(gateway_client, channel_settings, graph)
    body = json.loads(delivery(graph, text("wamid.O1", "Hello")))
    body["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = "5550001"
    raw = json.dumps(body).encode()
    assert await (await post(client, raw)).json() == {"accepted": 0}
    await runtime.channels["whatsapp"].idle()
    assert await runtime.store.count_messages() == 0


async def test_outgoing_audio_is_uploaded_then_sent_by_id(gateway_client, channel_settings, graph) -> None:
    from gateway.messages import Attachment, AttachmentKind

    client, runtime = await start(gateway_client, channel_settings, graph)
    note = voice_note("george-whatsapp.ogg")
    message = OutboundMessage(text="Your recording", attachments=(
        Attachment(kind=AttachmentKind.AUDIO, mime="audio/ogg", data=note, filename="note.ogg"),
        Attachment(kind=AttachmentKind.FILE, mime="application/pdf", url="https://files.example/terms.pdf",
                   filename="terms.pdf")))
    await runtime.channels["whatsapp"].deliver(CUSTOMER, [message])
    (upload,) = graph.calls("/media")
    assert note in upload.body and b'name="messaging_product"' in upload.body
    audio, document, caption = [r.json() for r in graph.calls("/messages")]
    assert audio["type"] == "audio" and audio["audio"] == {"id": "up1"}
    assert document["document"] == {"link": "https://files.example/terms.pdf", "filename": "terms.pdf"}
    assert caption["text"]["body"] == "Your recording"
