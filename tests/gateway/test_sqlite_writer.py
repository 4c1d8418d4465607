"""Where SQLite commits run: on the event loop when the write lock is free and no fsync is due, on the writer
thread when another connection holds the lock (the loop never waits for it) or synchronous=FULL."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from datetime import datetime, timezone

from gateway.db.database import Database
from gateway.db.store import Store, WriteSet
from support.databases import migrated


def customers(prefix: str, n: int) -> WriteSet:
    now = datetime.now(timezone.utc)
    return WriteSet(customers=[{"id": f"{prefix}{i}", "profile": None, "profile_fetched_at": None, "created_at": now}
                               for i in range(n)])


def record_threads(store: Store) -> list[str]:
    """The names of the threads the store's SQLite transactions run on, in order, from now on."""
    threads: list[str] = []
    original = store.committer._apply_sync

    def spy(connection, ws):  # type: ignore[no-untyped-def]
        threads.append(threading.current_thread().name)
        return original(connection, ws)

    store.committer._apply_sync = spy  # type: ignore[method-assign]
    return threads


async def count(db: Database) -> int:
    async with db.engine.connect() as conn:
        return (await conn.exec_driver_sql("SELECT count(*) FROM customers")).scalar()


async def test_commits_run_on_the_loop_and_wait_for_a_held_lock_on_the_writer_thread(tmp_path):
    path = tmp_path / "w.db"
    async with migrated(f"sqlite+aiosqlite:///{path}") as db:
        store = Store(db)
        threads = record_threads(store)
        await store.commit(customers("a", 3))
        assert threads == [threading.main_thread().name] and db.writes_deferred == 0

        # Another process-like connection takes the write lock: the commit must neither fail nor block the loop.
        other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")
        commit = asyncio.create_task(store.commit(customers("b", 2)))
        ticks = 0
        for _ in range(10):  # the event loop keeps running while the commit waits for the lock
            await asyncio.sleep(0.02)
            ticks += 1
        assert ticks == 10 and not commit.done()
        other.execute("ROLLBACK")
        other.close()
        await asyncio.wait_for(commit, 10)
        assert db.writes_deferred == 1
        assert threads[0] == threading.main_thread().name and threads[-1].startswith("voicegate-sqlite-writer")
        assert await count(db) == 5  # nothing lost, nothing doubled by the retry

        await store.commit(customers("c", 1))  # the lock is free again: back on the loop
        assert threads[-1] == threading.main_thread().name and await count(db) == 6


async def test_with_synchronous_full_every_commit_runs_on_the_writer_thread(tmp_path):
    async with migrated(f"sqlite+aiosqlite:///{tmp_path / 'f.db'}", sqlite_synchronous="FULL") as db:
        seen: list[str] = []
        await db.run_write(lambda conn: seen.append(threading.current_thread().name))
        assert seen[0].startswith("voicegate-sqlite-writer")


async def test_a_cancelled_deferred_commit_keeps_the_connection_until_it_ends_and_big_batches_use_the_thread(tmp_path):
    path = tmp_path / "c.db"
    async with migrated(f"sqlite+aiosqlite:///{path}") as db:
        store = Store(db)
        threads = record_threads(store)
        other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")
        first = asyncio.create_task(store.commit(customers("a", 1)))
        await asyncio.sleep(0.1)  # deferred to the thread, waiting for the lock
        # The group-commit task itself is cancelled (shut-down); the thread's transaction runs on regardless.
        flusher = store.committer._flusher
        assert flusher is not None
        flusher.cancel()
        first.cancel()
        await asyncio.gather(flusher, first, return_exceptions=True)
        second = asyncio.create_task(store.commit(customers("b", 1)))
        await asyncio.sleep(0.1)
        assert not second.done()  # queued behind the thread's transaction, not run on the loop beside it
        other.execute("ROLLBACK")
        other.close()
        await asyncio.wait_for(second, 10)
        assert threads == ["MainThread", "voicegate-sqlite-writer_0", "voicegate-sqlite-writer_0"], threads
        assert await count(db) == 2  # the cancelled batch's rows were committed all the same, once

        threads.clear()
        await store.commit(customers("big", 2500))  # over INLINE_MAX_ROWS: the loop does not stall on it
        assert threads == ["voicegate-sqlite-writer_0"] and await count(db) == 2502


async def test_temporary_tables_stay_in_memory_on_every_connection(tmp_path):
    """The group commit's ``UPDATE ... FROM (VALUES ...)`` materialises its rows in a temporary table; with
    SQLite's default file storage each one created, wrote and unlinked a file in /var/tmp."""
    db = await Database.connect(f"sqlite+aiosqlite:///{tmp_path / 'temp.db'}")
    try:
        with db.sqlite_writer.connect() as conn:  # type: ignore[union-attr]
            assert conn.exec_driver_sql("PRAGMA temp_store").scalar() == 2  # MEMORY
        async with db.engine.connect() as conn:
            assert (await conn.exec_driver_sql("PRAGMA temp_store")).scalar() == 2
    finally:
        await db.close()
