"""Queries the live-agent desk needs beyond :class:`gateway.db.store.Store`.

Everything the desk decides — which agent is least loaded, which waiting customer is due an
acknowledgement — is computed from these rows, never from process memory, so several gateway
instances sharing one database agree.

Conventions the desk relies on (written by the pipeline and the desk):

* a message's ``author`` is ``agent:<id>`` for what an agent wrote and :data:`ACK_AUTHOR`
  for the automatic acknowledgement;
* an assignment is recorded as an event of a type in :data:`ASSIGNMENT_EVENT_TYPES` whose
  ``data["agent_id"]`` names the agent (used for the least-recently-assigned tie-break);
* an acknowledgement is recorded as an :data:`ACK_EVENT` event whose ``data["stretch"]`` is
  the id of the last non-acknowledgement outbound message when it was sent ("" if none).
  A *waiting stretch* is everything after that message, so one stretch gets at most one ack.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Collection, Iterable

from sqlalchemy import and_, case, exists, func, insert, literal, or_, select, update
from sqlalchemy.sql.elements import ColumnElement

from gateway.conversation import ConversationState
from gateway.languages import conversation_language
from gateway.db.database import Database
from gateway.db.models import conversations, customers, events, messages

ACK_AUTHOR = "desk:ack"
ACK_EVENT = "agent_ack"
AGENT_AUTHOR_PREFIX = "agent:"
# Event types the pipeline writes when a conversation gets an agent (the handoff turn, and
# ``set_agent`` for claims); each carries data["agent_id"] (``None`` when queued).
ASSIGNMENT_EVENT_TYPES: tuple[str, ...] = ("handoff", "agent_assigned")

WITH_AGENT = ConversationState.WITH_AGENT.value


@dataclass(frozen=True)
class AckDue:
    """A customer waiting for an agent's answer long enough to be acknowledged."""

    conversation_id: str
    assigned_agent: str | None
    inbound_id: str  # the customer's latest message
    inbound_at: datetime
    stretch: str  # id of the last non-ack outbound message ("" if none): the waiting stretch
    stretch_text: str | None = None  # that message's text (e.g. the handoff message)


@dataclass(frozen=True)
class QueuedConversation:
    """A conversation waiting in the queue, with what routing needs."""

    id: str
    customer_id: str
    language: str | None  # the conversation's (context["language"]), else the customer's CRM profile's
    skill: str | None  # from the latest handoff event
    channel: str = ""


@dataclass(frozen=True)
class ConversationSummary:
    """One line of an agent's desk."""

    id: str
    customer_id: str
    customer_name: str | None
    channel: str
    state: str
    assigned_agent: str | None
    created_at: datetime
    updated_at: datetime
    last_inbound_at: datetime | None
    last_agent_at: datetime | None
    waiting: bool  # the customer wrote after the last agent message: the agent's turn
    message_count: int

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "customer_id": self.customer_id,
            "customer_name": self.customer_name,
            "channel": self.channel,
            "state": self.state,
            "assigned_agent": self.assigned_agent,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "last_inbound_at": _iso(self.last_inbound_at),
            "last_agent_at": _iso(self.last_agent_at),
            "waiting": self.waiting,
            "message_count": self.message_count,
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _agent_of_event() -> ColumnElement[str]:
    return events.c.data["agent_id"].as_string()


class AgentQueries:
    """Read (and, for acknowledgements, lock-and-record) what the desk needs, straight from SQL."""

    def __init__(self, database: Database) -> None:
        self.db = database
        c, m = conversations, messages
        # Correlated per-conversation facts; ``messages.id`` is time-ordered, so max(id) is the latest.
        self._last_in_id = (
            select(func.max(m.c.id))
            .where(m.c.conversation_id == c.c.id, m.c.direction == "in")
            .correlate(c)
            .scalar_subquery()
        )
        self._last_agent_id = (
            select(func.max(m.c.id))
            .where(m.c.conversation_id == c.c.id, m.c.direction == "out", m.c.author.like(AGENT_AUTHOR_PREFIX + "%"))
            .correlate(c)
            .scalar_subquery()
        )
        self._stretch = func.coalesce(
            select(func.max(m.c.id))
            .where(
                m.c.conversation_id == c.c.id,
                m.c.direction == "out",
                or_(m.c.author.is_(None), m.c.author != ACK_AUTHOR),
            )
            # Explicit: it is also used inside the EXISTS below, two levels under ``conversations``.
            .correlate(c)
            .scalar_subquery(),
            literal(""),
        )

    # ------------------------------------------------------------------ routing

    async def open_loads(self, agent_ids: Collection[str]) -> dict[str, int]:
        """Open (WITH_AGENT) conversations per agent, for the agents named."""
        if not agent_ids:
            return {}
        c = conversations
        query = (
            select(c.c.assigned_agent, func.count())
            .where(c.c.state == WITH_AGENT, c.c.assigned_agent.in_(list(agent_ids)))
            .group_by(c.c.assigned_agent)
        )
        async with self.db.engine.connect() as conn:
            return {agent: int(n) for agent, n in (await conn.execute(query)).all()}

    async def last_assignments(self, agent_ids: Collection[str]) -> dict[str, int]:
        """For each agent named, the id of the latest event that assigned a conversation to them
        (higher = more recent; agents never assigned are absent)."""
        if not agent_ids:
            return {}
        agent = _agent_of_event()
        query = (
            select(agent.label("agent_id"), func.max(events.c.id))
            .where(events.c.type.in_(ASSIGNMENT_EVENT_TYPES), agent.in_(list(agent_ids)))
            .group_by(agent)
        )
        async with self.db.engine.connect() as conn:
            return {a: int(n) for a, n in (await conn.execute(query)).all() if a is not None}

    async def assigned_to(self, pairs: Iterable[tuple[str, str]]) -> set[str]:
        """Of the (conversation id, agent id) pairs given, the conversation ids the database already
        shows as WITH_AGENT with that agent."""
        pairs = list(pairs)
        if not pairs:
            return set()
        c = conversations
        query = select(c.c.id, c.c.assigned_agent).where(
            c.c.id.in_([cid for cid, _ in pairs]), c.c.state == WITH_AGENT
        )
        wanted = dict(pairs)
        async with self.db.engine.connect() as conn:
            return {cid for cid, agent in (await conn.execute(query)).all() if wanted.get(cid) == agent}

    # ------------------------------------------------------------------ acknowledgements

    def _due_query(self, cutoff: datetime) -> Any:
        c, last_in, said = conversations, messages.alias("last_in"), messages.alias("said")
        acked = exists().where(
            events.c.conversation_id == c.c.id,
            events.c.type == ACK_EVENT,
            events.c.data["stretch"].as_string() == self._stretch,
        )
        return (
            select(
                c.c.id,
                c.c.assigned_agent,
                last_in.c.id.label("inbound_id"),
                last_in.c.created_at.label("inbound_at"),
                self._stretch.label("stretch"),
                said.c.body.label("stretch_body"),
            )
            .select_from(
                c.join(last_in, last_in.c.id == self._last_in_id).outerjoin(said, said.c.id == self._stretch)
            )
            .where(
                c.c.state == WITH_AGENT,
                last_in.c.created_at <= cutoff,
                # ... and whatever we last told them is old too: an agent who just got the
                # conversation from the queue has ack_after_s to greet before we apologise.
                or_(said.c.id.is_(None), said.c.created_at <= cutoff),
                # The customer spoke last: no agent message after their latest one.
                func.coalesce(self._last_agent_id, literal("")) < last_in.c.id,
                ~acked,
            )
            .order_by(last_in.c.created_at, c.c.id)
        )

    async def due_acks(self, cutoff: datetime, *, limit: int = 200) -> list[AckDue]:
        """Conversations with an agent (or queued for one) whose customer's latest message is
        older than ``cutoff``, not answered by an agent, and not yet acknowledged in this stretch."""
        async with self.db.engine.connect() as conn:
            rows = (await conn.execute(self._due_query(cutoff).limit(limit))).all()
        return [_ack_due(r) for r in rows]

    async def record_ack(self, conversation_id: str, cutoff: datetime, now: datetime) -> AckDue | None:
        """Re-check that ``conversation_id`` is due and record the :data:`ACK_EVENT`, atomically.

        Returns the due acknowledgement to send, or ``None`` if it is no longer due (an agent
        answered, or another instance acknowledged first). The conversation row is locked for
        the transaction by a no-op update (a row lock on PostgreSQL, the write lock on SQLite),
        so concurrent sweepers serialise here and the second one sees the first one's event.
        The no-op leaves ``version`` unchanged, so the pipeline's optimistic writes still match.
        """
        c = conversations
        async with self.db.engine.begin() as conn:
            locked = await conn.execute(
                update(c).where(c.c.id == conversation_id, c.c.state == WITH_AGENT).values(version=c.c.version)
            )
            if locked.rowcount != 1:
                return None
            row = (await conn.execute(self._due_query(cutoff).where(c.c.id == conversation_id))).first()
            if row is None:
                return None
            due = _ack_due(row)
            await conn.execute(
                insert(events).values(
                    conversation_id=conversation_id,
                    type=ACK_EVENT,
                    data={"stretch": due.stretch, "inbound_id": due.inbound_id, "agent_id": due.assigned_agent},
                    at=now,
                )
            )
        return due

    async def agent_spoke_after(self, conversation_id: str, message_id: str) -> bool:
        """True if an agent wrote in ``conversation_id`` after message ``message_id``."""
        m = messages
        query = select(
            exists().where(
                m.c.conversation_id == conversation_id,
                m.c.direction == "out",
                m.c.author.like(AGENT_AUTHOR_PREFIX + "%"),
                m.c.id > message_id,
            )
        )
        async with self.db.engine.connect() as conn:
            return bool((await conn.execute(query)).scalar())

    # ------------------------------------------------------------------ queue

    async def queued(self, *, limit: int = 100) -> list[QueuedConversation]:
        """Queued conversations (WITH_AGENT, no agent), longest waiting first, with the skill of
        their latest handoff and their customer's language."""
        c = conversations
        queued_at = (
            select(func.max(events.c.id))
            .where(events.c.conversation_id == c.c.id, events.c.type.in_(ASSIGNMENT_EVENT_TYPES))
            .correlate(c)
            .scalar_subquery()
        )
        query = (
            select(c.c.id, c.c.customer_id, c.c.channel, c.c.context, customers.c.profile, queued_at.label("queued_at"))
            .select_from(c.join(customers, customers.c.id == c.c.customer_id))
            .where(c.c.state == WITH_AGENT, c.c.assigned_agent.is_(None))
            .order_by(queued_at, c.c.created_at, c.c.id)
            .limit(limit)
        )
        async with self.db.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
            skills: dict[str, Any] = {}
            if rows:
                handoffs = await conn.execute(
                    select(events.c.conversation_id, events.c.data)
                    .where(events.c.conversation_id.in_([r.id for r in rows]), events.c.type == "handoff")
                    .order_by(events.c.id)
                )
                for cid, data in handoffs.all():  # the latest handoff of each conversation wins
                    skills[cid] = (data or {}).get("skill")
        result = []
        for r in rows:
            profile = r.profile if isinstance(r.profile, dict) else {}
            context = r.context if isinstance(r.context, dict) else {}
            skill = skills.get(r.id)
            result.append(
                QueuedConversation(
                    id=r.id,
                    customer_id=r.customer_id,
                    channel=r.channel,
                    language=conversation_language(context, profile.get("language")),
                    skill=skill if isinstance(skill, str) else None,
                )
            )
        return result

    # ------------------------------------------------------------------ desk views

    async def desk(self, agent_id: str, *, limit: int = 200) -> tuple[list[ConversationSummary], list[ConversationSummary]]:
        """(conversations assigned to ``agent_id``, the queue of unassigned ones), oldest first."""
        c, m = conversations, messages
        mine_or_queued = and_(
            c.c.state == WITH_AGENT, or_(c.c.assigned_agent == agent_id, c.c.assigned_agent.is_(None))
        )
        is_agent = m.c.author.like(AGENT_AUTHOR_PREFIX + "%")
        stats = (
            select(
                m.c.conversation_id,
                func.max(case((m.c.direction == "in", m.c.created_at))).label("last_inbound_at"),
                func.max(case((m.c.direction == "in", m.c.id))).label("last_in_id"),
                func.max(case((is_agent, m.c.created_at))).label("last_agent_at"),
                func.max(case((is_agent, m.c.id))).label("last_agent_id"),
                func.count().label("message_count"),
            )
            .where(m.c.conversation_id.in_(select(c.c.id).where(mine_or_queued)))
            .group_by(m.c.conversation_id)
            .subquery()
        )
        query = (
            select(c, customers.c.profile, stats)
            .select_from(c.join(customers, customers.c.id == c.c.customer_id).outerjoin(stats, stats.c.conversation_id == c.c.id))
            .where(mine_or_queued)
            .order_by(c.c.created_at, c.c.id)
            .limit(limit)
        )
        async with self.db.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        mine: list[ConversationSummary] = []
        queue: list[ConversationSummary] = []
        for r in rows:
            profile = r.profile or {}
            name = profile.get("display_name") if isinstance(profile, dict) else None
            summary = ConversationSummary(
                id=r.id,
                customer_id=r.customer_id,
                customer_name=name if isinstance(name, str) else None,
                channel=r.channel,
                state=r.state,
                assigned_agent=r.assigned_agent,
                created_at=r.created_at,
                updated_at=r.updated_at,
                last_inbound_at=r.last_inbound_at,
                last_agent_at=r.last_agent_at,
                waiting=r.last_in_id is not None and (r.last_agent_id or "") < r.last_in_id,
                message_count=int(r.message_count or 0),
            )
            (mine if r.assigned_agent == agent_id else queue).append(summary)
        return mine, queue


def _ack_due(row: Any) -> AckDue:
    body = row.stretch_body if isinstance(row.stretch_body, dict) else {}
    return AckDue(
        stretch_text=body.get("text"),
        conversation_id=row.id,
        assigned_agent=row.assigned_agent,
        inbound_id=row.inbound_id,
        inbound_at=row.inbound_at,
        stretch=row.stretch or "",
    )
