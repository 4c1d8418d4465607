"""The REST channel's per-sender outbox on a real database (SQLite and PostgreSQL): cursors,
bounds, expiry, long polling, and no message lost while writers and a poller race."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone
from typing import AsyncIterator, Callable

import pytest
import pytest_asyncio

from gateway.db.database import Database
from gateway.db.outbox import OutboxStore, Queued
from gateway.messages import Button, OutboundMessage
from gateway.wakeups import Wakeups
from support.databases import migrated
from voicegate_rest.outbox import Outbox

WRITERS = 3  # concurrent writers for one sender
START = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest_asyncio.fixture(params=["sqlite", "postgresql"])
async def database(request: pytest.FixtureRequest, tmp_path, pg_url: str) -> AsyncIterator[Database]:
    """The gateway's schema (migrated with Alembic) on a SQLite file or a private PostgreSQL schema."""
    if request.param == "sqlite":
        async with migrated(f"sqlite+aiosqlite:///{tmp_path / 'outbox.db'}") as db:
            yield db
        return
    import asyncpg

    dsn = pg_url.replace("postgresql+asyncpg://", "postgresql://")
    schema = f"vg_outbox_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        async with migrated(pg_url, schema) as db:
            yield db
    finally:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_outbox(database: Database, clock: Clock) -> Callable[..., Outbox]:
    def build(max_per_sender: int = 10, ttl_s: float = 60, recheck_s: float = 5.0) -> Outbox:
        store = OutboxStore(database.engine, "rest", max_per_recipient=max_per_sender, ttl_s=ttl_s, clock=clock)
        return Outbox(store, Wakeups("test:outbox"), recheck_s=recheck_s)

    return build


def texts(items: list[Queued]) -> list[str]:
    return [item.message.text for item in items]


async def test_cursor_acknowledges_what_was_read(make_outbox) -> None:
    outbox = make_outbox()
    await outbox.put("alice", [OutboundMessage(text="one", buttons=(Button("Yes", "yes"),)), OutboundMessage(text="two")])
    await outbox.put("bob", [OutboundMessage(text="for bob")])
    first = await outbox.take("alice")
    assert texts(first) == ["one", "two"]
    assert first[0].message.buttons == (Button("Yes", "yes"),)  # stored and read back whole
    # Not acknowledged yet: a poller that lost the answer gets the same messages again.
    assert texts(await outbox.take("alice")) == ["one", "two"]
    await outbox.put("alice", [OutboundMessage(text="three")])
    assert texts(await outbox.take("alice", after=first[-1].seq)) == ["three"]
    assert await outbox.pending("alice") == 1
    assert texts(await outbox.take("bob")) == ["for bob"]


async def test_sequence_numbers_are_never_reused(make_outbox) -> None:
    outbox = make_outbox()
    (old,) = await outbox.put("alice", [OutboundMessage(text="one")])
    assert await outbox.take("alice", after=old) == [] and await outbox.pending("alice") == 0
    # The acknowledged row was the newest in the table: a new one must still get a higher number,
    # or the poller's stored cursor would acknowledge it unread.
    (new,) = await outbox.put("alice", [OutboundMessage(text="two")])
    assert new > old
    assert texts(await outbox.take("alice", after=old)) == ["two"]


async def test_a_full_outbox_drops_the_oldest(make_outbox) -> None:
    outbox = make_outbox(max_per_sender=2)
    await outbox.put("alice", [OutboundMessage(text=str(i)) for i in range(5)])
    assert texts(await outbox.take("alice")) == ["3", "4"]
    assert outbox.dropped == 3


async def test_long_poll_wakes_on_delivery_and_times_out_empty(make_outbox) -> None:
    # recheck_s far beyond the test: only the wake-up can end the first wait with a message.
    outbox = make_outbox(recheck_s=600)
    waiting = asyncio.create_task(outbox.take("alice", wait_s=300))
    for _ in range(200):  # until the poll has read once and waits
        if outbox.wakeups.waiters("alice"):
            break
        await asyncio.sleep(0.01)
    await outbox.put("alice", [OutboundMessage(text="agent here")])
    assert texts(await waiting) == ["agent here"]
    assert await outbox.take("nobody", wait_s=0.05) == []


async def test_unpolled_outboxes_expire_and_polls_keep_them(make_outbox, clock: Clock) -> None:
    outbox = make_outbox(ttl_s=100)
    await outbox.put("alice", [OutboundMessage(text="old")])
    await outbox.put("carol", [OutboundMessage(text="read often")])
    clock.now += timedelta(seconds=90)
    assert texts(await outbox.take("carol")) == ["read often"]  # a poll that returns messages refreshes them
    clock.now += timedelta(seconds=20)
    await outbox.put("bob", [OutboundMessage(text="new")])
    assert await outbox.pending("alice") == 0 and await outbox.take("alice") == []
    assert await outbox.pending("bob") == 1 and await outbox.pending("carol") == 1
    assert await outbox.store.purge() == 1  # alice's row, from the table too


async def test_writers_racing_a_poller_lose_nothing(database: Database, make_outbox) -> None:
    # Two "instances" (outboxes) write for one sender while a poller acknowledges as it reads:
    # a message committed after a higher-numbered one would be acknowledged unread.
    writers = [make_outbox(max_per_sender=1000) for _ in range(WRITERS)]
    poller = make_outbox(max_per_sender=1000)
    expected = {f"{w}-{i}" for w in range(WRITERS) for i in range(40)}

    async def write(w: int) -> None:
        for i in range(40):
            await writers[w].put("alice", [OutboundMessage(text=f"{w}-{i}")])

    seen: list[str] = []
    cursor = 0
    tasks = [asyncio.create_task(write(w)) for w in range(WRITERS)]
    for _ in range(2000):
        items = await poller.take("alice", after=cursor)
        if items:
            seen.extend(texts(items))
            cursor = items[-1].seq
        if set(seen) >= expected and all(t.done() for t in tasks):
            break
        await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    seen.extend(texts(await poller.take("alice", after=cursor)))
    assert set(seen) == expected
    for w in range(WRITERS):  # each writer's messages in the order it sent them
        mine = [t for t in seen if t.startswith(f"{w}-")]
        assert mine == sorted(set(mine), key=lambda t: int(t.split("-")[1]))


async def test_a_writer_waits_for_an_earlier_uncommitted_one(database: Database, make_outbox) -> None:
    """PostgreSQL numbers rows before commit: a later writer must not commit first, or a poll in
    between would move the cursor past the earlier row and acknowledge it unread."""
    if database.dialect != "postgresql":
        pytest.skip("SQLite has one writer at a time")
    from sqlalchemy import text

    from gateway.db.outbox import _lock_key, outbox as table
    from gateway.messages import to_json

    outbox = make_outbox()
    async with database.engine.connect() as slow, database.engine.connect() as watcher:
        await slow.begin()
        await slow.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _lock_key("rest", "alice")})
        await slow.execute(table.insert().values(channel="rest", recipient="alice",
                                                 body=to_json(OutboundMessage(text="first")), touched_at=START))
        later = asyncio.create_task(outbox.put("alice", [OutboundMessage(text="second")]))
        for _ in range(500):  # until the second writer is blocked behind the first
            blocked = (await watcher.execute(text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"))).scalar_one()
            await watcher.rollback()
            if blocked:
                break
            await asyncio.sleep(0.01)
        assert blocked, "the second writer did not wait for the first"
        assert await outbox.take("alice") == []  # nothing committed, nothing to move the cursor past
        await slow.commit()
    await later
    assert texts(await outbox.take("alice")) == ["first", "second"]
