"""An optional in-process cache of each customer's open conversation, to skip the read of a turn.

Reading the customer and conversation costs more than the rest of a turn on SQLite, and
within one gateway instance the previous turn already knows the result. The cache is safe
because the database stays the authority: every conversation write is conditioned on the
``version`` read (see :mod:`gateway.db.store`), so a turn that started from a cached row
that someone else changed (an agent on the desk, another process) fails with
``StaleConversation``, drops the entry and is re-run from a fresh read.

Duplicate deliveries are recognised from the ids of recently committed inbound messages; an
older duplicate is still caught by the database's unique index at commit, after which the
turn is re-run from a fresh read and answered with the stored replies. The pipeline enables
the cache only for a single instance (no ``coordination.redis_url``), where every delivery of
a message reaches this process.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, TypeVar

T = TypeVar("T")

from gateway.db.store import ConversationRow, CustomerRow


class TurnCache:
    """LRU of ``customer id -> (customer row, open conversation row)`` and of recent inbound ids."""

    def __init__(self, *, customers: int = 50_000, recent_messages: int = 200_000) -> None:
        self._rows: OrderedDict[str, tuple[CustomerRow, ConversationRow | None]] = OrderedDict()
        self._recent: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._max_rows = customers
        self._max_recent = recent_messages
        self.hits = 0
        self.misses = 0

    def get(self, customer_id: str) -> tuple[CustomerRow, ConversationRow | None] | None:
        """Private copies of the cached rows (a turn mutates them), or ``None``."""
        entry = self._rows.get(customer_id)
        if entry is None:
            self.misses += 1
            return None
        self._rows.move_to_end(customer_id)
        self.hits += 1
        customer, conversation = entry
        return _clone(customer, profile=_copy(customer.profile)), (
            _clone(conversation, context=_copy(conversation.context)) if conversation else None
        )

    def put(self, customer: CustomerRow, conversation: ConversationRow | None) -> None:
        """Remember the rows as committed (a closed conversation is remembered as none open)."""
        customer.is_new = False
        if conversation is not None and conversation.closed_at is not None:
            conversation = None
        self._rows[customer.id] = (customer, conversation)
        self._rows.move_to_end(customer.id)
        if len(self._rows) > self._max_rows:
            self._rows.popitem(last=False)

    def drop(self, customer_id: str) -> None:
        self._rows.pop(customer_id, None)

    def seen(self, channel: str, message_id: str) -> str | None:
        """The stored inbound id of a recently committed ``(channel, message id)``."""
        return self._recent.get((channel, message_id))

    def remember(self, channel: str, message_id: str, inbound_id: str) -> None:
        self._recent[(channel, message_id)] = inbound_id
        if len(self._recent) > self._max_recent:
            self._recent.popitem(last=False)


def _copy(value: Any) -> Any:
    """A deep copy of JSON-shaped data (dicts, lists, scalars): much cheaper than ``copy.deepcopy``."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _clone(row: T, **changes: Any) -> T:
    # dataclasses.replace() re-runs __init__ with every field; this hot path only needs a copy.
    clone = object.__new__(type(row))
    clone.__dict__.update(row.__dict__, **changes)
    return clone
