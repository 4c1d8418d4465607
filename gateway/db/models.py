"""The gateway's tables, as SQLAlchemy Core ``Table`` objects on one shared :data:`metadata`.

Core tables rather than ORM classes: the hot path inserts and updates rows with a handful of
compiled statements per batch, and the ORM's unit of work would cost more than the SQL.
Other packages (the voiceprints vault, agent assignment) may add their own tables to
:data:`metadata` so that one ``create_all``/migration covers the whole database.

Identifiers are client-generated, time-ordered UUIDs (:func:`new_id`): rows can be inserted in
batches without ``RETURNING``, replies can point at their inbound message before either is
written, and B-tree inserts stay append-only on PostgreSQL.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

from gateway.conversation import ConversationState

# Stable constraint names: Alembic (and SQLite's batch mode) needs them to alter constraints later.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)
"""The MetaData every VoiceGate table lives on (gateway core and, optionally, plugins)."""

ID_LENGTH = 32  # uuid hex, no dashes

# JSONB on PostgreSQL (binary, indexable); TEXT holding JSON elsewhere.
Json = JSON().with_variant(JSONB(), "postgresql")


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend.

    SQLite has no timestamp type and hands back naive datetimes; this type stores UTC and
    always returns aware UTC values so comparisons with ``clock()`` never mix the two.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware datetime (UTC)")
        value = value.astimezone(timezone.utc)
        # SQLite stores text; keep it naive-UTC so lexical order is time order.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


_id_lock = threading.Lock()
_last_ms = 0
_counter = 0


_random_pool = b""
_random_at = 0


def _random_bits() -> int:
    # One urandom syscall per 512 ids instead of one per id (ids are minted on every message).
    global _random_pool, _random_at
    if _random_at >= len(_random_pool):
        _random_pool, _random_at = os.urandom(4096), 0
    chunk = _random_pool[_random_at : _random_at + 8]
    _random_at += 8
    return int.from_bytes(chunk, "big") & 0x3FFF_FFFF_FFFF_FFFF


def new_id() -> str:
    """A UUIDv7-style identifier (32 hex digits): millisecond time, a counter, random bits.

    Monotonic within one process (the 12-bit counter orders ids minted in the same
    millisecond), so ordering by id within a conversation follows insertion order.
    """
    global _last_ms, _counter
    with _id_lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            _counter += 1
            if _counter > 0xFFF:  # more than 4096 ids in one millisecond: borrow the next one
                _last_ms += 1
                _counter = 0
            ms = _last_ms
        else:
            _last_ms, _counter = ms, 0
        counter = _counter
        rand = _random_bits()
    value = (ms & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | rand
    return f"{value:032x}"


def _id(name: str = "id", *args: Any, **kwargs: Any) -> Column[str]:
    return Column(name, String(ID_LENGTH), *args, **kwargs)


customers = Table(
    "customers",
    metadata,
    _id(primary_key=True),
    # CRM profile cache (merged over backends in YAML order) and when it was fetched; the
    # pipeline refreshes it after a TTL so CRMs are not asked on every message.
    Column("profile", Json, nullable=True),
    Column("profile_fetched_at", UtcDateTime, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
)

identities = Table(
    "identities",
    metadata,
    Column("channel", String(64), primary_key=True),
    Column("external_id", String(255), primary_key=True),  # the sender id on that channel
    _id("customer_id", ForeignKey("customers.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("created_at", UtcDateTime, nullable=False),
)

_STATES = tuple(s.value for s in ConversationState)

conversations = Table(
    "conversations",
    metadata,
    _id(primary_key=True),
    _id("customer_id", ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
    Column("channel", String(64), nullable=False),  # channel of the last inbound message
    Column("sender", String(255), nullable=False),  # the customer's id on that channel (reply address)
    Column("state", String(32), nullable=False),
    Column("context", Json, nullable=False),
    Column("pending_intent", String(128), nullable=True),
    Column("verified_until", UtcDateTime, nullable=True),
    Column("assigned_agent", String(128), nullable=True),
    # Optimistic-concurrency counter: every write is conditioned on it (fencing against a
    # writer whose distributed lock expired).
    Column("version", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("closed_at", UtcDateTime, nullable=True),
    CheckConstraint(f"state IN {_STATES!r}", name="state"),
    # At most one open conversation per customer, across all channels.
    Index(
        "uq_conversations_open_customer",
        "customer_id",
        unique=True,
        sqlite_where=text("state != 'closed'"),
        postgresql_where=text("state != 'closed'"),
    ),
    Index("ix_conversations_customer_created", "customer_id", "created_at"),
    # Only the agent desk asks by state (with_agent, least recently updated first); indexing every
    # conversation cost each turn an index delete and insert, since updated_at changes each time.
    Index(
        "ix_conversations_state_updated",
        "state",
        "updated_at",
        sqlite_where=text("state = 'with_agent'"),
        postgresql_where=text("state = 'with_agent'"),
    ),
)

messages = Table(
    "messages",
    metadata,
    _id(primary_key=True),
    _id("conversation_id", ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False),
    Column("direction", String(3), nullable=False),
    Column("channel", String(64), nullable=False),
    Column("channel_message_id", String(255), nullable=True),
    _id("in_reply_to", ForeignKey("messages.id", ondelete="CASCADE"), nullable=True),
    Column("author", String(160), nullable=True),  # bot:<name>, auth:<name>, agent:<id>, system
    Column("body", Json, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    CheckConstraint("direction IN ('in', 'out')", name="direction"),
    # Idempotency: one inbound message per (channel, channel's message id).
    Index(
        "uq_messages_inbound_channel_message_id",
        "channel",
        "channel_message_id",
        unique=True,
        sqlite_where=text("direction = 'in'"),
        postgresql_where=text("direction = 'in'"),
    ),
    Index("ix_messages_conversation", "conversation_id", "id"),
    # Looked up by a message id only (replies to an inbound message; the cascade): inbound rows have none.
    Index(
        "ix_messages_in_reply_to",
        "in_reply_to",
        sqlite_where=text("in_reply_to IS NOT NULL"),
        postgresql_where=text("in_reply_to IS NOT NULL"),
    ),
)

events = Table(
    "events",
    metadata,
    # INTEGER on SQLite so the column is the rowid alias (autoincrement); BIGINT elsewhere.
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    _id("conversation_id", ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False),
    Column("type", String(64), nullable=False),
    Column("data", Json, nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Index("ix_events_conversation", "conversation_id", "id"),
)

__all__ = [
    "metadata",
    "customers",
    "identities",
    "conversations",
    "messages",
    "events",
    "new_id",
    "UtcDateTime",
    "Json",
]
