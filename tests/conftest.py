"""Fixtures shared by the whole suite: the real PostgreSQL and Redis of this machine.

``gateway.testing`` (loaded as a pytest plugin) provides ``gateway_client``; this file adds the
external services. PostgreSQL tests get a private schema per test, dropped afterwards, so runs
never see each other's rows. A service that is down fails the test with what to do — it is
never silently skipped.
"""

from __future__ import annotations

import os
import uuid
from typing import AsyncIterator

import pytest
import pytest_asyncio

PG_URL = os.environ.get("VOICEGATE_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("VOICEGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379")
RUN_ID = uuid.uuid4().hex[:8]


@pytest.fixture
def pg_url() -> str:
    """The PostgreSQL test server's URL (``VOICEGATE_TEST_PG_URL``)."""
    return PG_URL


@pytest.fixture
def redis_url() -> str:
    """The Redis test server's URL (``VOICEGATE_TEST_REDIS_URL``)."""
    return REDIS_URL


@pytest_asyncio.fixture
async def pg_schema(pg_url: str) -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL schema for one test (dropped with everything in it afterwards)."""
    import asyncpg

    dsn = pg_url.replace("postgresql+asyncpg://", "postgresql://")
    name = f"vg_test_{RUN_ID}_{uuid.uuid4().hex[:8]}"
    try:
        conn = await asyncpg.connect(dsn)
    except Exception as exc:  # noqa: BLE001 - say what to do
        pytest.fail(f"PostgreSQL at {dsn} is not reachable ({exc}); start it (e.g. .ci/run does) or set VOICEGATE_TEST_PG_URL")
    try:
        await conn.execute(f'CREATE SCHEMA "{name}"')
        yield name
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        await conn.close()
