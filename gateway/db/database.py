"""Connecting to the gateway's database: SQLite (default) or PostgreSQL, both through SQLAlchemy async.

Durability, SQLite: the database runs in WAL mode with ``synchronous=NORMAL``. A commit is
appended to the write-ahead log before the call returns, so it survives a crash or kill of
the gateway process; only an operating-system crash or power loss can lose the last
transactions (the WAL is fsynced at checkpoints, which run in the background: see
:mod:`gateway.db.sqlite_checkpoint`, not at every commit). Pass
``sqlite_synchronous="FULL"`` to fsync the WAL at every commit as well; with group commit
(see :mod:`gateway.db.store`) that costs one fsync per batch, not per message.
PostgreSQL's defaults (``synchronous_commit=on``) fsync at every commit.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gateway import json_codec
from gateway.db.sqlite_checkpoint import AUTOCHECKPOINT_PAGES, WalCheckpointer
from gateway.errors import GatewayError

log = logging.getLogger(__name__)

SUPPORTED = {"sqlite+aiosqlite", "postgresql+asyncpg"}
SqliteSync = Literal["OFF", "NORMAL", "FULL", "EXTRA"]
T = TypeVar("T")


class DatabaseError(GatewayError):
    """The database URL is unusable or the database cannot be reached."""


def normalise_url(url: str | URL) -> URL:
    """Accept ``sqlite:///`` and ``postgresql://`` too, mapping them to the async drivers."""
    parsed = make_url(url) if isinstance(url, str) else url
    driver = parsed.drivername
    if driver in ("sqlite", "sqlite+pysqlite"):
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif driver in ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    if parsed.drivername not in SUPPORTED:
        raise DatabaseError(
            f"database URL driver '{driver}' is not supported: expected sqlite+aiosqlite:///<file> "
            "or postgresql+asyncpg://<host>/<db>. Fix database.url in the YAML."
        )
    if parsed.drivername.startswith("sqlite") and parsed.database in (None, "", ":memory:"):
        raise DatabaseError(
            "an in-memory SQLite database cannot be shared between the gateway's connections: "
            "use a file, e.g. sqlite+aiosqlite:///var/voicegate.db (tests: a tmp_path file)."
        )
    return parsed


@dataclass
class Database:
    """The gateway's database: one async engine plus what the store needs to know about it.

    Create with :meth:`connect`, release with :meth:`close`. ``engine`` is shared with plugins
    (``GatewayContext.db_engine``) that keep their own tables beside the gateway's.
    """

    engine: AsyncEngine
    url: URL
    # SQLite only: a synchronous engine whose one connection writes every group-commit transaction,
    # on the event loop or its own thread (see :meth:`run_write`), instead of one thread hand-off
    # per statement (aiosqlite's model).
    sqlite_writer: Engine | None = None
    _writer_thread: ThreadPoolExecutor | None = field(default=None, repr=False)
    _writer_connection: Any = field(default=None, repr=False)  # checked out once; one transaction at a time
    _inline_writes: bool = field(default=False, repr=False)  # see run_write
    _busy_timeout_ms: int = field(default=5000, repr=False)
    _writer_timeout_ms: int = field(default=-1, repr=False)  # the writer connection's busy_timeout now
    writes_deferred: int = 0  # transactions that found the lock taken and waited on the writer thread
    _thread_write: Any = field(default=None, repr=False)  # the last transaction handed to the writer thread
    checkpointer: WalCheckpointer | None = field(default=None, repr=False)  # SQLite files only

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.engine.dialect.name

    @classmethod
    async def connect(
        cls,
        url: str | URL,
        *,
        schema: str | None = None,
        pool_size: int = 8,
        sqlite_synchronous: SqliteSync = "NORMAL",
        busy_timeout_ms: int = 5000,
        echo: bool = False,
    ) -> "Database":
        """Open ``url`` (``sqlite+aiosqlite:///path`` or ``postgresql+asyncpg://host/db``).

        ``schema`` (PostgreSQL only) puts every table in that schema through the connection's
        ``search_path`` — tests use it to get a private, droppable schema. Raises
        :class:`DatabaseError` naming the URL (without password) when the server is unreachable.
        """
        parsed = normalise_url(url)
        options: dict[str, Any] = {"echo": echo, "json_serializer": json_codec.dumps}  # compact JSON, written every turn
        if parsed.drivername.startswith("sqlite"):
            if schema:
                raise DatabaseError("'schema' is a PostgreSQL option; SQLite has one schema per file")
            path = Path(parsed.database or "")
            path.parent.mkdir(parents=True, exist_ok=True)
            options.update(pool_size=pool_size, max_overflow=pool_size)
        else:
            connect_args: dict[str, Any] = {
                # asyncpg's prepared-statement cache: every hot statement is prepared once per connection.
                "prepared_statement_cache_size": 256,
            }
            if schema:
                connect_args["server_settings"] = {"search_path": schema}
            options.update(pool_size=pool_size, max_overflow=pool_size, connect_args=connect_args)
        engine = create_async_engine(parsed, **options)
        db = cls(engine=engine, url=parsed)
        if parsed.drivername.startswith("sqlite"):
            _install_sqlite_pragmas(engine.sync_engine, sqlite_synchronous, busy_timeout_ms)
            writer = create_engine(
                parsed.set(drivername="sqlite+pysqlite"), echo=echo, json_serializer=json_codec.dumps,
                pool_size=1, max_overflow=0, connect_args={"check_same_thread": False},
            )
            _install_sqlite_pragmas(writer, sqlite_synchronous, busy_timeout_ms)
            db.sqlite_writer = writer
            db._inline_writes = sqlite_synchronous in ("OFF", "NORMAL")
            db._busy_timeout_ms = int(busy_timeout_ms)
            db._writer_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="voicegate-sqlite-writer")
            if parsed.database and parsed.database != ":memory:":
                db.checkpointer = WalCheckpointer(str(path))
                db.checkpointer.start()
        try:
            async with engine.connect() as conn:
                await conn.exec_driver_sql("SELECT 1")
        except Exception as exc:  # noqa: BLE001 - reported with the URL, then re-raised as ours
            await db.close()
            safe = parsed.render_as_string(hide_password=True)
            raise DatabaseError(
                f"cannot connect to the database at {safe}: {exc}. Check database.url and that the server runs."
            ) from exc
        return db

    async def run_write(self, work: Callable[[sqlite3.Connection], T], *, rows: int = 0) -> T:
        """SQLite: run ``work(dbapi_connection)`` in one transaction on the writer connection; ``rows``: how many
        rows it writes (over :data:`INLINE_MAX_ROWS`, it goes to the writer thread).

        ``work`` gets the writer's ``sqlite3`` connection; the transaction begins implicitly at its
        first write (pysqlite's own transaction handling, as SQLAlchemy uses it) and is committed
        when ``work`` returns, rolled back when it raises. Callers never overlap (the group
        committer runs one transaction at a time), so ``work`` may keep per-writer state.

        Where it runs: with ``synchronous`` NORMAL or OFF a WAL commit appends to the log in the
        page cache and never fsyncs (checkpoints run elsewhere, see
        :mod:`gateway.db.sqlite_checkpoint`), so it is a short, bounded write and runs right here on
        the event loop, with the lock *tried*, not waited for (``busy_timeout`` 0). Handing it to a
        thread cost more than the write itself: each hand-off wakes a thread, and that thread's
        Python work takes the GIL from the event loop (measured: -23 % CPU per message in
        ``benchmarks/throughput.py``). When another connection holds the write lock (the CLI, a
        second process), and always with FULL/EXTRA (an fsync per commit), the transaction runs on
        the writer thread instead, which waits up to ``busy_timeout_ms`` for the lock.
        """
        assert self.sqlite_writer is not None and self._writer_thread is not None
        # A transaction handed to the thread runs to its end even if its caller was cancelled meanwhile: until then
        # the connection is the thread's, and later transactions queue behind it on the same thread.
        thread_busy = self._thread_write is not None and not self._thread_write.done()
        if self._inline_writes and not thread_busy and rows <= INLINE_MAX_ROWS:
            try:
                return self._write_transaction(work, wait_for_lock=False)
            except sqlite3.OperationalError as exc:
                if (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF not in _LOCKED:  # primary code of an extended one
                    raise
                self.writes_deferred += 1  # someone else writes: wait for the lock off the event loop
        future = self._writer_thread.submit(self._write_transaction, work, wait_for_lock=True)
        self._thread_write = future
        return await asyncio.wrap_future(future)

    def _write_transaction(self, work: Callable[[sqlite3.Connection], T], *, wait_for_lock: bool) -> T:
        if self._writer_connection is None:
            self._writer_connection = self.sqlite_writer.raw_connection()  # type: ignore[union-attr]
        raw = self._writer_connection.driver_connection
        timeout_ms = self._busy_timeout_ms if wait_for_lock else 0
        if timeout_ms != self._writer_timeout_ms:
            raw.execute(f"PRAGMA busy_timeout={timeout_ms}")
            self._writer_timeout_ms = timeout_ms
        try:
            result = work(raw)
            raw.commit()
        except BaseException:
            raw.rollback()
            raise
        return result

    def _release_writer(self) -> None:
        if self._writer_connection is not None:
            connection, self._writer_connection = self._writer_connection, None
            connection.close()  # back to the pool, which dispose() then closes
        self.sqlite_writer.dispose()  # type: ignore[union-attr]

    async def close(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
        if self.checkpointer is not None:
            checkpointer, self.checkpointer = self.checkpointer, None
            await checkpointer.close()
        if self._writer_thread is not None:
            thread, self._writer_thread = self._writer_thread, None
            await asyncio.get_running_loop().run_in_executor(thread, self._release_writer)
            thread.shutdown(wait=True)


# Rows above which a transaction goes to the writer thread even when the lock is free: the event loop should not
# stall on one huge batch (group commit under a burst, a bulk import).
INLINE_MAX_ROWS = 2000


# SQLITE_BUSY and SQLITE_LOCKED: another connection holds the lock the write needs.
_LOCKED = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}


def _install_sqlite_pragmas(engine: Engine, synchronous: str, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        # WAL: readers never block the writer and vice versa; commits append to the log.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        # Another process (CLI, a second instance) holding the write lock: wait, don't fail.
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Checkpoints run in the background (gateway.db.sqlite_checkpoint), not inside a commit.
        cursor.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")
        # Temporary tables in memory: the group commit's UPDATE ... FROM (VALUES ...) materialises its
        # rows, and with file temp storage each such statement created and unlinked a file in /var/tmp.
        cursor.execute("PRAGMA temp_store=MEMORY")
        cursor.close()
