"""The web chat's relay between instances, on a real SQLite database and a real PostgreSQL schema: a page that went
away while its messages were being handed over gets them at the next visit, in order, and a hand-over interrupted
half-way (a closing socket, shut-down) loses nothing."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import datetime, timezone
from typing import AsyncIterator, Sequence

import pytest
import pytest_asyncio

from gateway.db.database import Database
from gateway.db.migrate import upgrade_async
from gateway.db.outbox import OutboxStore
from gateway.messages import OutboundMessage
from voicegate_webchat.relay import PendingRelay


@pytest_asyncio.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path, pg_url: str) -> AsyncIterator[OutboxStore]:
    """The web chat's outbox on the migrated gateway schema (SQLite file or a private PostgreSQL schema)."""
    async with contextlib.AsyncExitStack() as stack:
        if request.param == "sqlite":
            database = await Database.connect(f"sqlite+aiosqlite:///{tmp_path / 'relay.db'}")
        else:
            import asyncpg

            dsn = pg_url.replace("postgresql+asyncpg://", "postgresql://")
            schema = f"vg_relay_{uuid.uuid4().hex[:12]}"
            admin = await asyncpg.connect(dsn)
            stack.push_async_callback(admin.close)
            await admin.execute(f'CREATE SCHEMA "{schema}"')
            stack.push_async_callback(admin.execute, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            database = await Database.connect(pg_url, schema=schema)
        stack.push_async_callback(database.close)
        await upgrade_async(database)
        yield OutboxStore(database.engine, "webchat", max_per_recipient=10, ttl_s=3600,
                          clock=lambda: datetime.now(timezone.utc))


def _texts(items) -> list[str]:
    return [item.message.text for item in items]


async def test_a_hand_over_to_a_page_that_went_away_keeps_the_messages(store, redis_url) -> None:
    pushed: list[list[str]] = []
    page_open = [False]

    async def push(session: str, messages: Sequence[OutboundMessage]) -> bool:
        if page_open[0]:
            pushed.append([m.text for m in messages])
        return page_open[0]

    relay = PendingRelay(store, "test:webchat", redis_url, push=push, connected=lambda s: page_open[0])
    await relay.hold("s1", [OutboundMessage(text="one"), OutboundMessage(text="two")])
    assert await relay.hand_over("s1") == 0  # claimed, but the page had gone: stored again
    assert await store.pending("s1") == 2
    page_open[0] = True
    assert await relay.hand_over("s1") == 2
    assert pushed == [["one", "two"]] and await store.pending("s1") == 0
    assert await relay.hand_over("s1") == 0 and pushed == [["one", "two"]]  # each message once
    await relay.close()


async def test_messages_put_back_stay_ahead_of_those_stored_meanwhile(store, redis_url) -> None:
    async def push(session: str, messages: Sequence[OutboundMessage]) -> bool:
        await store.put(session, [OutboundMessage(text="second")])  # another instance stores the next reply
        return False  # ... while the page this instance held went away

    relay = PendingRelay(store, "test:webchat", redis_url, push=push, connected=lambda s: True)
    await store.put("s1", [OutboundMessage(text="first")])
    assert await relay.hand_over("s1") == 0
    assert _texts(await store.claim("s1")) == ["first", "second"]
    await relay.close()


async def test_a_hand_over_cancelled_half_way_loses_nothing(store, redis_url) -> None:
    pushing, release = asyncio.Event(), asyncio.Event()

    async def push(session: str, messages: Sequence[OutboundMessage]) -> bool:
        pushing.set()
        await release.wait()
        return False  # the socket closed meanwhile

    relay = PendingRelay(store, "test:webchat", redis_url, push=push, connected=lambda s: True)
    await store.put("s1", [OutboundMessage(text="agent reply")])
    caller = asyncio.create_task(relay.hand_over("s1"))  # e.g. a socket's worker, cancelled when it closes
    await pushing.wait()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    release.set()
    await relay.close()  # waits for the hand-over it shielded
    assert _texts(await store.claim("s1")) == ["agent reply"]
