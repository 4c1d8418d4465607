"""Reads and group-committed writes of customers, conversations, messages and events.

The pipeline reads a conversation once per turn (:meth:`Store.load_turn`, one SELECT) and
writes everything the turn produced in one :class:`WriteSet`. :meth:`Store.commit` hands the
write set to a :class:`GroupCommitter`: while one transaction is being committed, the write
sets of other conversations queue up and go into the next transaction together. Each caller
still returns only after *its* rows are committed, so durability per message is unchanged,
but the cost of a commit (and on SQLite the single-writer lock) is shared by a whole batch.
If a batch fails, its write sets are retried one by one so only the offending turn fails.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable, Mapping, Sequence

from sqlalchemy import and_, bindparam, func, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.conversation import ConversationState
from gateway.db.database import Database
from gateway.db.models import conversations, customers, events, identities, messages
from gateway.db.sqlite_batch import BatchStatement, fenced_update_statement, insert_statement, update_by_id_statement
from gateway.errors import GatewayError
from gateway.messages import InboundMessage, OutboundMessage, outbound_from_json, to_json

log = logging.getLogger(__name__)

CLOSED = ConversationState.CLOSED.value


class StaleConversation(GatewayError):
    """Someone else changed the conversation since this turn read it (a lost lock); retry the delivery."""


class DuplicateInbound(GatewayError):
    """The (channel, message id) of an inbound message is already stored."""


@dataclass
class ConversationRow:
    """A conversation as stored, mutable while a turn works on it."""

    id: str
    customer_id: str
    channel: str
    sender: str
    state: ConversationState
    context: dict[str, Any]
    pending_intent: str | None
    verified_until: datetime | None
    assigned_agent: str | None
    version: int
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None = None
    is_new: bool = False
    # The state the stored row has: an update that leaves it alone does not write it, so SQLite
    # skips the indexes that depend on it (see WriteSet.add_conversation).
    stored_state: ConversationState | None = None

    def __post_init__(self) -> None:
        if self.stored_state is None and not self.is_new:
            self.stored_state = self.state


@dataclass
class CustomerRow:
    id: str
    profile: dict[str, Any] | None
    profile_fetched_at: datetime | None
    is_new: bool = False


@dataclass
class TurnRead:
    """What one turn needs from the database, read in one statement."""

    customer: CustomerRow
    conversation: ConversationRow | None  # the open conversation, if any
    duplicate_of: str | None  # id of the stored inbound message with the same (channel, message id)


@dataclass
class StoredMessage:
    """A persisted message, for history views and agents."""

    id: str
    conversation_id: str
    direction: str
    channel: str
    channel_message_id: str | None
    in_reply_to: str | None
    author: str | None
    body: dict[str, Any]
    created_at: datetime


@dataclass
class WriteSet:
    """Rows one turn (or one agent action) inserts or updates, committed atomically."""

    customers: list[dict[str, Any]] = field(default_factory=list)
    identities: list[dict[str, Any]] = field(default_factory=list)
    conversations: list[dict[str, Any]] = field(default_factory=list)
    conversation_updates: list[dict[str, Any]] = field(default_factory=list)  # the state changes
    conversation_updates_same_state: list[dict[str, Any]] = field(default_factory=list)
    profile_updates: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    def add_conversation(self, row: ConversationRow, now: datetime) -> None:
        """Insert ``row`` if new, else update it conditioned on its version (then bump it).

        An update that keeps the state leaves the ``state`` column out: on SQLite, a column in the
        SET list rewrites every index that names it (the open-conversation uniqueness index),
        even when the value is the same: ~10 % of a turn's SQLite time (146 → 131 µs with plain ``sqlite3``,
        docs/performance.md).
        """
        values = {
            "channel": row.channel,
            "sender": row.sender,
            "context": row.context,
            "pending_intent": row.pending_intent,
            "verified_until": row.verified_until,
            "assigned_agent": row.assigned_agent,
            "updated_at": now,
            "closed_at": row.closed_at,
        }
        fence = {"b_id": row.id, "b_version": row.version, "new_version": row.version + 1}
        if row.is_new:
            self.conversations.append(
                {"id": row.id, "customer_id": row.customer_id, "version": 1, "created_at": row.created_at,
                 "state": row.state.value, **values}
            )
            row.version, row.is_new = 1, False
        elif row.state is row.stored_state:
            self.conversation_updates_same_state.append({**fence, **values})
            row.version += 1
        else:
            self.conversation_updates.append({**fence, "state": row.state.value, **values})
            row.version += 1
        row.stored_state = row.state
        row.updated_at = now

    def merge(self, other: "WriteSet") -> None:
        mine = vars(self)
        for name, rows in vars(other).items():
            if rows:  # most of a turn's lists are empty
                mine[name].extend(rows)


# --------------------------------------------------------------------------- encoding


def inbound_body(message: InboundMessage) -> dict[str, Any]:
    """The stored form of an inbound message: small, and without attachment bytes.

    Voice notes are biometric data: the pipeline hands them to the authenticator but never
    writes their audio into the message log; only kind, type, size and duration are kept.
    """
    body: dict[str, Any] = {"sender": message.sender}
    if message.text is not None:
        body["text"] = message.text
    if message.button is not None:
        body["button"] = message.button
    if message.attachments:
        body["attachments"] = [
            {
                k: v
                for k, v in {
                    "kind": a.kind.value,
                    "mime": a.mime,
                    "url": a.url,
                    "duration_s": a.duration_s,
                    "filename": a.filename,
                    "size": len(a.data) if a.data is not None else None,
                }.items()
                if v is not None
            }
            for a in message.attachments
        ]
    if message.received_at is not None:
        body["received_at"] = message.received_at.isoformat()
    return body


def outbound_body(message: OutboundMessage) -> dict[str, Any]:
    """The stored form of an outbound message (empty fields left out)."""
    if not message.attachments and message.template is None:  # the common case, without asdict()
        body: dict[str, Any] = {"text": message.text}
        if message.buttons:
            body["buttons"] = [{"title": b.title, "payload": b.payload} for b in message.buttons]
        return body
    return {k: v for k, v in to_json(message).items() if v not in ((), [], None, "")} or {"text": ""}


# --------------------------------------------------------------------------- group commit


_UPDATED_COLUMNS = (
    "channel", "sender", "state", "context", "pending_intent", "verified_until", "assigned_agent", "updated_at",
    "closed_at",
)
_SAME_STATE_COLUMNS = tuple(name for name in _UPDATED_COLUMNS if name != "state")


class GroupCommitter:
    """Commits concurrent write sets together, one transaction per batch.

    No timer: a batch is committed as soon as the event loop has gone ``quiet_passes`` passes
    without a new write set arriving (at most ``max_passes`` passes in all); those arriving
    while it commits form the next batch. A lone message therefore waits a few loop passes
    (microseconds), and heavy load shares each commit among many.
    """

    def __init__(self, database: Database, *, max_batch: int = 256, quiet_passes: int = 3,
                 max_passes: int = 32) -> None:
        self._db = database
        self._max_batch = max_batch
        self._quiet_passes, self._max_passes = quiet_passes, max_passes
        self._pending: list[tuple[WriteSet, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.batches = 0  # statistics for benchmarks
        self.write_sets = 0
        self._update_conv = _fenced_update(_UPDATED_COLUMNS)
        self._update_conv_same_state = _fenced_update(_SAME_STATE_COLUMNS)
        self._update_profile = (
            update(customers)
            .where(customers.c.id == bindparam("b_id"))
            .values(
                profile=bindparam("profile", type_=customers.c.profile.type),
                profile_fetched_at=bindparam("profile_fetched_at", type_=customers.c.profile_fetched_at.type),
            )
        )
        self._multi_rowcount = database.engine.dialect.supports_sane_multi_rowcount
        self._sqlite: dict[str, BatchStatement] | None = None
        if database.sqlite_writer is not None:
            dialect = database.sqlite_writer.dialect
            self._sqlite = {
                "customers": insert_statement(customers, dialect),
                "identities": insert_statement(identities, dialect),
                "profile_updates": update_by_id_statement(customers, dialect, ["profile", "profile_fetched_at"]),
                "conversations": insert_statement(conversations, dialect),
                "conversation_updates": fenced_update_statement(conversations, dialect, _UPDATED_COLUMNS),
                "conversation_updates_same_state": fenced_update_statement(conversations, dialect, _SAME_STATE_COLUMNS),
                "messages": insert_statement(messages, dialect),
                "events": insert_statement(events, dialect, skip=["id"]),
            }

    async def commit(self, write_set: WriteSet) -> None:
        """Return once ``write_set`` is committed; raise what made its transaction fail."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((write_set, future))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush(), name="voicegate-group-commit")
        await future

    async def drain(self) -> None:
        """Wait for queued write sets (shut-down)."""
        while self._flusher is not None:
            await asyncio.shield(self._flusher)

    async def _flush(self) -> None:
        try:
            while self._pending:
                await self._gather()
                batch, self._pending = self._pending[: self._max_batch], self._pending[self._max_batch :]
                await self._commit_batch(batch)
        finally:
            self._flusher = None

    async def _gather(self) -> None:
        """Yield to the event loop while other turns are still reaching their commit.

        Handlers that are already running reach ``commit`` a loop pass or two after the first
        one; committing at once split 32 concurrent senders into batches of ~2.7. Waiting until
        the loop has gone ``quiet_passes`` passes without a new write set lifted that to ~4.2 and
        cut the gateway's CPU per message by a fifth (``benchmarks/throughput.py``): fewer
        commits, and each event-loop pass handles more sockets.
        """
        quiet = 0
        for _ in range(self._max_passes):
            if quiet >= self._quiet_passes or len(self._pending) >= self._max_batch:
                return
            seen = len(self._pending)
            await asyncio.sleep(0)
            quiet = quiet + 1 if len(self._pending) == seen else 0

    async def _commit_batch(self, batch: list[tuple[WriteSet, asyncio.Future[None]]]) -> None:
        merged = WriteSet()
        for write_set, _ in batch:
            merged.merge(write_set)
        try:
            await self._transaction(merged)
        except Exception as exc:  # noqa: BLE001 - isolate the failing write set below
            if len(batch) == 1:
                _settle(batch[0][1], exc)
                return
            log.warning("group commit of %d write sets failed (%s); retrying them one by one", len(batch), exc)
            for write_set, future in batch:
                try:
                    await self._transaction(write_set)
                except Exception as single_exc:  # noqa: BLE001 - handed to that caller
                    _settle(future, single_exc)
                else:
                    _settle(future, None)
            return
        self.batches += 1
        self.write_sets += len(batch)
        for _, future in batch:
            _settle(future, None)

    async def _transaction(self, ws: WriteSet) -> None:
        if self._db.sqlite_writer is not None:  # the whole transaction in one call (Database.run_write: where)
            rows = sum(len(getattr(ws, name)) for name in _WRITE_ORDER)
            await self._db.run_write(lambda connection: self._apply_sync(connection, ws), rows=rows)
            return
        async with self._db.engine.begin() as conn:
            await self._apply(conn, ws)

    def _steps(self, ws: WriteSet) -> list[tuple[str, Any, list[dict[str, Any]]]]:
        # Parents before children, so foreign keys hold at every statement.
        steps = [
            ("insert", insert(customers), ws.customers),
            ("insert", insert(identities), ws.identities),
            ("insert", self._update_profile, ws.profile_updates),
            ("insert", insert(conversations), ws.conversations),
            ("fenced", self._update_conv, ws.conversation_updates),
            ("fenced", self._update_conv_same_state, ws.conversation_updates_same_state),
            ("messages", insert(messages), ws.messages),
            ("insert", insert(events), ws.events),
        ]
        return [step for step in steps if step[2]]

    async def _apply(self, conn: AsyncConnection, ws: WriteSet) -> None:
        for kind, statement, rows in self._steps(ws):
            if kind == "fenced" and not self._multi_rowcount:
                for row in rows:
                    _check_fence(await conn.execute(statement, row), [row])
                continue
            try:
                result = await conn.execute(statement, rows)
            except IntegrityError as exc:
                if kind == "messages":
                    raise DuplicateInbound(str(exc.orig)) from exc
                raise
            if kind == "fenced":
                _check_fence(result, rows)

    def _apply_sync(self, connection: sqlite3.Connection, ws: WriteSet) -> None:
        """SQLite (see ``Database.run_write`` for where it runs): the prepared batch statements on the raw connection."""
        assert self._sqlite is not None
        cursor = connection.cursor()
        try:
            for name in _WRITE_ORDER:
                rows = getattr(ws, name)
                if not rows:
                    continue
                try:
                    changed = self._sqlite[name].run(cursor, rows)
                except IntegrityError as exc:
                    if name == "messages":
                        raise DuplicateInbound(str(exc.orig)) from exc
                    raise
                if name in _FENCED and changed != len(rows):
                    raise StaleConversation(f"{len(rows) - changed} conversation(s) changed concurrently")
        finally:
            cursor.close()


# Parents before children, so foreign keys hold at every statement.
_WRITE_ORDER = (
    "customers", "identities", "profile_updates", "conversations", "conversation_updates",
    "conversation_updates_same_state", "messages", "events",
)
_FENCED = ("conversation_updates", "conversation_updates_same_state")


def _fenced_update(columns: Sequence[str]) -> Any:
    """``UPDATE conversations SET <columns>, version = :new_version WHERE id = :b_id AND version = :b_version``."""
    return (
        update(conversations)
        .where(and_(conversations.c.id == bindparam("b_id"), conversations.c.version == bindparam("b_version")))
        .values(
            {
                **{name: bindparam(name, type_=conversations.c[name].type) for name in columns},
                "version": bindparam("new_version"),
            }
        )
    )


def _check_fence(result: Any, rows: list[dict[str, Any]]) -> None:
    # The version condition fences off a writer that lost its lock (or read a stale cache):
    # its update matches no row and the whole transaction rolls back.
    if result.rowcount != len(rows):
        ids = ", ".join(r["b_id"] for r in rows[:5])
        raise StaleConversation(f"{len(rows) - result.rowcount} conversation(s) changed concurrently (among {ids})")


def _settle(future: asyncio.Future[None], exc: BaseException | None) -> None:
    if future.done():  # the caller was cancelled; the rows are committed (or not) all the same
        return
    if exc is None:
        future.set_result(None)
    else:
        future.set_exception(exc)


# --------------------------------------------------------------------------- store


_CONV_COLUMNS = (
    conversations.c.id,
    conversations.c.customer_id,
    conversations.c.channel,
    conversations.c.sender,
    conversations.c.state,
    conversations.c.context,
    conversations.c.pending_intent,
    conversations.c.verified_until,
    conversations.c.assigned_agent,
    conversations.c.version,
    conversations.c.created_at,
    conversations.c.updated_at,
    conversations.c.closed_at,
)


def _conversation(row: Row[Any] | Mapping[str, Any]) -> ConversationRow:
    m = row._mapping if isinstance(row, Row) else row
    return ConversationRow(
        id=m["id"],
        customer_id=m["customer_id"],
        channel=m["channel"],
        sender=m["sender"],
        state=ConversationState(m["state"]),
        context=dict(m["context"] or {}),
        pending_intent=m["pending_intent"],
        verified_until=m["verified_until"],
        assigned_agent=m["assigned_agent"],
        version=m["version"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        closed_at=m["closed_at"],
    )


class Store:
    """Typed access to the gateway's tables; writes go through the :class:`GroupCommitter`."""

    def __init__(self, database: Database, *, identity_cache_size: int = 100_000) -> None:
        self.db = database
        self.committer = GroupCommitter(database)
        # identity -> customer never changes once written, so it is safe to cache per process.
        self._identity_cache: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._identity_cache_size = identity_cache_size
        open_conv = conversations.alias("c")
        dup = (
            select(messages.c.id)
            .where(
                messages.c.channel == bindparam("channel"),
                messages.c.channel_message_id == bindparam("message_id"),
                messages.c.direction == "in",
            )
            .scalar_subquery()
            .label("duplicate_of")
        )
        self._load_turn = (
            select(
                customers.c.id.label("cu_id"),
                customers.c.profile,
                customers.c.profile_fetched_at,
                *(open_conv.c[c.name] for c in _CONV_COLUMNS),
                dup,
            )
            .select_from(
                customers.outerjoin(
                    open_conv, and_(open_conv.c.customer_id == customers.c.id, open_conv.c.state != CLOSED)
                )
            )
            .where(customers.c.id == bindparam("customer_id"))
        )
        self._identity = select(identities.c.customer_id).where(
            identities.c.channel == bindparam("channel"), identities.c.external_id == bindparam("sender")
        )

    async def commit(self, write_set: WriteSet) -> None:
        """Commit ``write_set`` (group-committed with concurrent ones); returns once durable."""
        await self.committer.commit(write_set)

    async def customer_for(self, channel: str, sender: str) -> str | None:
        """The customer id of ``sender`` on ``channel``, or ``None`` on first contact."""
        key = (channel, sender)
        cached = self._identity_cache.get(key)
        if cached is not None:
            return cached
        async with self.db.engine.connect() as conn:
            customer_id = (await conn.execute(self._identity, {"channel": channel, "sender": sender})).scalar()
        if customer_id is not None:
            self.remember_identity(channel, sender, customer_id)
        return customer_id

    def remember_identity(self, channel: str, sender: str, customer_id: str) -> None:
        """Cache a committed identity -> customer link."""
        cache = self._identity_cache
        cache[(channel, sender)] = customer_id
        if len(cache) > self._identity_cache_size:
            cache.popitem(last=False)

    async def load_turn(self, customer_id: str, channel: str, message_id: str) -> TurnRead | None:
        """The customer, their open conversation and whether ``message_id`` was already received.

        ``None`` if the customer does not exist.
        """
        params = {"customer_id": customer_id, "channel": channel, "message_id": message_id}
        async with self.db.engine.connect() as conn:
            row = (await conn.execute(self._load_turn, params)).first()
        if row is None:
            return None
        m = row._mapping
        customer = CustomerRow(id=m["cu_id"], profile=m["profile"], profile_fetched_at=m["profile_fetched_at"])
        conversation = _conversation(m) if m["id"] is not None else None
        return TurnRead(customer=customer, conversation=conversation, duplicate_of=m["duplicate_of"])

    async def inbound_owner(self, inbound_id: str) -> tuple[str, str]:
        """(customer id, sender) of a stored inbound message."""
        query = (
            select(conversations.c.customer_id, messages.c.body)
            .select_from(messages.join(conversations, conversations.c.id == messages.c.conversation_id))
            .where(messages.c.id == inbound_id)
        )
        async with self.db.engine.connect() as conn:
            row = (await conn.execute(query)).one()
        return row.customer_id, row.body.get("sender", "")

    async def replies_to(self, inbound_id: str) -> list[OutboundMessage]:
        """The outbound messages stored in reply to ``inbound_id``, in order."""
        query = (
            select(messages.c.body)
            .where(messages.c.in_reply_to == inbound_id, messages.c.direction == "out")
            .order_by(messages.c.id)
        )
        async with self.db.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [outbound_from_json(r.body) for r in rows]

    async def conversation(self, conversation_id: str) -> ConversationRow | None:
        """One conversation by id (open or closed), or ``None``."""
        query = select(*_CONV_COLUMNS).where(conversations.c.id == conversation_id)
        async with self.db.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return _conversation(row) if row is not None else None

    async def customer(self, customer_id: str) -> tuple[CustomerRow, list[tuple[str, str]]] | None:
        """A customer and their (channel, sender) identities, or ``None``."""
        async with self.db.engine.connect() as conn:
            row = (await conn.execute(select(customers).where(customers.c.id == customer_id))).first()
            if row is None:
                return None
            ids = (
                await conn.execute(
                    select(identities.c.channel, identities.c.external_id)
                    .where(identities.c.customer_id == customer_id)
                    .order_by(identities.c.created_at)
                )
            ).all()
        return (
            CustomerRow(id=row.id, profile=row.profile, profile_fetched_at=row.profile_fetched_at),
            [(r.channel, r.external_id) for r in ids],
        )

    async def conversations(
        self,
        *,
        states: Iterable[ConversationState] | None = None,
        assigned_agent: str | None = None,
        unassigned: bool = False,
        customer_id: str | None = None,
        limit: int = 100,
    ) -> list[ConversationRow]:
        """Conversations filtered by state/agent/customer, least recently updated first."""
        query = select(*_CONV_COLUMNS)
        if states is not None:
            query = query.where(conversations.c.state.in_([s.value for s in states]))
        if assigned_agent is not None:
            query = query.where(conversations.c.assigned_agent == assigned_agent)
        if unassigned:
            query = query.where(conversations.c.assigned_agent.is_(None))
        if customer_id is not None:
            query = query.where(conversations.c.customer_id == customer_id)
        query = query.order_by(conversations.c.updated_at, conversations.c.id).limit(limit)
        async with self.db.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_conversation(r) for r in rows]

    async def history(self, conversation_id: str, *, limit: int = 200) -> list[StoredMessage]:
        """The last ``limit`` messages of a conversation, oldest first."""
        query = (
            select(messages)
            .where(messages.c.conversation_id == conversation_id)
            .order_by(messages.c.id.desc())
            .limit(limit)
        )
        async with self.db.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [StoredMessage(**r._mapping) for r in reversed(rows)]

    async def events(self, conversation_id: str) -> list[tuple[str, dict[str, Any], datetime]]:
        """(type, data, at) of a conversation's events, in order."""
        query = select(events.c.type, events.c.data, events.c.at).where(
            events.c.conversation_id == conversation_id
        ).order_by(events.c.id)
        async with self.db.engine.connect() as conn:
            return [(r.type, r.data, r.at) for r in (await conn.execute(query)).all()]

    async def count_messages(self, conversation_id: str | None = None) -> int:
        """Number of stored messages (of one conversation, or all)."""
        query = select(func.count()).select_from(messages)
        if conversation_id is not None:
            query = query.where(messages.c.conversation_id == conversation_id)
        async with self.db.engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())


def message_row(
    *,
    message_id: str,
    conversation_id: str,
    direction: str,
    channel: str,
    body: dict[str, Any],
    at: datetime,
    channel_message_id: str | None = None,
    in_reply_to: str | None = None,
    author: str | None = None,
) -> dict[str, Any]:
    """One row for :attr:`WriteSet.messages` (all keys present: batched inserts need one shape)."""
    return {
        "id": message_id,
        "conversation_id": conversation_id,
        "direction": direction,
        "channel": channel,
        "channel_message_id": channel_message_id,
        "in_reply_to": in_reply_to,
        "author": author,
        "body": body,
        "created_at": at,
    }


def event_row(conversation_id: str, type_: str, data: Mapping[str, Any], at: datetime) -> dict[str, Any]:
    """One row for :attr:`WriteSet.events`."""
    return {"conversation_id": conversation_id, "type": type_, "data": dict(data), "at": at}


__all__: Sequence[str] = [
    "Store",
    "WriteSet",
    "GroupCommitter",
    "ConversationRow",
    "CustomerRow",
    "TurnRead",
    "StoredMessage",
    "StaleConversation",
    "DuplicateInbound",
    "inbound_body",
    "outbound_body",
    "message_row",
    "event_row",
]
