"""A small plugin for driving the desk through the real app: a JSON channel that records what
the gateway delivers outside a request, a bot that hands off when asked for an agent, and a
CRM that knows two customers. Passed to ``create_app`` via ``extra_plugins``."""

from __future__ import annotations

from typing import Any, Sequence

from aiohttp import web

from gateway.components import (
    BotReply,
    BotTurn,
    ChannelCapabilities,
    ComponentSpec,
    GatewayContext,
    Handoff,
    Intent,
)
from gateway.conversation import CustomerProfile, CustomerView
from gateway.hookspecs import hookimpl
from gateway.messages import InboundMessage, OutboundMessage, to_json

PROFILES = {
    "maria": CustomerProfile(display_name="Maria Verdi", language="it", attributes={"tier": "gold"}, source="desk"),
    "tom": CustomerProfile(display_name="Tom Baker", language="en", source="desk"),
    "hans": CustomerProfile(display_name="Hans Weber", language="de", source="desk"),
}


class DeskChat:
    """``POST /channels/deskchat/messages`` ``{"sender", "message_id", "text"}`` -> ``{"replies": [...]}``;
    pushed messages (agents, acknowledgements) are recorded in :attr:`delivered`."""

    name = "deskchat"
    capabilities = ChannelCapabilities()

    def __init__(self, context: GatewayContext) -> None:
        self.inbox = context.inbox
        self.delivered: list[tuple[str, OutboundMessage]] = []

    def routes(self) -> Sequence[web.RouteDef]:
        return [web.post("/messages", self._receive)]

    async def _receive(self, request: web.Request) -> web.Response:
        data = await request.json()
        replies = await self.inbox.receive(
            InboundMessage(channel=self.name, sender=data["sender"], message_id=data["message_id"], text=data.get("text"))
        )
        return web.json_response({"replies": [to_json(r) for r in replies]})

    async def deliver(self, recipient: str, messages: Sequence[OutboundMessage]) -> None:
        self.delivered.extend((recipient, m) for m in messages)

    def texts_for(self, recipient: str) -> list[str]:
        return [m.text for r, m in self.delivered if r == recipient]

    async def close(self) -> None:
        pass


class HandoffBot:
    """Echoes, and hands off to an agent when the customer mentions one (``bill`` -> billing skill)."""

    name = "desk_handoff"

    async def handle(self, turn: BotTurn) -> BotReply:
        text = turn.message.text or ""
        if "agent" in text.lower():
            skill = "billing" if "bill" in text.lower() else None
            return BotReply(intent=Intent("talk_to_agent"), handoff=Handoff(reason="customer asked", skill=skill))
        return BotReply(messages=(OutboundMessage(text=f"bot heard: {text}"),), intent=Intent("echo"))


class DeskCrm:
    name = "desk_crm"

    async def lookup(self, customer: CustomerView) -> CustomerProfile | None:
        return next((PROFILES[s] for _, s in customer.identities if s in PROFILES), None)


class DeskTestPlugin:
    """Register the three components above."""

    __name__ = "desk_test_plugin"

    @hookimpl
    def register_channels(self, register: Any) -> None:
        register(ComponentSpec(name="deskchat", factory=lambda settings, context: DeskChat(context)))

    @hookimpl
    def register_bots(self, register: Any) -> None:
        register(ComponentSpec(name="desk_handoff", factory=lambda settings, context: HandoffBot()))

    @hookimpl
    def register_crm_backends(self, register: Any) -> None:
        register(ComponentSpec(name="desk_crm", factory=lambda settings, context: DeskCrm()))
