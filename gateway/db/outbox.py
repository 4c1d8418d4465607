"""Messages waiting for a recipient, kept in the gateway's database so every instance sees them.

Channels that cannot push (the REST channel's polled outbox) or whose customer is not connected
to this instance (the web chat's pending messages) queue what is sent outside a request here,
per ``(channel, recipient)``. Every row gets a sequence number ``seq`` from the database:
increasing and never reused (SQLite ``AUTOINCREMENT``, a PostgreSQL identity), so a cursor a
poller stored keeps meaning the same thing after a restart and on another instance.

A recipient's queue is bounded (the oldest rows are dropped) and forgotten ``ttl_s`` after it
was last filled or read (``touched_at``, the same for every row of a queue). Nothing here is
on the inbound path: rows are written only for messages sent outside a request.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Sequence

from sqlalchemy import ColumnElement, BigInteger, Column, Index, Integer, String, Table, delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.db.models import Json, UtcDateTime, metadata
from gateway.messages import OutboundMessage, outbound_from_json, to_json

log = logging.getLogger(__name__)

outbox = Table(
    "outbox",
    metadata,
    # INTEGER on SQLite so the column is the rowid alias; AUTOINCREMENT so a deleted maximum is
    # never handed out again (a poller's old cursor would otherwise acknowledge new messages).
    Column("seq", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("channel", String(64), nullable=False),
    Column("recipient", String(255), nullable=False),  # the customer's id on that channel
    Column("body", Json, nullable=False),  # gateway.messages.to_json of an OutboundMessage
    Column("touched_at", UtcDateTime, nullable=False),  # last fill or read of the recipient's queue
    Index("ix_outbox_recipient", "channel", "recipient", "seq"),
    Index("ix_outbox_touched_at", "touched_at"),
    sqlite_autoincrement=True,
)

_PURGE_EVERY_S = 60.0  # sweeping every recipient's expired rows at most this often keeps put() cheap


@dataclass(frozen=True, slots=True)
class Queued:
    """One waiting message and its sequence number."""

    seq: int
    message: OutboundMessage


class OutboxStore:
    """The queues of one channel (``channel``) in the table :data:`outbox`.

    ``clock`` is the gateway's (aware UTC datetimes), so tests can move time.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        channel: str,
        *,
        max_per_recipient: int,
        ttl_s: float,
        clock: Callable[[], datetime],
    ) -> None:
        self.engine = engine
        self.channel = channel
        self.max_per_recipient = max_per_recipient
        self.ttl = timedelta(seconds=ttl_s)
        self.clock = clock
        self._last_purge = float("-inf")
        self.dropped = 0  # rows this process dropped because a queue was full (statistics)

    async def put(self, recipient: str, messages: Sequence[OutboundMessage]) -> list[int]:
        """Queue ``messages`` for ``recipient`` in one transaction; return their sequence numbers."""
        if not messages:
            return []
        now = self.clock()
        async with self.engine.begin() as conn:
            await self._lock(conn, recipient)
            # Writes first: on SQLite a transaction that reads before its first write may fail
            # to upgrade its snapshot when another connection wrote in between.
            mine = self._queue(recipient)
            await conn.execute(delete(outbox).where(mine, outbox.c.touched_at < now - self.ttl))
            await conn.execute(update(outbox).where(mine).values(touched_at=now))
            seqs = []
            for message in messages:  # one at a time: the order of seq is the order of messages
                result = await conn.execute(outbox.insert().values(
                    channel=self.channel, recipient=recipient, body=to_json(message), touched_at=now))
                seqs.append(int(result.inserted_primary_key[0]))
            newest_kept = (select(outbox.c.seq).where(mine).order_by(outbox.c.seq.desc())
                           .limit(1).offset(self.max_per_recipient).scalar_subquery())
            trimmed = await conn.execute(delete(outbox).where(mine, outbox.c.seq <= newest_kept))
            self.dropped += max(trimmed.rowcount or 0, 0)
        if time.monotonic() - self._last_purge >= _PURGE_EVERY_S:
            self._last_purge = time.monotonic()
            await self.purge()
        return seqs

    async def purge(self) -> int:
        """Delete every expired queue of this channel; return how many rows went.

        Its own transaction, after the caller's: recipients nobody polls must not hold rows
        forever, but sweeping them is no reason to fail or slow a delivery.
        """
        try:
            expired = (select(outbox.c.seq)
                       .where(outbox.c.channel == self.channel, outbox.c.touched_at < self.clock() - self.ttl)
                       # PostgreSQL: skip rows a put()/read() of that recipient holds, instead of locking them in
                       # another order than it does (a deadlock would abort the delivery); the next purge gets them.
                       .with_for_update(skip_locked=True))
            async with self.engine.begin() as conn:
                result = await conn.execute(delete(outbox).where(outbox.c.seq.in_(expired.scalar_subquery())))
            return max(result.rowcount or 0, 0)
        except Exception:  # noqa: BLE001 - the next purge retries
            log.warning("could not purge expired %s outbox rows", self.channel, exc_info=True)
            return 0

    async def read(self, recipient: str, *, after: int = 0) -> list[Queued]:
        """The messages above ``after``; those up to ``after`` are acknowledged (deleted).

        Reading only, unless there is something to acknowledge or to return (which refreshes
        the queue's TTL): an empty poll costs one indexed ``SELECT``.
        """
        now = self.clock()
        async with self.engine.connect() as conn:
            rows = (await conn.execute(
                select(outbox.c.seq, outbox.c.body)
                .where(self._queue(recipient), outbox.c.touched_at >= now - self.ttl)
                .order_by(outbox.c.seq)
            )).all()
        fresh = [Queued(int(seq), outbound_from_json(body)) for seq, body in rows if seq > after]
        acknowledged = any(seq <= after for seq, _ in rows)
        if acknowledged or fresh:
            async with self.engine.begin() as conn:
                await self._lock(conn, recipient)  # same order as put(): no deadlock between them
                if acknowledged:
                    await conn.execute(delete(outbox).where(self._queue(recipient), outbox.c.seq <= after))
                if fresh:
                    await conn.execute(update(outbox).where(self._queue(recipient)).values(touched_at=now))
        return fresh

    async def claim(self, recipient: str) -> list[Queued]:
        """Take (delete and return) everything waiting for ``recipient``: exactly one caller gets each row."""
        now = self.clock()
        async with self.engine.begin() as conn:
            await self._lock(conn, recipient)
            rows = (await conn.execute(
                delete(outbox).where(self._queue(recipient)).returning(outbox.c.seq, outbox.c.body, outbox.c.touched_at)
            )).all()
        live = sorted((seq, body) for seq, body, touched in rows if touched >= now - self.ttl)
        return [Queued(int(seq), outbound_from_json(body)) for seq, body in live]

    async def recipients(self) -> list[str]:
        """The recipients with unexpired messages waiting (one indexed query; the table stays small
        where queues are drained as soon as the customer is reachable)."""
        async with self.engine.connect() as conn:
            return list((await conn.execute(
                select(outbox.c.recipient).distinct()
                .where(outbox.c.channel == self.channel, outbox.c.touched_at >= self.clock() - self.ttl)
            )).scalars())

    async def put_back(self, recipient: str, items: Sequence[Queued]) -> None:
        """Return claimed messages under their old sequence numbers, so they keep their place ahead of anything
        queued for ``recipient`` since (a hand-over that found no page must not reorder the conversation)."""
        if not items:
            return
        now = self.clock()
        async with self.engine.begin() as conn:
            await self._lock(conn, recipient)
            await conn.execute(update(outbox).where(self._queue(recipient)).values(touched_at=now))
            for item in items:
                await conn.execute(outbox.insert().values(seq=item.seq, channel=self.channel, recipient=recipient,
                                                          body=to_json(item.message), touched_at=now))

    async def pending(self, recipient: str) -> int:
        """How many unexpired messages wait for ``recipient``."""
        async with self.engine.connect() as conn:
            return int((await conn.execute(
                select(func.count()).select_from(outbox)
                .where(self._queue(recipient), outbox.c.touched_at >= self.clock() - self.ttl)
            )).scalar_one())

    def _queue(self, recipient: str) -> ColumnElement[bool]:
        return (outbox.c.channel == self.channel) & (outbox.c.recipient == recipient)

    async def _lock(self, conn: AsyncConnection, recipient: str) -> None:
        # PostgreSQL hands out sequence numbers before commit, so two writers for one recipient
        # could commit out of order and a poller's cursor would skip the later-committed row.
        # Serialising writers per recipient (until commit) keeps seq order = commit order.
        # SQLite needs nothing: it has one writer at a time.
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(self.channel, recipient)})


def _lock_key(channel: str, recipient: str) -> int:
    digest = hashlib.blake2b(f"voicegate-outbox\0{channel}\0{recipient}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)

