"""Background processing of webhook deliveries: one lane per customer, owned tasks.

Vendors want a fast 200 and retry a webhook that is slow to answer, so the channel answers
at once and processes the messages here. Messages of one customer run one after the other
in arrival order (a voice note must not overtake the text before it); different customers
run concurrently. Every task is tracked and drained at shut-down, never left orphaned.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Awaitable, Callable

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[None]]


class SenderLanes:
    """Runs jobs sequentially per sender and concurrently across senders."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._tails: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, sender: str, job: Job) -> None:
        """Queue ``job`` after the sender's previous one; failures are logged, not raised."""
        previous = self._tails.get(sender)
        task = asyncio.create_task(self._run(previous, job), name=f"{self._name}:{sender[-4:]}")
        self._tails[sender] = task
        self._tasks.add(task)
        task.add_done_callback(lambda done: self._done(sender, done))

    def _done(self, sender: str, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self._tails.get(sender) is task:
            del self._tails[sender]

    async def _run(self, previous: asyncio.Task[None] | None, job: Job) -> None:
        if previous is not None:
            await asyncio.wait([previous])  # waits without inheriting its exception
        try:
            await job()
        except Exception:  # noqa: BLE001 - one failed message must not stop the lane
            log.exception("%s: processing an inbound message failed", self._name)

    async def idle(self) -> None:
        """Wait until every queued job has finished (tests, shut-down)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def drain(self, timeout_s: float) -> None:
        """Let running jobs finish for up to ``timeout_s``, then cancel the rest."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout_s)
        for task in pending:
            task.cancel()
        if pending:
            log.warning("%s: %d inbound message(s) abandoned at shut-down", self._name, len(pending))
            await asyncio.wait(pending)


class RecentIds:
    """Vendor message ids seen lately (bounded): a retried delivery is not answered twice.

    The pipeline de-duplicates on ``message_id`` too, but returns the stored replies again;
    this set keeps the channel from sending those replies a second time. Memory only: after
    a restart a retry is answered from the stored replies (at-least-once).
    """

    def __init__(self, capacity: int = 10_000) -> None:
        self._ids: OrderedDict[str, bool] = OrderedDict()
        self._capacity = capacity

    def claim(self, message_id: str) -> bool:
        """True the first time ``message_id`` is seen (or after :meth:`release`), else False."""
        if message_id in self._ids:
            self._ids.move_to_end(message_id)
            return False
        self._ids[message_id] = True
        if len(self._ids) > self._capacity:
            self._ids.popitem(last=False)
        return True

    def release(self, message_id: str) -> None:
        """Forget ``message_id`` so a retry is processed again (the first attempt failed)."""
        self._ids.pop(message_id, None)
