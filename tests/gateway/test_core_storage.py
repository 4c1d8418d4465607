"""Persistence on SQLite and on the real PostgreSQL: migrations, the pipeline, idempotency, fencing."""

from __future__ import annotations

import asyncio
from typing import AsyncIterator

import gw_plugins as gp
import pytest
import pytest_asyncio
from sqlalchemy import inspect as sa_inspect

from gateway.cli import main
from gateway.conversation import ConversationState
from gateway.db.database import Database
from gateway.db.migrate import VERSION_TABLE, current_revision, head_revision
from gateway.db.store import StaleConversation, Store, WriteSet
from gateway.testing import RestDriver, make_settings, runtime_of
from support.databases import migrated

TABLES = {"customers", "identities", "conversations", "messages", "events", VERSION_TABLE}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_section(request, tmp_path) -> dict:
    """The ``database:`` YAML section for SQLite (a tmp file) or a private PostgreSQL schema."""
    if request.param == "sqlite":
        return {"url": f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"}
    schema = request.getfixturevalue("pg_schema")
    return {"url": request.getfixturevalue("pg_url"), "schema": schema}


@pytest_asyncio.fixture
async def migrated_db(database_section) -> AsyncIterator[Database]:
    """The database of ``database_section`` at the head revision, closed afterwards."""
    async with migrated(database_section["url"], database_section.get("schema")) as db:
        yield db


def test_db_upgrade_command_creates_the_schema(database_section, capsys):
    args = ["db", "upgrade", "--url", database_section["url"]]
    if "schema" in database_section:
        args += ["--schema", database_section["schema"]]
    assert main(args) == 0
    assert f"revision {head_revision()}" in capsys.readouterr().out
    assert main(args) == 0  # idempotent

    async def check() -> None:
        db = await Database.connect(database_section["url"], schema=database_section.get("schema"))
        try:
            assert await current_revision(db) == head_revision()
            async with db.engine.connect() as conn:
                names = await conn.run_sync(lambda c: set(sa_inspect(c).get_table_names()))
            assert TABLES <= names
        finally:
            await db.close()

    asyncio.run(check())


async def test_pipeline_persists_every_message_once(database_section, tmp_path, gateway_client):
    settings = make_settings(tmp_path, **gp.core_sections(database=database_section))
    client = await gateway_client(settings, extra_plugins=[gp.CorePlugin()])
    runtime = runtime_of(client)
    drivers = [RestDriver(client, sender=f"c{i}", path=gp.CHAT_PATH) for i in range(5)]

    async def talk(chat: RestDriver) -> None:
        for n in range(4):
            replies = await chat.say(f"{chat.sender} {n}", message_id=f"{chat.sender}-{n}")
            assert replies[0]["text"] == f"echo: {chat.sender} {n}"
        # a duplicate delivery of an earlier message: the stored answer, nothing new stored
        assert (await chat.say("ignored", message_id=f"{chat.sender}-1"))[0]["text"] == f"echo: {chat.sender} 1"

    await asyncio.gather(*(talk(d) for d in drivers))
    assert await runtime.store.count_messages() == 5 * 4 * 2
    convs = await runtime.store.conversations()
    assert len(convs) == 5
    for conv in convs:
        history = await runtime.store.history(conv.id)
        assert [m.body.get("text") for m in history[::2]] == [f"{conv.sender} {n}" for n in range(4)]
    # the sensitive gate's state survives in the database between messages
    chat = drivers[0]
    await chat.say("balance")
    [conv] = await runtime.store.conversations(states=[ConversationState.AWAITING_VERIFICATION])
    assert conv.pending_intent == "balance" and conv.context["auth"]["pin"] == {"tries": 0}
    assert [r["text"] for r in await chat.say("1234")][-1] == "Your balance is 12.50 €"


async def test_a_stale_conversation_write_is_fenced_off(database_section, tmp_path, gateway_client):
    settings = make_settings(tmp_path, **gp.core_sections(database=database_section))
    client = await gateway_client(settings, extra_plugins=[gp.CorePlugin()])
    runtime = runtime_of(client)
    await RestDriver(client, path=gp.CHAT_PATH).say("hello")
    [conv] = await runtime.store.conversations()
    stale = await runtime.store.conversation(conv.id)
    await runtime.pipeline.set_agent(conv.id, "anna", author="agent:anna")  # bumps the version
    stale.state = ConversationState.CLOSED
    ws = WriteSet()
    ws.add_conversation(stale, stale.updated_at)
    with pytest.raises(StaleConversation):
        await runtime.store.commit(ws)
    current = await runtime.store.conversation(conv.id)
    assert current.state is ConversationState.WITH_AGENT and current.assigned_agent == "anna"


async def test_unknown_conversation_leaves_data_intact(database_section, tmp_path, gateway_client):
    from gateway.errors import UnknownConversation
    from gateway.messages import OutboundMessage

    settings = make_settings(tmp_path, **gp.core_sections(database=database_section))
    client = await gateway_client(settings, extra_plugins=[gp.CorePlugin()])
    runtime = runtime_of(client)
    await RestDriver(client, path=gp.CHAT_PATH).say("hello")
    before = await runtime.store.count_messages()
    with pytest.raises(UnknownConversation):
        await runtime.pipeline.push("0" * 32, [OutboundMessage(text="x")], author="agent:anna")
    assert await runtime.store.count_messages() == before


@pytest.mark.postgres
async def test_store_on_postgres_uses_only_the_private_schema(pg_url, pg_schema):
    async with migrated(pg_url, pg_schema) as db:
        store = Store(db)
        assert await store.count_messages() == 0
        async with db.engine.connect() as conn:
            schemas = (await conn.exec_driver_sql(
                "SELECT DISTINCT table_schema FROM information_schema.tables WHERE table_name = 'messages'"
                " AND table_schema = current_schema()"
            )).scalars().all()
        assert schemas == [pg_schema]


async def test_sqlite_fast_writer_stores_exactly_what_sqlalchemy_stores(tmp_path):
    """The group committer's raw SQLite path must be indistinguishable from SQLAlchemy's."""
    import sqlite3
    from datetime import datetime, timedelta, timezone

    from sqlalchemy import insert

    from gateway.db.models import customers

    path = tmp_path / "parity.db"
    async with migrated(f"sqlite+aiosqlite:///{path}") as db:
        now = datetime(2026, 11, 24, 12, 0, 0, 123456, tzinfo=timezone.utc)
        rome = timezone(timedelta(hours=1))
        rows = {  # microseconds, none, another zone, a profile that is JSON null
            "a": {"profile": {"name": "Zoë", "n": [1, 2]}, "profile_fetched_at": now, "created_at": now},
            "b": {"profile": None, "profile_fetched_at": None, "created_at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=rome)},
        }
        await Store(db).commit(WriteSet(customers=[{"id": f"fast-{k}", **row} for k, row in rows.items()]))
        async with db.engine.begin() as conn:
            await conn.execute(insert(customers), [{"id": f"slow-{k}", **row} for k, row in rows.items()])
        customer, _ = await Store(db).customer("fast-a")
        assert customer.profile == rows["a"]["profile"] and customer.profile_fetched_at == now
    with sqlite3.connect(path) as raw:
        stored = dict((r[0], r[1:]) for r in raw.execute("SELECT * FROM customers"))
    assert stored["fast-a"] == stored["slow-a"] and stored["fast-b"] == stored["slow-b"]
    assert stored["fast-b"][-1] == "2026-01-02 02:04:05.000000"


async def test_large_write_sets_and_a_stale_row_in_a_batch(migrated_db, tmp_path):
    """Hundreds of rows go in at once; one stale conversation in a batch rolls the whole transaction back."""
    from datetime import datetime, timezone

    from gateway.db.models import new_id
    from gateway.db.store import ConversationRow, message_row

    db = migrated_db
    store = Store(db)
    now = datetime.now(timezone.utc)
    ws = WriteSet()
    rows = []
    for n in range(3):
        ws.customers.append({"id": f"cu{n}", "profile": None, "profile_fetched_at": None, "created_at": now})
        row = ConversationRow(
            id=f"co{n}", customer_id=f"cu{n}", channel="c", sender=f"s{n}", state=ConversationState.WITH_BOT,
            context={"n": n}, pending_intent=None, verified_until=None, assigned_agent=None, version=0,
            created_at=now, updated_at=now, is_new=True,
        )
        ws.add_conversation(row, now)
        rows.append(row)
    for i in range(450):
        ws.messages.append(message_row(message_id=new_id(), conversation_id="co0", direction="out", channel="c",
                                       body={"text": f"m{i}"}, at=now))
    await store.commit(ws)
    assert await store.count_messages("co0") == 450

    stale = await store.conversation("co2")
    update = WriteSet()
    for row in rows:
        row.context = {"n": "updated"}
        update.add_conversation(row, now)
    await store.commit(update)
    assert [(await store.conversation(f"co{n}")).context for n in range(3)] == [{"n": "updated"}] * 3

    again = WriteSet()
    rows[0].context = {"n": "second"}
    again.add_conversation(rows[0], now)
    again.add_conversation(stale, now)  # read before the update above: version 1, stored is 2
    again.messages.append(message_row(message_id=new_id(), conversation_id="co0", direction="out", channel="c",
                                      body={"text": "lost"}, at=now))
    with pytest.raises(StaleConversation):
        await store.commit(again)
    assert (await store.conversation("co0")).context == {"n": "updated"}
    assert await store.count_messages("co0") == 450


def test_batched_timestamp_binding_reuses_only_the_same_value():
    """The writer formats a turn's shared timestamp once; any other value is formatted anew."""
    from datetime import datetime, timedelta, timezone

    from sqlalchemy.dialects import sqlite

    from gateway.db.models import messages
    from gateway.db.sqlite_batch import _processors

    dialect = sqlite.dialect()
    (cached,) = _processors(messages, ["created_at"], dialect)
    plain = messages.c.created_at.type._cached_bind_processor(dialect)
    first = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)
    values = [first, first, first + timedelta(microseconds=1), datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc), None]
    assert [cached(v) for v in values] == [plain(v) for v in values]
    assert cached(values[2]) != cached(first)


async def test_write_sets_reaching_commit_a_few_loop_passes_apart_share_one_transaction(migrated_db):
    """Concurrent turns reach ``commit`` at different event-loop passes; the committer waits until the
    loop is quiet, so they share one transaction, and every one of them is stored."""
    from datetime import datetime, timezone

    db = migrated_db
    store = Store(db)
    now = datetime.now(timezone.utc)

    async def turn(n: int) -> None:
        for _ in range(n % 3):  # as handlers do: some awaits before their commit
            await asyncio.sleep(0)
        ws = WriteSet()
        ws.customers.append({"id": f"gather-{n}", "profile": None, "profile_fetched_at": None, "created_at": now})
        await store.commit(ws)

    await asyncio.gather(*(turn(n) for n in range(30)))
    assert (store.committer.write_sets, store.committer.batches) == (30, 1)
    await turn(30)  # alone: committed after a few quiet passes, not held back
    assert (store.committer.write_sets, store.committer.batches) == (31, 2)
    async with db.engine.connect() as conn:
        from sqlalchemy import text

        stored = (await conn.execute(text("SELECT count(*) FROM customers WHERE id LIKE 'gather-%'"))).scalar()
    assert stored == 31


async def test_migrated_schema_matches_the_models_partial_indexes_included(migrated_db):
    """``db upgrade`` builds what ``gateway.db.models`` declares; the two indexes most rows never need are partial."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import text

    from gateway.db.models import metadata

    db = migrated_db
    async with db.engine.connect() as conn:
        diff = await conn.run_sync(
            lambda c: compare_metadata(MigrationContext.configure(c, opts={"include_object": _own_tables}), metadata)
        )
        if db.engine.dialect.name == "sqlite":
            query = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        else:
            query = "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()"
        definitions = {name: _plain(sql) for name, sql in (await conn.execute(text(query))).all()}
    assert diff == []
    assert "WHERE state = 'with_agent'" in definitions["ix_conversations_state_updated"]
    assert "WHERE in_reply_to IS NOT NULL" in definitions["ix_messages_in_reply_to"]


def _plain(sql: str) -> str:
    # PostgreSQL prints "WHERE ((state)::text = 'with_agent'::text)"; SQLite keeps the text as written.
    return sql.replace("::text", "").replace("(", "").replace(")", "")


def _own_tables(obj, name, type_, reflected, compare_to) -> bool:
    # The core's tables of migrations 0001 and 0003 (the outbox, 0002, and the plugins' tables have tests of their own).
    table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", None)
    return table in TABLES - {VERSION_TABLE}


async def test_sqlite_reads_by_state_and_reply_through_the_partial_indexes(tmp_path):
    """The desk's queue (``state = 'with_agent'``) and the replies to an inbound message still use an index."""
    from sqlalchemy import select, text

    from gateway.db.models import conversations, messages

    async with migrated(f"sqlite+aiosqlite:///{tmp_path / 'plan.db'}") as db:
        queue = (select(conversations.c.id).where(conversations.c.state == "with_agent")
                 .order_by(conversations.c.updated_at).limit(10))
        replies = select(messages.c.id).where(messages.c.in_reply_to == "x", messages.c.direction == "out")
        plans = []
        async with db.engine.connect() as conn:
            for query in (queue, replies):
                sql = str(query.compile(db.engine, compile_kwargs={"literal_binds": True}))
                plans.append(" ".join(row[-1] for row in (await conn.execute(text("EXPLAIN QUERY PLAN " + sql))).all()))
        assert "USING INDEX ix_conversations_state_updated" in plans[0] and "TEMP B-TREE" not in plans[0]
        assert "USING INDEX ix_messages_in_reply_to" in plans[1]


async def test_an_update_that_keeps_the_state_leaves_the_state_column_alone(migrated_db):
    """A turn that keeps the state does not write ``state`` (cheaper on SQLite); one that changes it does, fenced
    the same way."""
    from datetime import datetime, timezone

    from gateway.db.store import ConversationRow

    db = migrated_db
    store = Store(db)
    now = datetime.now(timezone.utc)
    ws = WriteSet()
    ws.customers.append({"id": "keep-cu", "profile": None, "profile_fetched_at": None, "created_at": now})
    row = ConversationRow(
        id="keep-co", customer_id="keep-cu", channel="c", sender="s", state=ConversationState.WITH_BOT,
        context={}, pending_intent=None, verified_until=None, assigned_agent=None, version=0,
        created_at=now, updated_at=now, is_new=True,
    )
    ws.add_conversation(row, now)
    await store.commit(ws)

    loaded = await store.conversation("keep-co")
    assert loaded.stored_state is ConversationState.WITH_BOT
    same = WriteSet()
    loaded.context = {"turn": 2}
    same.add_conversation(loaded, now)
    assert same.conversation_updates == [] and "state" not in same.conversation_updates_same_state[0]
    await store.commit(same)

    changed = WriteSet()
    loaded.state = ConversationState.WITH_AGENT
    changed.add_conversation(loaded, now)
    assert changed.conversation_updates_same_state == [] and changed.conversation_updates[0]["state"] == "with_agent"
    await store.commit(changed)
    stored = await store.conversation("keep-co")
    assert (stored.state, stored.context, stored.version) == (ConversationState.WITH_AGENT, {"turn": 2}, 3)

    stale = WriteSet()
    row.context = {"stale": True}  # still version 1 in this copy
    stale.add_conversation(row, now)
    assert stale.conversation_updates_same_state  # stored_state is with_bot in this copy
    with pytest.raises(StaleConversation):
        await store.commit(stale)
