"""Pending web chat messages shared by several gateway instances (``coordination.redis_url`` set).

A page's WebSocket is connected to one instance, but an agent's reply (or an acknowledgement)
may be produced on any. The instance with no socket for the session stores the messages in
the database (:mod:`gateway.db.outbox`) and announces the session on Redis; the instance
that holds a socket for it claims them (exactly one claimer gets each row) and pushes them.
If no instance holds one, they stay stored and the next ``hello`` of that session, on
whichever instance, claims them. A Redis wake-up lost while Redis reconnects delays a
message by at most ``sweep_s``: each instance also looks for stored messages of its own
sessions that often.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Awaitable, Callable, Sequence

from gateway.db.outbox import OutboxStore
from gateway.messages import OutboundMessage
from gateway.wakeups import Wakeups

log = logging.getLogger(__name__)

Push = Callable[[str, Sequence[OutboundMessage]], Awaitable[bool]]


class PendingRelay:
    """Hands messages to the instance holding a session's socket, through the database and Redis.

    ``push(session, messages)`` sends to this instance's open pages of ``session`` (False if
    none took them); ``connected(session)`` says whether this instance has one.
    """

    def __init__(self, store: OutboxStore, topic: str, redis_url: str, *, push: Push,
                 connected: Callable[[str], bool], sweep_s: float = 10.0) -> None:
        self.store = store
        self.wakeups = Wakeups(topic, redis_url, on_remote=self._announced)
        self._push = push
        self._connected = connected
        self.sweep_s = sweep_s
        self._tasks: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Subscribe to announcements and start the periodic sweep."""
        await self.wakeups.start()
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="voicegate-webchat-relay-sweep")

    async def close(self) -> None:
        """Stop the sweep, then let the hand-overs in flight finish (each pushes or puts its rows back)."""
        sweeper, self._sweeper = self._sweeper, None
        if sweeper is not None:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
        if self._tasks:
            _, late = await asyncio.wait(list(self._tasks), timeout=10.0)
            for task in late:  # stuck on the database: the rows they claimed may be lost, say so
                log.warning("a web chat hand-over did not finish at shut-down")
                task.cancel()
        await self.wakeups.close()

    async def hold(self, session: str, messages: Sequence[OutboundMessage]) -> None:
        """Store ``messages`` for ``session`` and tell every instance to look."""
        await self.store.put(session, messages)
        await self.wakeups.notify(session)

    async def hand_over(self, session: str) -> int:
        """Claim what waits for ``session`` and push it to this instance's pages; return how many.

        If the pages went away meanwhile, the messages go back under their old sequence numbers (still ahead of
        anything stored since) for the next visit. The claim -> push -> put-back runs in its own task, shielded:
        a caller cancelled half-way (a closing socket, shut-down) cannot leave claimed rows neither pushed nor
        stored; :meth:`close` waits for such tasks.
        """
        task = asyncio.create_task(self._claim_and_push(session), name="voicegate-webchat-hand-over")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return await asyncio.shield(task)

    async def _claim_and_push(self, session: str) -> int:
        claimed = await self.store.claim(session)
        if not claimed:
            return 0
        pushed = False
        try:
            pushed = await self._push(session, [item.message for item in claimed])
        finally:
            if not pushed:
                await self.store.put_back(session, claimed)
        return len(claimed) if pushed else 0

    def _announced(self, session: str) -> None:
        # Runs in the Redis listener: the work goes to a task so the listener keeps reading.
        if self._connected(session):
            task = asyncio.create_task(self._hand_over_logged(session), name="voicegate-webchat-announced")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _hand_over_logged(self, session: str) -> None:
        try:
            await self.hand_over(session)
        except Exception:  # noqa: BLE001 - the rows stay stored; the sweep or the next hello retries
            log.exception("could not hand pending web chat messages over to a connected page")

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_s)
            try:
                for session in await self.store.recipients():
                    if self._connected(session):
                        await self._hand_over_logged(session)
            except Exception:  # noqa: BLE001 - try again at the next sweep
                log.warning("could not look for pending web chat messages", exc_info=True)
