"""The voice authenticator's own tables: failure counters / lockouts, and the audit trail.

Both live in the gateway's database (``GatewayContext.db_engine``), in their own ``MetaData`` created at start-up,
so the plugin needs no migration of the core's schema. Nothing biometric is stored here: the audit row holds who,
where, when, what was decided, why (a reason code) and a coarse score band — never audio, an embedding or a raw
score. Voiceprints and notes live in the encrypted :class:`voiceprints.Vault`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

metadata = sa.MetaData()

attempts = sa.Table(
    "voice_auth_attempts",
    metadata,
    sa.Column("customer_id", sa.String(200), primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False, default=0),
    sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

audit = sa.Table(
    "voice_auth_audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("customer_id", sa.String(200), nullable=False, index=True),
    sa.Column("channel", sa.String(64), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("step", sa.String(16), nullable=False),  # consent | enrol | verify
    sa.Column("decision", sa.String(16), nullable=False),  # see Decision below
    sa.Column("reason", sa.String(32), nullable=False),  # machine-readable code
    sa.Column("score_band", sa.String(8), nullable=True),  # low | medium | high; only when a voice was scored
)


class AuditDecision(str, enum.Enum):
    ACCEPTED = "accepted"  # consent given / note accepted / verified
    REJECTED = "rejected"  # a verification attempt that failed (counts towards the lockout)
    UNUSABLE = "unusable"  # the note could not be used (too short, silent ...): not counted
    DECLINED = "declined"
    ENROLLED = "enrolled"
    LOCKED = "locked"
    DELETED = "deleted"


def score_band(probability: float) -> str:
    """A coarse band of the calibrated score, enough to audit without storing the score itself."""
    if probability >= 0.9:
        return "high"
    if probability >= 0.5:
        return "medium"
    return "low"


@dataclass(frozen=True)
class AttemptState:
    failures: int
    locked_until: datetime | None

    def locked(self, now: datetime) -> bool:
        return self.locked_until is not None and self.locked_until > now


def _aware(value: datetime | None) -> datetime | None:
    # SQLite returns naive datetimes even for timezone=True columns; everything stored here is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


class AuthStore:
    """Async access to the two tables."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def create_schema(self) -> None:
        async with self.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)

    async def state(self, customer_id: str, now: datetime) -> AttemptState:
        """Failures so far and the lock; an expired lock reads as unlocked with no failures."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(attempts).where(attempts.c.customer_id == customer_id))).first()
        if row is None:
            return AttemptState(0, None)
        locked_until = _aware(row.locked_until)
        if locked_until is not None and locked_until <= now:
            return AttemptState(0, None)
        return AttemptState(int(row.failures), locked_until)

    async def record_failure(self, customer_id: str, now: datetime, *, max_attempts: int, lockout_s: int) -> AttemptState:
        """Count one failed attempt; lock when it is the ``max_attempts``-th. Returns the new state."""
        async with self.engine.begin() as conn:
            row = (await conn.execute(sa.select(attempts).where(attempts.c.customer_id == customer_id))).first()
            failures = 1
            if row is not None:
                previous_lock = _aware(row.locked_until)
                expired = previous_lock is not None and previous_lock <= now
                failures = 1 if expired else int(row.failures) + 1
            locked_until = now + timedelta(seconds=lockout_s) if failures >= max_attempts else None
            values = {"failures": failures, "locked_until": locked_until, "updated_at": now}
            if row is None:
                await conn.execute(sa.insert(attempts).values(customer_id=customer_id, **values))
            else:
                await conn.execute(sa.update(attempts).where(attempts.c.customer_id == customer_id).values(**values))
        return AttemptState(failures, locked_until)

    async def reset(self, customer_id: str) -> None:
        """Forget failures after a success."""
        async with self.engine.begin() as conn:
            await conn.execute(sa.delete(attempts).where(attempts.c.customer_id == customer_id))

    async def forget(self, customer_id: str, now: datetime) -> bool:
        """Delete the failure counter unless a lock is active (a lock is not personal data worth erasing early:
        erasing it would let whoever holds the chat reset the lockout and enrol their own voice). True if deleted."""
        async with self.engine.begin() as conn:
            result = await conn.execute(sa.delete(attempts).where(
                attempts.c.customer_id == customer_id,
                sa.or_(attempts.c.locked_until.is_(None), attempts.c.locked_until <= now),
            ))
        return bool(result.rowcount)

    async def audit(self, *, customer_id: str, channel: str, at: datetime, step: str, decision: AuditDecision,
                    reason: str, band: str | None = None) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(sa.insert(audit).values(
                customer_id=customer_id, channel=channel, at=at, step=step, decision=decision.value,
                reason=reason[:32], score_band=band,
            ))

    async def audit_rows(self, customer_id: str | None = None) -> list[dict]:
        """Audit rows, oldest first (operators' tooling and tests)."""
        query = sa.select(audit).order_by(audit.c.id)
        if customer_id is not None:
            query = query.where(audit.c.customer_id == customer_id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [dict(r) for r in rows]


async def audit_operator_deletion(engine: AsyncEngine, customer_id: str, *, channel: str, at: datetime) -> bool:
    """Record that an operator deleted ``customer_id``'s voice data (``voicegate voiceprints delete``).

    Writes one audit row (step ``forget``, decision ``deleted``, reason ``operator``) when the plugin's tables exist in
    this database; returns False, writing nothing, when they do not (the voice plugin never ran there). The failure
    counter is left alone on purpose: an active lock must survive a deletion, or deleting would end a lockout.
    """
    async with engine.begin() as conn:
        if not await conn.run_sync(lambda sync: sa.inspect(sync).has_table(audit.name)):
            return False
        await conn.execute(sa.insert(audit).values(
            customer_id=customer_id, channel=channel, at=at, step="forget",
            decision=AuditDecision.DELETED.value, reason="operator", score_band=None,
        ))
    return True
