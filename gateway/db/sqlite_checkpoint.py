"""Checkpointing SQLite's write-ahead log off the writer's path.

By default SQLite checkpoints inside the commit that pushes the WAL past 1,000 pages: that
commit copies the log into the database file and fsyncs it, and every group-commit batch
queued behind it waits (the benchmark's latency tail). Instead, :class:`WalCheckpointer`
runs ``PRAGMA wal_checkpoint(PASSIVE)`` every ``interval_s`` on its own connection and
thread: a passive checkpoint never blocks the writer or readers, and the writer restarts
the log from the beginning once a checkpoint has caught up. The connections keep a large
``wal_autocheckpoint`` (:data:`AUTOCHECKPOINT_PAGES`) as a bound should this task stall.
Durability is unchanged: commits are in the WAL before they return, as before.

Under writes without a pause a passive checkpoint never quite catches up (new frames arrive
while it copies), so the log is not restarted and grows until the writer's own
autocheckpoint: measured in-process, it levels off at ~83 MB and the turns cost the same
before and after. A ``RESTART`` checkpoint from here once the log passed 1,000 frames kept it
at ~32 MB, but holding writers off for its last copy and fsync doubled the p99 at
1,000 msg/s (3.2-3.8 -> 7.2-8.8 ms) for no gain in rate; docs/performance.md has the runs.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger(__name__)

AUTOCHECKPOINT_PAGES = 20_000  # ~80 MB of WAL with 4 KiB pages: only reached if checkpoints stall


class WalCheckpointer:
    """A background task that checkpoints the WAL of the SQLite file at ``path``."""

    def __init__(self, path: str, *, interval_s: float = 0.5) -> None:
        self._path = path
        self._interval_s = interval_s
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="voicegate-sqlite-checkpoint")
        self._connection: sqlite3.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self.checkpoints = 0

    def start(self) -> None:
        """Start checkpointing (call from the event loop)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="voicegate-sqlite-checkpoint")

    async def close(self) -> None:
        """Stop, run one last checkpoint and close the connection."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._thread, self._checkpoint)
        except sqlite3.Error as exc:
            log.warning("final WAL checkpoint of %s failed: %s", self._path, exc)
        await loop.run_in_executor(self._thread, self._disconnect)
        self._thread.shutdown(wait=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await loop.run_in_executor(self._thread, self._checkpoint)
            except sqlite3.Error as exc:  # e.g. the file is locked by a migration: try again later
                log.warning("WAL checkpoint of %s failed: %s; retrying", self._path, exc)

    def _checkpoint(self) -> None:
        if self._connection is None:
            self._connection = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self.checkpoints += 1

    def _disconnect(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
