"""Helpers for the desk tests: a hand-moved clock, a recording outbox that persists like the
pipeline, a seeder writing rows the way the pipeline stores them, and the test team."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Sequence

from gateway.agent_settings import AgentProfile, AgentsSettings, AgentTemplate
from gateway.conversation import ConversationState
from gateway.db.models import new_id
from gateway.db.store import ConversationRow, Store, WriteSet, event_row, message_row, outbound_body
from gateway.messages import OutboundMessage

T0 = datetime(2026, 11, 24, 15, 0, 0, tzinfo=timezone.utc)


class Clock:
    """A clock the test moves by hand: no sleeping, no wall time."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@dataclass
class RecordingOutbox:
    """Stands in for the pipeline: records every call and persists what the pipeline would
    (outbound messages, the new state), through the real Store."""

    store: Store
    clock: Clock
    calls: list[tuple[str, str, Any, str]] = field(default_factory=list)
    fail_push: Exception | None = None

    async def push(self, conversation_id: str, messages: Sequence[OutboundMessage], *, author: str) -> None:
        self.calls.append(("push", conversation_id, tuple(messages), author))
        if self.fail_push is not None:
            raise self.fail_push
        conv = await self.store.conversation(conversation_id)
        assert conv is not None
        ws = WriteSet(
            messages=[
                message_row(
                    message_id=new_id(), conversation_id=conversation_id, direction="out", channel=conv.channel,
                    body=outbound_body(m), at=self.clock(), author=author,
                )
                for m in messages
            ]
        )
        await self.store.commit(ws)

    async def set_agent(self, conversation_id: str, agent_id: str | None, *, author: str) -> None:
        self.calls.append(("set_agent", conversation_id, agent_id, author))
        conv = await self.store.conversation(conversation_id)
        assert conv is not None
        # As the pipeline does: None puts it back in the queue; it stays WITH_AGENT.
        conv.assigned_agent, conv.state = agent_id, ConversationState.WITH_AGENT
        ws = WriteSet()
        ws.add_conversation(conv, self.clock())
        ws.events.append(event_row(conversation_id, "agent_assigned", {"agent_id": agent_id, "author": author}, self.clock()))
        await self.store.commit(ws)

    async def close_conversation(self, conversation_id: str, *, reason: str, author: str) -> None:
        self.calls.append(("close", conversation_id, reason, author))
        conv = await self.store.conversation(conversation_id)
        assert conv is not None
        conv.state, conv.closed_at = ConversationState.CLOSED, self.clock()
        ws = WriteSet()
        ws.add_conversation(conv, self.clock())
        await self.store.commit(ws)

    def pushes(self) -> list[tuple[str, tuple[OutboundMessage, ...], str]]:
        return [(c[1], c[2], c[3]) for c in self.calls if c[0] == "push"]


class Seeder:
    """Writes customers, conversations and messages the way the pipeline stores them."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store, self.clock = store, clock

    async def conversation(
        self,
        *,
        state: ConversationState = ConversationState.WITH_AGENT,
        agent: str | None = None,
        profile: dict[str, Any] | None = None,
        channel: str = "rest",
        sender: str | None = None,
        context: dict[str, Any] | None = None,
        skill: str | None = None,
    ) -> str:
        now = self.clock()
        customer_id, conversation_id = new_id(), new_id()
        sender = sender or f"cust-{uuid.uuid4().hex[:8]}"
        ws = WriteSet(
            customers=[{"id": customer_id, "profile": profile, "profile_fetched_at": now if profile else None, "created_at": now}],
            identities=[{"channel": channel, "external_id": sender, "customer_id": customer_id, "created_at": now}],
        )
        row = ConversationRow(
            id=conversation_id, customer_id=customer_id, channel=channel, sender=sender, state=state,
            context=context or {}, pending_intent=None, verified_until=None, assigned_agent=agent, version=0,
            created_at=now, updated_at=now, is_new=True,
        )
        ws.add_conversation(row, now)
        if state is ConversationState.WITH_AGENT:
            ws.events.append(event_row(conversation_id, "handoff", {"agent_id": agent, "skill": skill, "reason": "seed"}, now))
        await self.store.commit(ws)
        return conversation_id

    async def inbound(self, conversation_id: str, text: str) -> str:
        conv = await self.store.conversation(conversation_id)
        assert conv is not None
        mid = new_id()
        await self.store.commit(
            WriteSet(
                messages=[
                    message_row(
                        message_id=mid, conversation_id=conversation_id, direction="in", channel=conv.channel,
                        body={"sender": conv.sender, "text": text}, at=self.clock(), channel_message_id=mid,
                    )
                ]
            )
        )
        return mid

    async def outbound(self, conversation_id: str, text: str, author: str) -> str:
        conv = await self.store.conversation(conversation_id)
        assert conv is not None
        mid = new_id()
        await self.store.commit(
            WriteSet(
                messages=[
                    message_row(
                        message_id=mid, conversation_id=conversation_id, direction="out", channel=conv.channel,
                        body={"text": text}, at=self.clock(), author=author,
                    )
                ]
            )
        )
        return mid


TEAM = (
    AgentProfile(id="anna", name="Anna Bianchi", skills=("billing", "general"), languages=("it", "en"), max_concurrent=2),
    AgentProfile(id="bob", name="Bob", skills=("general",), languages=("en",), max_concurrent=2),
    AgentProfile(id="carla", name="Carla", skills=("tech",), languages=("it",), max_concurrent=1, token="carla-secret"),
)
TEMPLATES = (
    AgentTemplate(name="greet", text="Hi {first_name}, I'm {agent_name}. How can I help?"),
    AgentTemplate(name="balance", text="Your {tier} account {account_number} is being reviewed."),
)


def make_settings(**overrides: Any) -> AgentsSettings:
    values: dict[str, Any] = {"ack_after_s": 45.0, "team": TEAM, "templates": TEMPLATES}
    values.update(overrides)
    return AgentsSettings(**values)


