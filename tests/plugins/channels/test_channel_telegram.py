"""The Telegram channel through a real gateway and a local Bot API: secret-checked updates in,
replies with inline keyboards out, button presses acknowledged, voice notes fetched, token kept secret."""

from __future__ import annotations

import json
import logging
from typing import Any

from vendor_fakes import decoded_seconds, FakeBotApi, voice_note

from gateway.messages import Button, OutboundMessage
from gateway.testing import runtime_of
from voicegate_telegram.channel import SECRET_HEADER

SECRET = "telegram-webhook-secret-01"
CHAT = 424242
WEBHOOK = "/channels/telegram/webhook"


def telegram_settings(api: FakeBotApi, **extra: Any) -> dict[str, Any]:
    return {"bot_token": api.token, "webhook_secret": SECRET, "api_base_url": api.base_url, **extra}


async def start(gateway_client, channel_settings, api, probe=None, **extra):
    settings = channel_settings("telegram", "telegram", telegram_settings(api, **extra), probe=probe is not None)
    client = await gateway_client(settings, extra_plugins=[probe] if probe else [])
    return client, runtime_of(client)


def chat(kind: str = "private") -> dict[str, Any]:
    return {"id": CHAT, "type": kind, "first_name": "Mario"}


def text_update(update_id: int, text: str, kind: str = "private") -> dict[str, Any]:
    return {"update_id": update_id, "message": {"message_id": update_id % 1000, "date": 1700000000,
                                                "from": {"id": CHAT, "is_bot": False, "first_name": "Mario"},
                                                "chat": chat(kind), "text": text}}


async def post(client, update: dict[str, Any], secret: str | None = SECRET):
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers[SECRET_HEADER] = secret
    return await client.post(WEBHOOK, data=json.dumps(update), headers=headers)


async def test_conversation_with_an_inline_keyboard(gateway_client, channel_settings, bot_api) -> None:
    client, runtime = await start(gateway_client, channel_settings, bot_api)
    response = await post(client, text_update(5001, "Hello"))
    assert response.status == 200 and await response.json() == {"accepted": 1}
    (greeting,) = await bot_api.wait_for("/sendMessage", 1)
    assert greeting.json() == {"chat_id": str(CHAT), "text": "Hi! How can I help?", "reply_markup": {"inline_keyboard": [
        [{"text": "Opening hours", "callback_data": "hours"}],
        [{"text": "My balance", "callback_data": "balance"}],
        [{"text": "Talk to an agent", "callback_data": "agent"}]]}}

    press = {"update_id": 5002, "callback_query": {
        "id": "4382bfdwdsb323b2d9", "from": {"id": CHAT, "is_bot": False, "first_name": "Mario"},
        "chat_instance": "-1", "data": "hours",
        "message": {"message_id": 7, "date": 1700000001, "chat": chat(), "text": "Hi! How can I help?",
                    "reply_markup": greeting.json()["reply_markup"]}}}
    await post(client, press)
    (answered,) = await bot_api.wait_for("/answerCallbackQuery", 1)
    assert answered.json() == {"callback_query_id": "4382bfdwdsb323b2d9"}
    hours = (await bot_api.wait_for("/sendMessage", 2))[1].json()
    assert hours["text"].startswith("We're open Mon-Fri")
    assert [row[0]["callback_data"] for row in hours["reply_markup"]["inline_keyboard"]] == ["balance", "agent"]
    # The press is acknowledged before the reply, so the button stops spinning at once.
    paths = [r.path.rsplit("/", 1)[1] for r in bot_api.requests]
    assert paths == ["sendMessage", "answerCallbackQuery", "editMessageReplyMarkup", "sendMessage"]
    assert bot_api.calls("/editMessageReplyMarkup")[0].json() == {"chat_id": str(CHAT), "message_id": 7}

    await runtime.channels["telegram"].idle()
    store = runtime.store
    (conversation,) = await store.conversations(customer_id=await store.customer_for("telegram", str(CHAT)))
    assert await store.count_messages(conversation.id) == 4


async def test_a_wrong_secret_is_refused_and_nothing_is_stored(gateway_client, channel_settings, bot_api) -> None:
    client, runtime = await start(gateway_client, channel_settings, bot_api)
    wrong = await post(client, text_update(6001, "Hello"), secret="guessed-secret-000")
    assert wrong.status == 401
    error = await wrong.json()
    assert "does not match" in error["error"] and "setWebhook" in error["hint"]
    missing = await post(client, text_update(6002, "Hello"), secret=None)
    assert missing.status == 401 and "missing" in (await missing.json())["error"]
    bad = await client.post(WEBHOOK, data=b'{"message": {}}', headers={SECRET_HEADER: SECRET})
    assert bad.status == 400 and "update_id" in (await bad.json())["error"]
    await runtime.channels["telegram"].idle()
    assert await runtime.store.count_messages() == 0 and bot_api.requests == []


async def test_a_redelivered_update_is_answered_once(gateway_client, channel_settings, bot_api) -> None:
    client, runtime = await start(gateway_client, channel_settings, bot_api)
    update = text_update(7001, "opening hours?")
    assert await (await post(client, update)).json() == {"accepted": 1}
    assert await (await post(client, update)).json() == {"accepted": 1}  # recognised when processed
    await runtime.channels["telegram"].idle()
    assert len(bot_api.calls("/sendMessage")) == 1 and await runtime.store.count_messages() == 2


async def test_group_chats_are_not_served(gateway_client, channel_settings, bot_api) -> None:
    client, runtime = await start(gateway_client, channel_settings, bot_api)
    assert await (await post(client, text_update(7101, "Hello", kind="group"))).json() == {"accepted": 0}
    await runtime.channels["telegram"].idle()
    assert await runtime.store.count_messages() == 0


async def test_a_voice_note_is_fetched_with_its_duration(gateway_client, channel_settings, bot_api, probe) -> None:
    note = voice_note("george-whatsapp.ogg")  # Telegram voice notes are OGG/Opus too
    bot_api.files["AwACAgQAAxkBAAIB"] = ("voice/file_17.oga", note)
    client, runtime = await start(gateway_client, channel_settings, bot_api, probe)
    update = {"update_id": 8001, "message": {"message_id": 9, "date": 1700000005, "chat": chat(),
                                             "from": {"id": CHAT, "is_bot": False, "first_name": "Mario"},
                                             "voice": {"file_id": "AwACAgQAAxkBAAIB", "file_unique_id": "AgADB",
                                                       "duration": 3, "mime_type": "audio/ogg",
                                                       "file_size": len(note)}}}
    await post(client, update)
    (reply,) = await bot_api.wait_for("/sendMessage", 1)
    assert reply.json()["text"] == f"Got a voice note: {len(note)} bytes of audio/ogg"
    (attachment,) = probe.bot.seen
    assert attachment.data == note and attachment.duration_s == 3.0
    assert abs(decoded_seconds(attachment) - 2.77) < 0.1  # george says "4 7 2 9": the note decodes whole
    assert [r.path.split("/")[-1] for r in bot_api.requests[:2]] == ["getFile", "file_17.oga"]


async def test_the_bot_token_never_reaches_logs_or_stored_errors(gateway_client, channel_settings, bot_api, caplog) -> None:
    client, runtime = await start(gateway_client, channel_settings, bot_api)
    await post(client, text_update(9001, "Hello"))
    await bot_api.wait_for("/sendMessage", 1)
    await runtime.channels["telegram"].idle()
    (conversation,) = await runtime.store.conversations(customer_id=await runtime.store.customer_for("telegram", str(CHAT)))
    await bot_api.close()  # Telegram unreachable: the connection error names the URL, hence the token
    caplog.set_level(logging.DEBUG)
    await runtime.pipeline.push(conversation.id, [OutboundMessage(text="Hi, Anna here.")], author="agent:anna")
    assert "delivery" in caplog.text or "deliver" in caplog.text
    assert "sendMessage failed: ClientConnectorError" in caplog.text
    assert bot_api.token not in caplog.text
    assert bot_api.token.split(":")[1] not in caplog.text


async def test_agent_messages_are_sent_with_send_message(gateway_client, channel_settings, bot_api) -> None:
    client, runtime = await start(gateway_client, channel_settings, bot_api)
    await post(client, text_update(9101, "Hello"))
    await bot_api.wait_for("/sendMessage", 1)
    await runtime.channels["telegram"].idle()
    (conversation,) = await runtime.store.conversations(customer_id=await runtime.store.customer_for("telegram", str(CHAT)))
    await runtime.pipeline.push(conversation.id, [OutboundMessage(text="Hi, Anna here.")], author="agent:anna")
    pushed = (await bot_api.wait_for("/sendMessage", 2))[1].json()
    assert pushed == {"chat_id": str(CHAT), "text": "Hi, Anna here."}


async def test_start_greets_and_long_payloads_fit_callback_data(gateway_client, channel_settings, bot_api) -> None:
    client, runtime = await start(gateway_client, channel_settings, bot_api)
    await post(client, text_update(9201, "/start campaign42"))
    (greeting,) = await bot_api.wait_for("/sendMessage", 1)
    assert greeting.json()["text"] == "Hi! How can I help?"  # /start reached the bot as "hello"

    channel = runtime.channels["telegram"]
    long_payload = "agent:" + "billing-dispute-" * 6  # > 64 bytes
    await channel.deliver(str(CHAT), [OutboundMessage(text="Pick one", buttons=(Button("Billing", long_payload),))])
    keyboard = (await bot_api.wait_for("/sendMessage", 2))[1].json()["reply_markup"]["inline_keyboard"]
    data = keyboard[0][0]["callback_data"]
    assert len(data.encode()) <= 64 and data != long_payload

    def press(update_id: int, callback_data: str, title: str) -> dict[str, Any]:
        markup = {"inline_keyboard": [[{"text": title, "callback_data": callback_data}]]}
        return {"update_id": update_id, "callback_query": {
            "id": f"cb{update_id}", "from": {"id": CHAT}, "chat_instance": "-1", "data": callback_data,
            "message": {"message_id": 11, "date": 1, "chat": chat(), "text": "Pick one", "reply_markup": markup}}}

    await post(client, press(9202, data, "Billing"))
    await channel.idle()
    # A digest this process no longer knows (sent before a restart): the title arrives as typed text.
    await post(client, press(9203, "vg#" + "0" * 32, "Opening hours"))
    await channel.idle()
    (conversation,) = await runtime.store.conversations(customer_id=await runtime.store.customer_for("telegram", str(CHAT)))
    bodies = [m.body for m in await runtime.store.history(conversation.id) if m.direction == "in"]
    assert [b.get("button") for b in bodies][-2:] == [long_payload, None]
    assert bodies[-1]["text"] == "Opening hours"


async def test_outgoing_ogg_audio_is_sent_as_a_voice_note(gateway_client, channel_settings, bot_api) -> None:
    from gateway.messages import Attachment, AttachmentKind

    client, runtime = await start(gateway_client, channel_settings, bot_api)
    note = voice_note("george-whatsapp.ogg")
    message = OutboundMessage(text="Your recording", attachments=(
        Attachment(kind=AttachmentKind.AUDIO, mime="audio/ogg", data=note, filename="note.ogg"),))
    await runtime.channels["telegram"].deliver(str(CHAT), [message])
    (voice,) = bot_api.calls("/sendVoice")
    assert note in voice.body and b'name="voice"; filename="note.ogg"' in voice.body
    assert bot_api.calls("/sendMessage")[0].json() == {"chat_id": str(CHAT), "text": "Your recording"}


async def test_a_flood_wait_is_honoured_once(gateway_client, channel_settings, bot_api) -> None:
    bot_api.flood_waits = 1
    client, runtime = await start(gateway_client, channel_settings, bot_api)
    await post(client, text_update(9301, "opening hours?"))
    first, second = await bot_api.wait_for("/sendMessage", 2)
    assert first.body == second.body and second.json()["text"].startswith("We're open")
