"""A database at the head revision for storage tests, on SQLite or a private PostgreSQL schema."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from gateway.db.database import Database
from gateway.db.migrate import upgrade_async


@asynccontextmanager
async def migrated(url: str, schema: str | None = None, **connect_options: Any) -> AsyncIterator[Database]:
    """The database at ``url`` (``schema``: a private PostgreSQL schema; ``connect_options`` as
    :meth:`Database.connect` takes them), upgraded with Alembic, closed afterwards."""
    db = await Database.connect(url, schema=schema, **connect_options)
    try:
        await upgrade_async(db)
        yield db
    finally:
        await db.close()
