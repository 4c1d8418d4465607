"""Bring a database's schema to the newest Alembic revision.

``voicegate db upgrade`` calls :func:`upgrade`; the gateway's start-up calls
:func:`upgrade_async` on its own engine. Both use the migrations packaged in
:mod:`gateway.migrations`, so no ``alembic.ini`` is needed.
"""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL, Connection

from gateway.db.database import Database

SCRIPT_LOCATION = "gateway:migrations"
VERSION_TABLE = "voicegate_alembic_version"


def alembic_config(url: str | URL | None = None) -> Config:
    """An Alembic ``Config`` pointing at the packaged migrations (and ``url`` if given)."""
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    if url is not None:
        rendered = url.render_as_string(hide_password=False) if isinstance(url, URL) else url
        config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return config


def head_revision() -> str:
    """The newest revision the packaged migrations know."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


async def upgrade_async(database: Database, revision: str = "head") -> None:
    """Migrate ``database`` to ``revision`` inside one transaction (PostgreSQL DDL is transactional)."""
    config = alembic_config(database.url)

    def run(connection: Connection) -> None:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    async with database.engine.begin() as conn:
        await conn.run_sync(run)


async def current_revision(database: Database) -> str | None:
    """The revision the database is at (``None`` for an empty database)."""

    def read(connection: Connection) -> str | None:
        ctx = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return ctx.get_current_revision()

    async with database.engine.connect() as conn:
        return await conn.run_sync(read)


def upgrade(url: str | URL, revision: str = "head", **connect_options: Any) -> str | None:
    """Blocking: migrate the database at ``url`` to ``revision`` and return the revision reached.

    For the CLI (no event loop running). Inside a running loop use :func:`upgrade_async`.
    """

    async def main() -> str | None:
        database = await Database.connect(url, **connect_options)
        try:
            await upgrade_async(database, revision)
            return await current_revision(database)
        finally:
            await database.close()

    return asyncio.run(main())
