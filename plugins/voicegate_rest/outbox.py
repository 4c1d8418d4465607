"""Per-sender outbox for messages sent outside a request (agent replies, acknowledgements).

Integrators poll ``GET /channels/rest/outbox/<sender>?after=<cursor>``: every queued message
has a sequence number, ``after`` acknowledges (and drops) everything up to it, so a poller
that crashes before storing the answer simply asks again with its old cursor (at-least-once).
A poll can wait for new messages (``wait=<seconds>``, long polling).

The messages live in the gateway's database (:mod:`gateway.db.outbox`), so any instance
answers a poll and a restart loses nothing. A waiting poll is woken at once by a message
queued in this process, by a Redis wake-up from another instance (``coordination.redis_url``),
and in any case looks at the database again every ``recheck_s`` seconds.
"""

from __future__ import annotations

import asyncio
import time
from typing import Sequence

from gateway.db.outbox import OutboxStore, Queued
from gateway.messages import OutboundMessage
from gateway.wakeups import Wakeups


class Outbox:
    """Bounded per-sender queues with cursors, shared by every instance on the database."""

    def __init__(self, store: OutboxStore, wakeups: Wakeups, *, recheck_s: float = 5.0) -> None:
        self.store = store
        self.wakeups = wakeups
        # Safety net, not the wake-up mechanism: a wake-up lost while Redis reconnects (or a
        # second instance run without Redis) delays a long poll by at most this much.
        self.recheck_s = recheck_s

    @property
    def dropped(self) -> int:
        """Messages this process dropped because a sender's queue was full (statistics)."""
        return self.store.dropped

    async def put(self, sender: str, messages: Sequence[OutboundMessage]) -> list[int]:
        """Store ``messages`` for ``sender`` and wake its pollers, here and on other instances."""
        seqs = await self.store.put(sender, messages)
        await self.wakeups.notify(sender)
        return seqs

    async def take(self, sender: str, *, after: int = 0, wait_s: float = 0.0) -> list[Queued]:
        """Messages for ``sender`` with a sequence number above ``after`` (acknowledging the others).

        With ``wait_s`` > 0 and nothing to return, waits up to that long for a new message.
        """
        if wait_s <= 0:
            return await self.store.read(sender, after=after)
        deadline = time.monotonic() + wait_s
        with self.wakeups.waiting(sender) as woken:  # registered before the read: no wake-up is missed
            while True:
                woken.clear()
                found = await self.store.read(sender, after=after)
                remaining = deadline - time.monotonic()
                if found or remaining <= 0:
                    return found
                try:
                    await asyncio.wait_for(woken.wait(), min(remaining, self.recheck_s))
                except asyncio.TimeoutError:
                    if time.monotonic() >= deadline:
                        return []  # the time is up; what came unannounced goes with the next poll

    async def pending(self, sender: str) -> int:
        """How many messages wait for ``sender``."""
        return await self.store.pending(sender)
