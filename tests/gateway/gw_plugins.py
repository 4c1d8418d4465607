"""Small but real plugins the core's tests drive through the app (they do not depend on plugins/).

* ``testchat`` channel: the REST wire contract (signed JSON over HTTP) at ``/channels/testchat/messages``,
  with a ``buttons`` setting to play a channel that cannot show buttons; ``deliver`` keeps what
  was pushed so tests can see it.
* ``script`` bot: keyword replies (greeting with buttons, sensitive balance, agent handoff,
  forget, bye, boom = raises).
* ``pin`` authenticator: asks for a PIN; 1234 verifies, "no" declines, two wrong PINs lock.
* ``table`` CRM backend: a profile from its settings, counting lookups.
* :class:`Recorder`: notification hooks that record events; :class:`Broken` raises and :class:`Slow` hangs.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from typing import Any, Sequence

from aiohttp import web

from gateway.components import (
    AuthSession,
    AuthStatus,
    AuthStep,
    BotReply,
    BotTurn,
    ChannelCapabilities,
    ComponentSpec,
    GatewayContext,
    Handoff,
    Intent,
    PluginSettings,
)
from gateway.conversation import CustomerProfile, CustomerView
from gateway.errors import InboundRejected
from gateway.hookspecs import hookimpl
from gateway.messages import Attachment, AttachmentKind, Button, InboundMessage, OutboundMessage, to_json

# --------------------------------------------------------------------------- channel


class TestChatSettings(PluginSettings):
    secret: str
    buttons: bool = True


class TestChat:
    name = "testchat"

    def __init__(self, settings: TestChatSettings, context: GatewayContext) -> None:
        self.settings = settings
        self.inbox = context.inbox
        self.capabilities = ChannelCapabilities(buttons=settings.buttons)
        self.delivered: list[tuple[str, OutboundMessage]] = []
        self.closed = False

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/messages", self.post)]

    async def post(self, request: web.Request) -> web.Response:
        body = await request.read()
        expected = "sha256=" + hmac.new(self.settings.secret.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(request.headers.get("X-VoiceGate-Signature", ""), expected):
            raise InboundRejected("bad signature: sign the raw body with the channel secret", status=401)
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise InboundRejected(f"the body is not valid JSON ({exc}); send a JSON object") from None
        attachments = tuple(
            Attachment(kind=AttachmentKind.AUDIO, mime=a["mime"], data=base64.b64decode(a["data_base64"]))
            for a in data.get("attachments", ())
        )
        message = InboundMessage(
            channel=self.name, sender=data.get("sender"), message_id=data.get("message_id"),
            text=data.get("text"), button=data.get("button"), attachments=attachments,
        )
        replies = await self.inbox.receive(message)
        return web.json_response({"replies": [_reply_json(r) for r in replies]})

    async def deliver(self, recipient: str, messages: Sequence[OutboundMessage]) -> None:
        if recipient == "offline":
            raise ConnectionError("the customer is offline")
        self.delivered.extend((recipient, m) for m in messages)

    async def close(self) -> None:
        self.closed = True


def _reply_json(message: OutboundMessage) -> dict[str, Any]:
    data = to_json(message)
    return {"text": data["text"], "buttons": data["buttons"]}


# --------------------------------------------------------------------------- bot


class ScriptBot:
    name = "script"

    def __init__(self, settings: Any, context: GatewayContext) -> None:
        self.turns: list[BotTurn] = []

    async def handle(self, turn: BotTurn) -> BotReply | None:
        self.turns.append(turn)
        if turn.resumed_intent == "balance":
            return BotReply(messages=(OutboundMessage(text="Your balance is 12.50 €"),), intent=Intent("balance", sensitive=True))
        text = (turn.message.text or "").lower()
        button = turn.message.button
        if button:
            return BotReply(messages=(OutboundMessage(text=f"pressed {button}"),))
        if "hello" in text:
            return BotReply(
                messages=(OutboundMessage(text="Hi! How can I help?", buttons=(Button("Opening hours", "hours"), Button("Balance", "balance"))),),
                intent=Intent("greeting"),
                context={"greeted": True},
            )
        if "balance" in text:
            return BotReply(messages=(OutboundMessage(text="Your balance is 12.50 €"),), intent=Intent("balance", sensitive=True))
        if "agent" in text:
            return BotReply(messages=(OutboundMessage(text="Passing you to a person."),), handoff=Handoff("asked", skill="billing"))
        if "forget" in text:
            return BotReply(messages=(OutboundMessage(text="OK."),), intent=Intent("forget", action="forget_verification"))
        if "bye" in text:
            return BotReply(messages=(OutboundMessage(text="Bye!"),), close=True)
        if "boom" in text:
            raise RuntimeError("the script bot broke")
        if "pass" in text:
            return None
        return BotReply(messages=(OutboundMessage(text=f"echo: {turn.message.text}"),))


class FallbackBot:
    name = "fallback"

    def __init__(self, settings: Any, context: GatewayContext) -> None:
        pass

    async def handle(self, turn: BotTurn) -> BotReply | None:
        return BotReply(messages=(OutboundMessage(text="fallback answer"),))


# --------------------------------------------------------------------------- authenticator


class PinAuth:
    name = "pin"

    def __init__(self, settings: Any, context: GatewayContext) -> None:
        self.forgotten: list[str] = []
        self.fail_forget = False  # a test sets it to see a deletion that fails

    async def start(self, session: AuthSession) -> AuthStep:
        return AuthStep(AuthStatus.PENDING, (OutboundMessage(text="Please type your PIN."),), state={"tries": 0})

    async def handle(self, session: AuthSession, message: InboundMessage) -> AuthStep:
        tries = int(session.state.get("tries", 0))
        if message.text == "1234":
            return AuthStep(AuthStatus.VERIFIED, (OutboundMessage(text="Thanks, verified."),), state={})
        if message.text == "no":
            return AuthStep(AuthStatus.DECLINED, (OutboundMessage(text="OK. Ask for an agent any time."),), state={})
        tries += 1
        if tries >= 2:
            return AuthStep(AuthStatus.LOCKED, (OutboundMessage(text="Too many wrong PINs."),), state={"tries": tries}, reason="locked")
        return AuthStep(AuthStatus.PENDING, (OutboundMessage(text="Wrong PIN, try again."),), state={"tries": tries})

    async def forget(self, customer_id: str) -> bool:
        if self.fail_forget:
            raise OSError("the PIN store is unreachable")
        self.forgotten.append(customer_id)
        return True


# --------------------------------------------------------------------------- CRM


class TableCrmSettings(PluginSettings):
    name: str = "Alice"
    language: str = "it"
    fail: bool = False


class TableCrm:
    name = "table"

    def __init__(self, settings: TableCrmSettings, context: GatewayContext) -> None:
        self.settings = settings
        self.lookups = 0

    async def lookup(self, customer: CustomerView) -> CustomerProfile | None:
        self.lookups += 1
        if self.settings.fail:
            raise ConnectionError("CRM down")
        return CustomerProfile(display_name=self.settings.name, language=self.settings.language,
                               attributes={"tier": "gold"}, source="table")


# --------------------------------------------------------------------------- the plugin


class CorePlugin:
    """Registers all of the above (one object, passed via ``extra_plugins``)."""

    __name__ = "core_test_plugin"

    def __init__(self) -> None:
        self.built: dict[str, Any] = {}

    def _keep(self, cls: Any) -> Any:
        def factory(settings: Any, context: GatewayContext) -> Any:
            obj = cls(settings, context)
            self.built[obj.name] = obj
            return obj

        return factory

    @hookimpl
    def register_channels(self, register: Any) -> None:
        register(ComponentSpec("testchat", self._keep(TestChat), TestChatSettings))

    @hookimpl
    def register_bots(self, register: Any) -> None:
        register(ComponentSpec("script", self._keep(ScriptBot)))
        register(ComponentSpec("fallback", self._keep(FallbackBot)))

    @hookimpl
    def register_authenticators(self, register: Any) -> None:
        register(ComponentSpec("pin", self._keep(PinAuth)))

    @hookimpl
    def register_crm_backends(self, register: Any) -> None:
        register(ComponentSpec("table", self._keep(TableCrm), TableCrmSettings))


class Recorder:
    __name__ = "recorder"

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    @hookimpl
    async def on_message_received(self, event: Any) -> None:
        self.events.append(("received", event))

    @hookimpl
    def on_message_sent(self, event: Any) -> None:
        self.events.append(("sent", event))

    @hookimpl
    def on_handoff(self, event: Any) -> None:
        self.events.append(("handoff", event))

    @hookimpl
    def on_verification_result(self, event: Any) -> None:
        self.events.append(("verification", event))

    @hookimpl
    def on_conversation_closed(self, event: Any) -> None:
        self.events.append(("closed", event))


class Broken:
    __name__ = "broken_plugin"

    @hookimpl
    async def on_message_received(self, event: Any) -> None:
        raise RuntimeError("broken on purpose")


class Slow:
    __name__ = "slow_plugin"

    @hookimpl
    async def on_message_received(self, event: Any) -> None:
        await asyncio.sleep(30)


def core_sections(*, buttons: bool = True, auth: bool = True, crm: bool = False, **extra: Any) -> dict[str, Any]:
    """Sections for ``make_settings`` using the test plugins only (no entry-point plugins)."""
    sections: dict[str, Any] = {
        "plugins": [],
        "channels": {"testchat": {"secret": "test-secret", "buttons": buttons}},
        "bots": [{"use": "script"}, {"use": "fallback"}],
    }
    if auth:
        sections["authentication"] = {"use": "pin", "verified_ttl_s": 600}
    if crm:
        sections["crm"] = [{"use": "table", "settings": {"name": "Alice"}, "cache_ttl_s": 60}]
    sections.update(extra)
    return sections


CHAT_PATH = "/channels/testchat/messages"
