"""The Twilio SMS channel through a real gateway and a local Twilio API: signed form webhooks,
numbered menus answered with a digit, TwiML replies, MMS voice notes, the Messages API for the rest."""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import unquote_plus
from xml.etree import ElementTree

from vendor_fakes import decoded_seconds, FakeTwilio, voice_note

from gateway.components import BotReply, ComponentSpec
from gateway.hookspecs import hookimpl
from gateway.messages import OutboundMessage
from gateway.testing import runtime_of
from voicegate_twilio_sms.signature import HEADER, compute, signature_problem
from voicegate_twilio_sms.texts import pack, plain

PUBLIC = "https://chat.example.com/voicegate"  # as Twilio sees the gateway, through a proxy
WEBHOOK = "/channels/sms/webhook"
CUSTOMER = "+393331234567"
NUMBER = "+15005550006"


def sms_settings(twilio: FakeTwilio, **extra: Any) -> dict[str, Any]:
    return {"account_sid": twilio.account_sid, "auth_token": twilio.auth_token, "from_number": NUMBER,
            "public_base_url": PUBLIC, "api_base_url": twilio.base_url, **extra}


async def start(gateway_client, channel_settings, twilio, probe=None, **extra):
    settings = channel_settings("sms", "sms", sms_settings(twilio, **extra), probe=probe is not None)
    client = await gateway_client(settings, extra_plugins=[probe] if probe else [])
    return client, runtime_of(client)


_sids = iter(range(1, 10_000))


def inbound(twilio: FakeTwilio, body: str = "", sid: str | None = None, **extra: str) -> dict[str, str]:
    return {"ToCountry": "US", "SmsMessageSid": sid or f"SM{next(_sids):032x}", "NumMedia": "0",
            "SmsSid": sid or "", "SmsStatus": "received", "Body": body, "To": NUMBER, "NumSegments": "1",
            "MessageSid": sid or f"SM{next(_sids):032x}", "AccountSid": twilio.account_sid, "From": CUSTOMER,
            "ApiVersion": "2010-04-01", **extra}


async def post(client, form: dict[str, str], *, url: str = PUBLIC + WEBHOOK, token: str | None = None,
               twilio: FakeTwilio | None = None):
    key = token or (twilio.auth_token if twilio else "")
    signature = compute(url, {k: [v] for k, v in form.items()}, key)
    return await client.post(WEBHOOK, data=form, headers={HEADER: signature})


async def messages_of(response) -> list[str]:
    assert response.status == 200, await response.text()
    assert response.content_type == "application/xml"
    root = ElementTree.fromstring(await response.read())
    assert root.tag == "Response"
    return [("".join(m.itertext())) for m in root.findall("Message")]


async def test_numbered_menu_round_trip(gateway_client, channel_settings, twilio) -> None:
    client, runtime = await start(gateway_client, channel_settings, twilio)
    menu = await messages_of(await post(client, inbound(twilio, "Hello"), twilio=twilio))
    assert menu == ["Hi! How can I help?\n1. Opening hours\n2. My balance\n3. Talk to an agent"]
    (hours,) = await messages_of(await post(client, inbound(twilio, "1"), twilio=twilio))
    assert hours.startswith("We're open Mon-Fri") and hours.endswith("\n1. My balance\n2. Talk to an agent")
    # The digit now means the second menu's options: 1 = balance (sensitive -> the deny authenticator).
    (balance,) = await messages_of(await post(client, inbound(twilio, " 1. "), twilio=twilio))
    assert "1." in balance and "agent" in balance.lower()
    assert twilio.requests == []  # everything went back in the webhook responses


async def test_forged_or_misaddressed_webhooks_are_refused(gateway_client, channel_settings, twilio) -> None:
    client, runtime = await start(gateway_client, channel_settings, twilio)
    forged = await post(client, inbound(twilio, "Hello"), token="not-the-auth-token-000")
    assert forged.status == 401
    error = await forged.json()
    assert "does not match" in error["error"] and PUBLIC in error["error"] and "public_base_url" in error["hint"]
    # Signed for the URL the gateway sees locally instead of the public one: refused too.
    local = await post(client, inbound(twilio, "Hello"), url=str(client.make_url(WEBHOOK)), twilio=twilio)
    assert local.status == 401
    unsigned = await client.post(WEBHOOK, data=inbound(twilio, "Hello"))
    assert unsigned.status == 401 and "missing" in (await unsigned.json())["error"]
    other = await post(client, inbound(twilio, "Hello", AccountSid="AC" + "f" * 32), twilio=twilio)
    assert other.status == 403
    assert await runtime.store.count_messages() == 0


async def test_without_a_public_url_the_request_url_is_signed(gateway_client, channel_settings, twilio) -> None:
    client, runtime = await start(gateway_client, channel_settings, twilio, public_base_url=None)
    response = await post(client, inbound(twilio, "Hello"), url=str(client.make_url(WEBHOOK)), twilio=twilio)
    assert (await messages_of(response))[0].startswith("Hi! How can I help?")


async def test_a_retried_webhook_is_answered_once(gateway_client, channel_settings, twilio) -> None:
    client, runtime = await start(gateway_client, channel_settings, twilio)
    form = inbound(twilio, "opening hours?", sid="SM" + "d" * 32)
    first = await messages_of(await post(client, form, twilio=twilio))
    again = await messages_of(await post(client, form, twilio=twilio))
    assert len(first) == 1 and again == []
    assert await runtime.store.count_messages() == 2


async def test_an_mms_voice_note_is_fetched_and_reaches_the_bot(gateway_client, channel_settings, twilio, probe) -> None:
    note = voice_note("george-phone.amr")
    twilio.media["ME" + "a" * 32] = (note, "audio/amr")
    client, runtime = await start(gateway_client, channel_settings, twilio, probe)
    sid = "MM" + "b" * 32
    form = inbound(twilio, "", sid=sid, NumMedia="1", MediaContentType0="audio/amr",
                   MediaUrl0=twilio.media_url(sid, "ME" + "a" * 32))
    (reply,) = await messages_of(await post(client, form, twilio=twilio))
    assert reply == f"Got a voice note: {len(note)} bytes of audio/amr"
    (attachment,) = probe.bot.seen
    assert attachment.data == note and attachment.mime == "audio/amr"
    assert abs(decoded_seconds(attachment) - 2.77) < 0.1  # george says "4 7 2 9": the note decodes whole
    resource, storage = twilio.requests
    assert resource.headers["Authorization"].startswith("Basic ") and storage.path.startswith("/mms-storage/")


async def test_media_elsewhere_is_not_fetched_with_the_account_credentials(gateway_client, channel_settings, twilio, probe) -> None:
    client, runtime = await start(gateway_client, channel_settings, twilio, probe)
    form = inbound(twilio, "", NumMedia="1", MediaContentType0="audio/amr", MediaUrl0="http://127.0.0.1:9/steal")
    (reply,) = await messages_of(await post(client, form, twilio=twilio))
    assert reply == "Sorry, I couldn't receive your file. Please send it again."
    assert probe.bot.seen == [] and twilio.requests == [] and await runtime.store.count_messages() == 0


async def test_agent_messages_go_through_the_messages_api_split_to_sms_size(gateway_client, channel_settings, twilio) -> None:
    client, runtime = await start(gateway_client, channel_settings, twilio, max_message_chars=160, max_messages_per_reply=2)
    await messages_of(await post(client, inbound(twilio, "Hello"), twilio=twilio))
    (conversation,) = await runtime.store.conversations(customer_id=await runtime.store.customer_for("sms", CUSTOMER))
    long_text = " ".join(f"word{i}" for i in range(60)) + " — thanks"  # ~420 characters
    await runtime.pipeline.push(conversation.id, [OutboundMessage(text=long_text)], author="agent:anna")
    sent = twilio.calls("/Messages.json")
    assert len(sent) == 2
    bodies = [dict(re.findall(r"([^&=]+)=([^&]*)", r.body.decode())) for r in sent]
    assert all(b["To"] == "%2B393331234567" and b["From"] == "%2B15005550006" for b in bodies)
    assert all(r.headers["Authorization"].startswith("Basic ") for r in sent)
    texts = [unquote_plus(b["Body"]) for b in bodies]
    assert all(len(t) <= 160 for t in texts)
    assert texts[0].endswith("...") and texts[1].endswith("- thanks")  # middle cut, GSM-only punctuation


def test_twilio_documented_signature_vectors() -> None:
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {"CallSid": ["CA1234567890ABCDE"], "Caller": ["+14158675309"], "Digits": ["1234"],
              "From": ["+14158675309"], "To": ["+18005551212"]}
    assert compute(url, params, "12345") == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert signature_problem("RSOYDt4T1cUTdK1PDd93/VVr8B8=", "https://mycompany.com:443/myapp.php?foo=1&bar=2",
                             params, "12345") is None
    repeated = {"Sid": ["CA123"], "SidAccount": ["AC123"], "Digits": ["5678", "1234", "1234"]}
    assert compute(url, repeated, "12345") == "IK+Dwps556ElfBT0I3Rgjkr1wJU="
    assert signature_problem("RSOYDt4T1cUTdK1PDd93/VVr8B8=", url + "&x=1", params, "12345") is not None
    assert signature_problem("RSOYDt4T1cUTdK1PDd93/VVr8B8=", url, {**params, "Digits": ["9999"]}, "12345") is not None


def test_sms_packing_joins_short_messages_and_keeps_the_menu() -> None:
    assert pack(["Thanks!", "Anything else?"], max_chars=160, max_messages=3) == ["Thanks!\n\nAnything else?"]
    parts = ["a" * 150, "b" * 150, "c" * 150, "Menu:\n1. Yes\n2. No"]
    packed = pack(parts, max_chars=160, max_messages=2)
    assert packed == ["a" * 150 + " ...", "Menu:\n1. Yes\n2. No"]
    assert plain("It’s “fine” — really…") == "It's \"fine\" - really..."


class SlowPlugin:
    """A bot that thinks for a while about "slow" (as a voice check on a busy machine would)."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s

    @hookimpl
    def register_bots(self, register) -> None:
        delay_s = self.delay_s

        class Slow:
            name = "slow"

            async def handle(self, turn):
                if turn.message.text != "slow":
                    return None
                await asyncio.sleep(delay_s)
                return BotReply(messages=(OutboundMessage(text="Thanks for waiting."),))

        register(ComponentSpec(name="slow", factory=lambda settings, context: Slow()))


async def test_a_slow_answer_goes_through_the_messages_api(gateway_client, channel_settings, twilio) -> None:
    settings = channel_settings("sms", "sms", sms_settings(twilio, reply_within_s=0.2), first_bots=("slow",))
    client = await gateway_client(settings, extra_plugins=[SlowPlugin(delay_s=0.6)])
    form = inbound(twilio, "slow")
    assert await messages_of(await post(client, form, twilio=twilio)) == []  # Twilio gets its answer in time
    (sent,) = await twilio.wait_for("/Messages.json", 1)
    assert b"Body=Thanks+for+waiting." in sent.body
    assert await messages_of(await post(client, form, twilio=twilio)) == []  # a retry is not answered twice
    await asyncio.sleep(0.8)
    assert len(twilio.calls("/Messages.json")) == 1


def test_twiml_escapes_what_bots_write() -> None:
    from voicegate_twilio_sms.texts import twiml

    body = twiml(["Terms & <conditions>", "2 > 1"], [[], ["https://files.example/a.mp3?x=1&y=2"]])
    root = ElementTree.fromstring(body)
    first, second = root.findall("Message")
    assert first.text == "Terms & <conditions>"
    assert second.find("Body").text == "2 > 1" and second.find("Media").text == "https://files.example/a.mp3?x=1&y=2"
