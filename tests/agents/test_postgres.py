"""The desk's SQL on the real PostgreSQL server: load per agent, last-assignment order (JSON
paths on JSONB), due acknowledgements and the row-locked record that makes them idempotent."""

from __future__ import annotations

import asyncio
from typing import AsyncIterator

import pytest

from gateway.agents import AgentDesk
from gateway.conversation import ConversationState
from gateway.db.agent_queries import ACK_EVENT, AgentQueries
from gateway.db.database import Database
from gateway.db.store import Store

from .support import Clock, RecordingOutbox, Seeder, make_settings

pytestmark = pytest.mark.postgres


@pytest.fixture
async def pg_store(pg_database: Database) -> AsyncIterator[Store]:
    store = Store(pg_database)
    yield store
    await store.committer.drain()


async def test_routing_reads_load_and_assignment_order_from_postgres(pg_store: Store):
    clock = Clock()
    seed, outbox = Seeder(pg_store, clock), RecordingOutbox(pg_store, clock)
    desk = AgentDesk(make_settings(), pg_store, outbox, clock)
    await seed.conversation(agent="anna")
    await seed.conversation(agent="bob")
    await seed.conversation(agent="bob", state=ConversationState.CLOSED)
    queries = AgentQueries(pg_store.db)
    assert await queries.open_loads(["anna", "bob", "carla"]) == {"anna": 1, "bob": 1}
    last = await queries.last_assignments(["anna", "bob", "carla"])
    assert set(last) == {"anna", "bob"} and last["bob"] > last["anna"]  # bob's closed one came last
    # Equal load: Anna was assigned less recently than Bob.
    assert (await desk.assign("c-new", skill=None, language="en")).id == "anna"
    # A queued conversation is claimed through the desk, which records the claim.
    queued = await seed.conversation(agent=None)
    await desk.claim(desk.agents["bob"], queued)
    assert await queries.open_loads(["bob"]) == {"bob": 2}


async def test_acks_are_due_once_and_recorded_once_under_concurrency(pg_store: Store):
    clock = Clock()
    seed, outbox = Seeder(pg_store, clock), RecordingOutbox(pg_store, clock)
    cids = [await seed.conversation(agent="anna" if i % 2 else None) for i in range(4)]
    for cid in cids:
        await seed.inbound(cid, "hello?")
    answered = await seed.conversation(agent="anna")
    await seed.inbound(answered, "question")
    await seed.outbound(answered, "answer", "agent:anna")
    clock.advance(60)
    desks = [AgentDesk(make_settings(), pg_store, outbox, clock) for _ in range(4)]
    sent = await asyncio.gather(*(d.sweep_once() for d in desks))
    assert sum(sent) == 4
    assert sorted(c for c, _, _ in outbox.pushes()) == sorted(cids)
    for cid in cids:
        assert [t for t, _, _ in await pg_store.events(cid)].count(ACK_EVENT) == 1
    clock.advance(600)
    assert sum(await asyncio.gather(*(d.sweep_once() for d in desks))) == 0


async def test_claims_and_queue_drains_race_safely_on_postgres(pg_store: Store):
    clock = Clock()
    seed, outbox = Seeder(pg_store, clock), RecordingOutbox(pg_store, clock)
    desks = [AgentDesk(make_settings(), pg_store, outbox, clock) for _ in range(3)]
    contested = await seed.conversation(agent=None, profile={"language": "de"})  # only a claim can take it
    results = await asyncio.gather(
        *(d.claim(d.agents[a], contested) for d, a in zip(desks, ("anna", "bob", "carla"))), return_exceptions=True
    )
    winners = {r.assigned_agent for r in results if not isinstance(r, Exception)}
    assert len(winners) == 1 and sum(isinstance(r, Exception) for r in results) == 2
    assert (await pg_store.conversation(contested)).assigned_agent in winners

    queued = [await seed.conversation(agent=None, profile={"language": "en"}) for _ in range(3)]
    assert sum(await asyncio.gather(*(d.assign_queued_once() for d in desks))) == 3
    assert sorted(c for c, _, _ in outbox.pushes()) == sorted(queued)  # each customer told once
    for cid in queued:
        assert (await pg_store.conversation(cid)).assigned_agent in {"anna", "bob"}


async def test_desk_views_on_postgres(pg_store: Store):
    clock = Clock()
    seed, outbox = Seeder(pg_store, clock), RecordingOutbox(pg_store, clock)
    desk = AgentDesk(make_settings(), pg_store, outbox, clock)
    mine = await seed.conversation(agent="anna", profile={"display_name": "Maria Verdi"}, context={"topic": "card"})
    await seed.inbound(mine, "hello?")
    queued = await seed.conversation(agent=None)
    assigned, queue = await desk.desk(desk.agents["anna"])
    assert [(s.id, s.customer_name, s.waiting, s.message_count) for s in assigned] == [(mine, "Maria Verdi", True, 1)]
    assert [s.id for s in queue] == [queued]
    assert assigned[0].last_inbound_at == clock() and assigned[0].last_agent_at is None
    detail = await desk.conversation_detail(mine)
    assert detail["context"] == {"topic": "card"} and detail["messages"][0]["body"]["text"] == "hello?"
    sent = await desk.send(desk.agents["anna"], mine, template="greet")
    assert sent.text == "Hi Maria, I'm Anna Bianchi. How can I help?"
