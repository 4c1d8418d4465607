"""Fixtures for the live-agent desk: a real Store on a tmp SQLite file (or PostgreSQL), a
controllable clock, and an outbox that records calls and writes what the pipeline would."""

from __future__ import annotations

from pathlib import Path
from typing import AsyncIterator

import pytest

from gateway.agents import AgentDesk
from gateway.db.database import Database
from gateway.db.models import metadata
from gateway.db.store import Store

from .support import Clock, RecordingOutbox, Seeder, make_settings


async def _sqlite_database(tmp_path: Path) -> Database:
    db = await Database.connect(f"sqlite+aiosqlite:///{tmp_path / 'desk.db'}")
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    return db


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    db = await _sqlite_database(tmp_path)
    yield db
    await db.close()


@pytest.fixture
async def pg_database(pg_url: str, pg_schema: str) -> AsyncIterator[Database]:
    """The real PostgreSQL, in the private schema the suite's ``pg_schema`` fixture makes and drops."""
    db = await Database.connect(pg_url, schema=pg_schema)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        yield db
    finally:
        await db.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(database: Database) -> AsyncIterator[Store]:
    s = Store(database)
    yield s
    await s.committer.drain()


@pytest.fixture
def outbox(store: Store, clock: Clock) -> RecordingOutbox:
    return RecordingOutbox(store, clock)


@pytest.fixture
def seed(store: Store, clock: Clock) -> Seeder:
    return Seeder(store, clock)


@pytest.fixture
def desk(store: Store, outbox: RecordingOutbox, clock: Clock) -> AgentDesk:
    return AgentDesk(make_settings(), store, outbox, clock)
