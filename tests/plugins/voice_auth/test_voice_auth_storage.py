"""Failure counters, lockouts and the audit trail on a real database (SQLite here, PostgreSQL below)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from voicegate_voice_auth.storage import AuditDecision, AuthStore, audit, score_band

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)


async def _exercise(store: AuthStore) -> None:
    await store.create_schema()
    await store.create_schema()  # idempotent: every start-up runs it
    assert not (await store.state("c1", T0)).locked(T0)
    first = await store.record_failure("c1", T0, max_attempts=3, lockout_s=600)
    second = await store.record_failure("c1", T0 + timedelta(seconds=1), max_attempts=3, lockout_s=600)
    assert (first.failures, second.failures) == (1, 2) and second.locked_until is None
    third = await store.record_failure("c1", T0 + timedelta(seconds=2), max_attempts=3, lockout_s=600)
    assert third.locked_until == T0 + timedelta(seconds=602)
    during = await store.state("c1", T0 + timedelta(seconds=300))
    assert during.locked(T0 + timedelta(seconds=300)) and during.failures == 3

    # An active lock survives the customer's "forget me": erasing it would let whoever holds the chat reset it.
    assert await store.forget("c1", T0 + timedelta(seconds=300)) is False
    assert (await store.state("c1", T0 + timedelta(seconds=300))).locked(T0 + timedelta(seconds=300))

    # After the lockout the count starts again from zero.
    after = T0 + timedelta(seconds=700)
    assert await store.state("c1", after) == type(during)(0, None)
    again = await store.record_failure("c1", after, max_attempts=3, lockout_s=600)
    assert again.failures == 1 and again.locked_until is None
    await store.reset("c1")
    assert (await store.state("c1", after)).failures == 0
    assert await store.forget("c1", after) is False  # nothing left to delete

    await store.audit(customer_id="c1", channel="rest", at=after, step="verify", decision=AuditDecision.REJECTED,
                      reason="no_match", band=score_band(0.2))
    rows = await store.audit_rows("c1")
    assert [(r["decision"], r["reason"], r["score_band"], r["channel"]) for r in rows] == [
        ("rejected", "no_match", "low", "rest")]
    assert {c.name for c in audit.columns} == {"id", "customer_id", "channel", "at", "step", "decision", "reason",
                                               "score_band"}


def test_score_bands() -> None:
    assert [score_band(p) for p in (0.05, 0.49, 0.5, 0.89, 0.9, 1.0)] == ["low", "low", "medium", "medium",
                                                                           "high", "high"]


async def test_lockout_and_audit_on_sqlite(tmp_path) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'auth.db'}")
    try:
        await _exercise(AuthStore(engine))
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_lockout_and_audit_on_postgresql(pg_url: str, pg_schema: str) -> None:
    engine = create_async_engine(pg_url, connect_args={"server_settings": {"search_path": pg_schema}})
    try:
        await _exercise(AuthStore(engine))
        async with engine.connect() as conn:
            tables = (await conn.execute(sa.text(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = :s ORDER BY 1"),
                {"s": pg_schema})).scalars().all()
        assert tables == ["voice_auth_attempts", "voice_auth_audit"]
    finally:
        await engine.dispose()
