"""Alembic environment for the gateway's schema.

Two ways in:
* :func:`gateway.db.migrate.upgrade_async` passes an open (sync-facing) connection in
  ``config.attributes["connection"]`` — the gateway migrates at start-up on its own engine;
* otherwise the URL in ``sqlalchemy.url`` is opened with the async driver (``alembic`` CLI).

Only the gateway's tables are compared on autogenerate: tables other packages keep in the
same database (voiceprints vault, agents) are left alone.
"""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy.engine import Connection

from gateway.db.models import metadata
from gateway.db.outbox import outbox as _outbox  # noqa: F401 - registers the table on metadata

VERSION_TABLE = "voicegate_alembic_version"
config = context.config
_OWN_TABLES = {"customers", "identities", "conversations", "messages", "events", "outbox"}


def _include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    if type_ == "table":
        return name in _OWN_TABLES
    return True


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        include_object=_include_object,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_url(url: str) -> None:
    from gateway.db.database import Database

    database = await Database.connect(url)
    try:
        async with database.engine.begin() as conn:
            await conn.run_sync(_configure)
    finally:
        await database.close()


def run() -> None:
    if context.is_offline_mode():
        context.configure(
            url=config.get_main_option("sqlalchemy.url"),
            target_metadata=metadata,
            version_table=VERSION_TABLE,
            literal_binds=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
    else:
        asyncio.run(_run_with_url(config.get_main_option("sqlalchemy.url")))


run()
