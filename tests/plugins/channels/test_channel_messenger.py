"""The Messenger channel through a real gateway and a local Send API: signed webhooks in, the demo bot's replies out as
Messenger messages with quick replies, voice clips downloaded from the (fake) CDN without the Page token."""

from __future__ import annotations

import json
from typing import Any

from vendor_fakes import FakeMessenger, decoded_seconds, voice_note

from gateway.button_payloads import PayloadCodec
from gateway.messages import Attachment, AttachmentKind, Button, OutboundMessage
from gateway.testing import runtime_of
from voicegate_meta.signature import HEADER, sign
from voicegate_messenger.wire import outgoing

APP_SECRET = "messenger-app-secret"
VERIFY_TOKEN = "verify-me-please"
PSID = "6712345678901234"
WEBHOOK = "/channels/messenger/webhook"


def messenger_settings(fake: FakeMessenger, **extra: Any) -> dict[str, Any]:
    return {"verify_token": VERIFY_TOKEN, "app_secret": APP_SECRET, "page_access_token": fake.token,
            "page_id": fake.page_id, "graph_base_url": fake.base_url, **extra}


async def start(gateway_client, channel_settings, fake, probe=None, **extra):
    settings = channel_settings("messenger", "messenger", messenger_settings(fake, **extra), probe=probe is not None)
    client = await gateway_client(settings, extra_plugins=[probe] if probe else [])
    return client, runtime_of(client)


def delivery(fake: FakeMessenger, *events: dict[str, Any], page_id: str | None = None) -> bytes:
    page = page_id or fake.page_id
    stamped = [{"sender": {"id": PSID}, "recipient": {"id": page}, "timestamp": 1700000000123, **e} for e in events]
    return json.dumps({"object": "page", "entry": [{"id": page, "time": 1700000000456, "messaging": stamped}]}).encode()


def text(mid: str, body: str, **extra: Any) -> dict[str, Any]:
    return {"message": {"mid": mid, "text": body, **extra}}


async def post(client, body: bytes, secret: str = APP_SECRET):
    return await client.post(WEBHOOK, data=body, headers={"Content-Type": "application/json",
                                                          HEADER: sign(body, secret)})


async def test_meta_verification_challenge(gateway_client, channel_settings, messenger) -> None:
    client, _ = await start(gateway_client, channel_settings, messenger)
    ok = await client.get(WEBHOOK, params={"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN,
                                           "hub.challenge": "CHALLENGE_ACCEPTED"})
    assert ok.status == 200 and await ok.text() == "CHALLENGE_ACCEPTED"
    wrong = await client.get(WEBHOOK, params={"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1"})
    assert wrong.status == 403 and "channels.messenger.verify_token" in (await wrong.json())["hint"]


async def test_conversation_with_quick_replies(gateway_client, channel_settings, messenger) -> None:
    client, runtime = await start(gateway_client, channel_settings, messenger)
    response = await post(client, delivery(messenger, text("m_A1", "Hello")))
    assert response.status == 200 and await response.json() == {"accepted": 1}
    (greeting,) = await messenger.wait_for("/messages", 1)
    assert greeting.headers["Authorization"] == f"Bearer {messenger.token}"
    assert greeting.json() == {
        "recipient": {"id": PSID}, "messaging_type": "RESPONSE",
        "message": {"text": "Hi! How can I help?", "quick_replies": [
            {"content_type": "text", "title": "Opening hours", "payload": "hours"},
            {"content_type": "text", "title": "My balance", "payload": "balance"},
            {"content_type": "text", "title": "Talk to an agent", "payload": "agent"}]}}

    # A tapped quick reply arrives as its title with the payload.
    await post(client, delivery(messenger, text("m_A2", "Opening hours", quick_reply={"payload": "hours"})))
    hours = (await messenger.wait_for("/messages", 2))[1].json()["message"]
    assert hours["text"].startswith("We're open Mon-Fri")

    # Italian: "Parla con un operatore" is longer than 20 characters: cut, still a quick reply.
    await post(client, delivery(messenger, text("m_A3", "Ciao")))
    ciao = (await messenger.wait_for("/messages", 3))[2].json()["message"]
    assert [q["title"] for q in ciao["quick_replies"]] == ["Orari", "Il mio saldo", "Parla con un operat…"]
    assert ciao["quick_replies"][2]["payload"] == "agent"

    # A persistent-menu postback is a button press too.
    await post(client, delivery(messenger, {"postback": {"title": "Orari", "payload": "hours", "mid": "m_A4"}}))
    orari = (await messenger.wait_for("/messages", 4))[3].json()["message"]
    assert orari["text"].startswith("Siamo aperti")

    await runtime.channels["messenger"].idle()
    store = runtime.store
    (conversation,) = await store.conversations(customer_id=await store.customer_for("messenger", PSID))
    assert await store.count_messages(conversation.id) == 8
    assert all(messenger.token not in r.path for r in messenger.requests)


async def test_forged_echoed_and_foreign_deliveries_store_nothing(gateway_client, channel_settings, messenger) -> None:
    client, runtime = await start(gateway_client, channel_settings, messenger)
    body = delivery(messenger, text("m_F1", "Hello"))
    forged = await post(client, body, secret="not-the-app-secret")
    assert forged.status == 401 and "channels.messenger.app_secret" in (await forged.json())["hint"]
    unsigned = await client.post(WEBHOOK, data=body)
    assert unsigned.status == 401 and "missing" in (await unsigned.json())["error"]
    echo = delivery(messenger, text("m_E1", "our own reply", is_echo=True, app_id=1517776481860111))
    assert await (await post(client, echo)).json() == {"accepted": 0}
    other_page = delivery(messenger, text("m_O1", "Hello"), page_id="99999999")
    assert await (await post(client, other_page)).json() == {"accepted": 0}
    read = delivery(messenger, {"read": {"watermark": 1700000000000}})
    assert await (await post(client, read)).json() == {"accepted": 0}
    not_a_page = await post(client, b'{"object": "instagram", "entry": []}')
    assert not_a_page.status == 400 and (await not_a_page.json())["hint"]
    await runtime.channels["messenger"].idle()
    assert await runtime.store.count_messages() == 0 and messenger.requests == []


async def test_a_retried_delivery_is_answered_once(gateway_client, channel_settings, messenger) -> None:
    client, runtime = await start(gateway_client, channel_settings, messenger)
    body = delivery(messenger, text("m_D1", "opening hours?"))
    assert await (await post(client, body)).json() == {"accepted": 1}
    assert await (await post(client, body)).json() == {"accepted": 1}
    await runtime.channels["messenger"].idle()
    assert len(messenger.calls("/messages")) == 1
    assert await runtime.store.count_messages() == 2


async def test_a_voice_clip_is_downloaded_without_the_token(gateway_client, channel_settings, messenger, probe) -> None:
    clip = voice_note("george-iphone.m4a")
    messenger.cdn["audioclip-1700000000-2769.mp4"] = (clip, "audio/mp4")
    client, runtime = await start(gateway_client, channel_settings, messenger, probe)
    audio = {"message": {"mid": "m_V1", "attachments": [
        {"type": "audio", "payload": {"url": messenger.cdn_url("audioclip-1700000000-2769.mp4")}}]}}
    await post(client, delivery(messenger, audio))
    (reply,) = await messenger.wait_for("/messages", 1)
    assert reply.json()["message"]["text"] == f"Got a voice note: {len(clip)} bytes of audio/mp4"
    (attachment,) = probe.bot.seen
    assert attachment.data == clip and attachment.kind is AttachmentKind.AUDIO
    assert abs(decoded_seconds(attachment) - 2.77) < 0.15  # george's "4 7 2 9" decodes whole from AAC
    (download,) = messenger.calls("/audioclip-1700000000-2769.mp4")
    assert "Authorization" not in download.headers  # the Page token never goes to a CDN


async def test_a_clip_that_cannot_be_downloaded_asks_to_resend(gateway_client, channel_settings, messenger,
                                                               probe) -> None:
    messenger.cdn["big.mp4"] = (bytes(4096), "audio/mp4")
    client, runtime = await start(gateway_client, channel_settings, messenger, probe, max_media_bytes=2048)
    for mid, name in (("m_X1", "expired.mp4"), ("m_X2", "big.mp4")):
        audio = {"message": {"mid": mid, "attachments": [{"type": "audio", "payload": {"url": messenger.cdn_url(name)}}]}}
        await post(client, delivery(messenger, audio))
    sent = await messenger.wait_for("/messages", 2)
    assert {r.json()["message"]["text"] for r in sent} == {"Sorry, I couldn't receive your file. Please send it again."}
    assert probe.bot.seen == [] and await runtime.store.count_messages() == 0


async def test_agent_messages_carry_the_human_agent_tag(gateway_client, channel_settings, messenger) -> None:
    client, runtime = await start(gateway_client, channel_settings, messenger)
    await post(client, delivery(messenger, text("m_P1", "Hello")))
    await messenger.wait_for("/messages", 1)
    await runtime.channels["messenger"].idle()
    (conversation,) = await runtime.store.conversations(customer_id=await runtime.store.customer_for("messenger", PSID))
    await runtime.pipeline.push(conversation.id, [OutboundMessage(text="Hi, Anna here.")], author="agent:anna")
    pushed = (await messenger.wait_for("/messages", 2))[1].json()
    assert pushed == {"recipient": {"id": PSID}, "messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT",
                      "message": {"text": "Hi, Anna here."}}


async def test_without_the_tag_agent_messages_go_as_updates(gateway_client, channel_settings, messenger) -> None:
    client, runtime = await start(gateway_client, channel_settings, messenger, human_agent_tag=False)
    await runtime.channels["messenger"].deliver(PSID, [OutboundMessage(text="We're still on it.")])
    (update,) = messenger.calls("/messages")
    assert update.json()["messaging_type"] == "UPDATE" and "tag" not in update.json()


async def test_a_reply_survives_a_brief_send_api_outage(gateway_client, channel_settings, messenger) -> None:
    messenger.fail_sends = 2
    client, runtime = await start(gateway_client, channel_settings, messenger)
    await post(client, delivery(messenger, text("m_R1", "opening hours?")))
    sent = await messenger.wait_for("/messages", 3)
    assert sent[0].body == sent[2].body and sent[2].json()["message"]["text"].startswith("We're open")


async def test_outgoing_attachments_by_upload_and_by_url(gateway_client, channel_settings, messenger) -> None:
    client, runtime = await start(gateway_client, channel_settings, messenger)
    note = voice_note("george-whatsapp.ogg")
    message = OutboundMessage(text="Your recording", attachments=(
        Attachment(kind=AttachmentKind.AUDIO, mime="audio/ogg", data=note, filename="note.ogg"),
        Attachment(kind=AttachmentKind.FILE, mime="application/pdf", url="https://files.example/terms.pdf")))
    await runtime.channels["messenger"].deliver(PSID, [message])
    upload, by_url, caption = messenger.calls("/messages")
    assert note in upload.body and b'name="filedata"; filename="note.ogg"' in upload.body
    assert b'{"attachment": {"type": "audio", "payload": {"is_reusable": false}}}' in upload.body
    assert by_url.json()["message"] == {"attachment": {"type": "file", "payload": {
        "url": "https://files.example/terms.pdf", "is_reusable": False}}}
    assert caption.json()["message"] == {"text": "Your recording"}


def test_long_text_many_choices_and_long_payloads_fit_messenger_limits() -> None:
    codec = PayloadCodec(1000)
    buttons = tuple(Button(f"Choice number {i} with a long title", f"c{i}") for i in range(12)) + (
        Button("Long", "x" * 1500),)
    bodies = outgoing(PSID, OutboundMessage(text="word " * 700, buttons=buttons), messaging_type="RESPONSE",
                      encode=codec.encode, prompt="Please choose:")
    assert len(bodies) == 2 and "quick_replies" not in bodies[0]["message"]
    assert all(len(b["message"]["text"]) <= 2000 for b in bodies)
    quick = bodies[1]["message"]["quick_replies"]
    assert len(quick) == 13 and all(len(q["title"]) <= 20 for q in quick)
    assert len(quick[-1]["payload"]) <= 1000 and codec.decode(quick[-1]["payload"]) == "x" * 1500
    (prompt,) = outgoing(PSID, OutboundMessage(buttons=(Button("A", "a"),)), messaging_type="UPDATE",
                         encode=codec.encode, prompt="Please choose:")
    assert prompt["message"]["text"] == "Please choose:"


def test_malformed_events_are_skipped_not_raised() -> None:
    from voicegate_messenger.wire import parse_webhook

    body = {"object": "page", "entry": [{"id": "106587391234567", "messaging": [
        {"sender": "not-an-object", "recipient": {"id": "106587391234567"}, "message": {"mid": "m1", "text": "hi"}},
        {"sender": {"id": PSID}, "recipient": ["odd"], "message": {"mid": "m2", "text": "hi"}},
        {"sender": {"id": PSID}, "recipient": {"id": "106587391234567"}, "message": "not-an-object"},
    ]}]}
    (only,) = parse_webhook(json.dumps(body).encode(), "106587391234567")  # the odd recipient falls back to the entry
    assert only.message_id == "m2" and only.text == "hi"
