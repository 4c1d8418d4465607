"""Per-sender outbox for messages sent outside a request (agent replies, acknowledgements).

Integrators poll ``GET /channels/rest/outbox/<sender>?after=<cursor>``: every queued message
has a sequence number, ``after`` acknowledges (and drops) everything up to it, so a poller
that crashes before storing the answer simply asks again with its old cursor (at-least-once).
A poll can wait for new messages (``wait=<seconds>``, long polling).

The outbox lives in this process's memory, bounded per sender and forgotten after a TTL:
messages are never lost from the record (the pipeline stores every outbound message in the
conversation), but a gateway restart empties what was not polled yet.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Sequence

from gateway.messages import OutboundMessage


@dataclass
class _Queue:
    items: deque[tuple[int, OutboundMessage]]
    touched: float
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class Outbox:
    """Bounded, per-sender queues with cursors. Not shared between processes."""

    def __init__(self, *, max_per_sender: int, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._queues: dict[str, _Queue] = {}
        self._seq = itertools.count(1)  # one counter for all senders: cursors are never reused
        self._max = max_per_sender
        self._ttl = ttl_s
        self._clock = clock
        self._last_purge = clock()
        self.dropped = 0  # messages dropped because a sender's queue was full (statistics)

    def put(self, sender: str, messages: Sequence[OutboundMessage]) -> None:
        """Queue ``messages`` for ``sender`` and wake any poller waiting for them."""
        now = self._clock()
        self._purge(now)
        queue = self._queues.get(sender)
        if queue is None:
            queue = self._queues[sender] = _Queue(deque(), now)
        for message in messages:
            if len(queue.items) >= self._max:
                queue.items.popleft()
                self.dropped += 1
            queue.items.append((next(self._seq), message))
        queue.touched = now
        queue.changed.set()

    async def take(self, sender: str, *, after: int = 0, wait_s: float = 0.0) -> list[tuple[int, OutboundMessage]]:
        """Messages for ``sender`` with a sequence number above ``after`` (dropping the others).

        With ``wait_s`` > 0 and nothing to return, waits up to that long for a new message.
        """
        found = self._after(sender, after)
        if found or wait_s <= 0:
            return found
        queue = self._queues.get(sender)
        if queue is None:
            queue = self._queues[sender] = _Queue(deque(), self._clock())
        queue.changed.clear()
        try:
            await asyncio.wait_for(queue.changed.wait(), wait_s)
        except asyncio.TimeoutError:
            return []
        return self._after(sender, after)

    def pending(self, sender: str) -> int:
        """How many messages wait for ``sender``."""
        queue = self._queues.get(sender)
        return len(queue.items) if queue else 0

    def _after(self, sender: str, after: int) -> list[tuple[int, OutboundMessage]]:
        queue = self._queues.get(sender)
        if queue is None:
            return []
        while queue.items and queue.items[0][0] <= after:
            queue.items.popleft()  # acknowledged by the cursor
        queue.touched = self._clock()
        return list(queue.items)

    def _purge(self, now: float) -> None:
        # Scanning every sender is O(senders); doing it at most once a minute keeps put() cheap.
        if now - self._last_purge < 60.0:
            return
        self._last_purge = now
        for sender in [s for s, q in self._queues.items() if now - q.touched > self._ttl]:
            del self._queues[sender]
