"""SQLite's WAL is checkpointed by a background task, not inside the writer's commits."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from datetime import datetime, timezone

from gateway.db.sqlite_checkpoint import AUTOCHECKPOINT_PAGES
from gateway.db.store import Store, WriteSet
from support.databases import migrated


async def test_committed_rows_reach_the_database_file_in_the_background(tmp_path):
    path = tmp_path / "wal.db"
    async with migrated(f"sqlite+aiosqlite:///{path}") as db:
        with db.sqlite_writer.connect() as conn:  # type: ignore[union-attr]
            pages = conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
        assert pages == AUTOCHECKPOINT_PAGES  # the writer's commits do not checkpoint at 1,000 pages
        now = datetime.now(timezone.utc)
        rows = [{"id": f"c{i}", "profile": None, "profile_fetched_at": None, "created_at": now} for i in range(50)]
        await Store(db).commit(WriteSet(customers=rows))
        assert db.checkpointer is not None
        done = db.checkpointer.checkpoints
        for _ in range(100):  # two passes after the commit: the first may have started before it
            if db.checkpointer.checkpoints >= done + 2:
                break
            await asyncio.sleep(0.05)
        # The database file alone (without its -wal) now holds the rows: they were checkpointed.
        shutil.copy(path, tmp_path / "file-only.db")
        with sqlite3.connect(tmp_path / "file-only.db") as raw:
            assert raw.execute("SELECT count(*) FROM customers").fetchone()[0] == 50
        assert (await Store(db).customer("c7"))[0].id == "c7"
    assert db.checkpointer is None
