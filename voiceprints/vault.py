"""Voiceprints at rest: SQLAlchemy (async; SQLite or PostgreSQL), every biometric row AES-256-GCM encrypted.

Tables live in their own ``MetaData`` and are prefixed ``voiceprint_`` so the vault can share the gateway's database
or stand alone. Each ciphertext's associated data is ``table:customer_id``: a row copied to another customer or table
fails its integrity check instead of verifying someone else. Only customer ids, key ids and timestamps are in clear.
Nothing here logs: the rows are biometric data.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import numpy as np
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from voiceprints.errors import VaultError
from voiceprints.keys import KeyRing
from voiceprints.records import NoteEmbedding, Voiceprint, _decode_vector, _encode_vector
from voiceprints.scoring import cosine

TEMPLATES = "voiceprint_templates"
NOTES = "voiceprint_enrolment_notes"
USED = "voiceprint_used_notes"
AUDIO = "voiceprint_audio"


def build_metadata(schema: str | None = None) -> sa.MetaData:
    """The vault's tables (own MetaData, so it never collides with the gateway's migrations)."""
    md = sa.MetaData(schema=schema)
    sa.Table(TEMPLATES, md,
             sa.Column("customer_id", sa.String(200), primary_key=True),
             sa.Column("key_id", sa.String(32), nullable=False),
             sa.Column("blob", sa.LargeBinary, nullable=False),
             sa.Column("updated_at", sa.Float, nullable=False))
    for name, extra in ((NOTES, "created_at"), (USED, "expires_at"), (AUDIO, "expires_at")):
        sa.Table(name, md,
                 sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                 sa.Column("customer_id", sa.String(200), nullable=False, index=True),
                 sa.Column("key_id", sa.String(32), nullable=False),
                 sa.Column("blob", sa.LargeBinary, nullable=False),
                 sa.Column(extra, sa.Float, nullable=False, index=extra == "expires_at"))
    return md


class Vault:
    """Encrypted storage of voiceprints, pending enrolment notes, recently used notes (replay) and optional audio.

    ``engine`` is a SQLAlchemy :class:`AsyncEngine` (``sqlite+aiosqlite://`` or ``postgresql+asyncpg://``);
    ``schema`` optionally places the tables in a PostgreSQL schema; ``clock`` returns epoch seconds (tests).
    """

    def __init__(self, engine: AsyncEngine, keyring: KeyRing, *, schema: str | None = None,
                 replay_similarity: float = 0.97, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.keyring = keyring
        self.metadata = build_metadata(schema)
        self.replay_similarity = replay_similarity
        self.clock = clock
        t = self.metadata.tables
        prefix = f"{schema}." if schema else ""
        self._templates, self._notes = t[prefix + TEMPLATES], t[prefix + NOTES]
        self._used, self._audio = t[prefix + USED], t[prefix + AUDIO]

    def __repr__(self) -> str:
        return f"Vault(url={self.engine.url.render_as_string(hide_password=True)!r}, keyring={self.keyring!r})"

    async def create_schema(self) -> None:
        """Create the tables if missing (idempotent)."""
        async with self.engine.begin() as conn:
            await conn.run_sync(self.metadata.create_all)

    # -- encryption helpers ------------------------------------------------------------------------------------
    def _seal(self, table: sa.Table, customer_id: str, plaintext: bytes) -> dict:
        key_id, blob = self.keyring.encrypt(plaintext, f"{table.name}:{customer_id}".encode())
        return {"customer_id": customer_id, "key_id": key_id, "blob": blob}

    def _open(self, table: sa.Table, row: sa.Row) -> bytes:
        return self.keyring.decrypt(row.key_id, bytes(row.blob), f"{table.name}:{row.customer_id}".encode())

    @staticmethod
    def _check_id(customer_id: str) -> str:
        if not isinstance(customer_id, str) or not customer_id or len(customer_id) > 200:
            raise VaultError("A customer id must be a non-empty string of at most 200 characters.")
        return customer_id

    # -- voiceprints -------------------------------------------------------------------------------------------
    async def save(self, customer_id: str, voiceprint: Voiceprint) -> None:
        """Store (or replace) the customer's voiceprint."""
        row = self._seal(self._templates, self._check_id(customer_id), voiceprint.to_bytes())
        async with self.engine.begin() as conn:
            await conn.execute(sa.delete(self._templates).where(self._templates.c.customer_id == customer_id))
            await conn.execute(sa.insert(self._templates).values(**row, updated_at=self.clock()))

    async def load(self, customer_id: str) -> Voiceprint | None:
        """The customer's voiceprint, or ``None`` when not enrolled."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(self._templates).where(
                self._templates.c.customer_id == self._check_id(customer_id)))).first()
        return None if row is None else Voiceprint.from_bytes(self._open(self._templates, row))

    async def delete(self, customer_id: str) -> bool:
        """Erase everything stored for the customer (voiceprint, notes, replay memory, audio); True if any existed."""
        self._check_id(customer_id)
        removed = 0
        async with self.engine.begin() as conn:
            for table in (self._templates, self._notes, self._used, self._audio):
                result = await conn.execute(sa.delete(table).where(table.c.customer_id == customer_id))
                removed += result.rowcount or 0
        return removed > 0

    # -- enrolment in progress ---------------------------------------------------------------------------------
    async def add_enrolment_note(self, customer_id: str, note: NoteEmbedding) -> int:
        """Keep a checked note until enrolment completes; returns how many notes are now pending."""
        row = self._seal(self._notes, self._check_id(customer_id), note.to_bytes())
        async with self.engine.begin() as conn:
            await conn.execute(sa.insert(self._notes).values(**row, created_at=self.clock()))
            count = await conn.scalar(sa.select(sa.func.count()).select_from(self._notes).where(
                self._notes.c.customer_id == customer_id))
        return int(count or 0)

    async def enrolment_notes(self, customer_id: str) -> list[NoteEmbedding]:
        """Pending enrolment notes, oldest first."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sa.select(self._notes).where(
                self._notes.c.customer_id == self._check_id(customer_id)).order_by(self._notes.c.id))).all()
        return [NoteEmbedding.from_bytes(self._open(self._notes, r)) for r in rows]

    async def clear_enrolment_notes(self, customer_id: str) -> None:
        """Drop pending enrolment notes (after enrolling, or to start over)."""
        async with self.engine.begin() as conn:
            await conn.execute(sa.delete(self._notes).where(self._notes.c.customer_id == self._check_id(customer_id)))

    # -- replay protection -------------------------------------------------------------------------------------
    async def remember_used_note(self, customer_id: str, embedding: np.ndarray, audio_sha256: str,
                                 ttl_s: float) -> None:
        """Remember a note that was used to verify, so sending it again within ``ttl_s`` is caught as a replay."""
        now = self.clock()
        payload = json.dumps({"embedding": _encode_vector(embedding), "audio_sha256": audio_sha256}).encode()
        row = self._seal(self._used, self._check_id(customer_id), payload)
        async with self.engine.begin() as conn:
            await conn.execute(sa.delete(self._used).where(self._used.c.expires_at <= now))
            await conn.execute(sa.insert(self._used).values(**row, expires_at=now + ttl_s))

    async def is_replay(self, customer_id: str, embedding: np.ndarray, audio_sha256: str) -> bool:
        """True when this exact audio, or a near-identical embedding (the same recording re-encoded), was used."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sa.select(self._used).where(
                self._used.c.customer_id == self._check_id(customer_id),
                self._used.c.expires_at > self.clock()))).all()
        for row in rows:
            used = json.loads(self._open(self._used, row))
            if used["audio_sha256"] == audio_sha256:
                return True
            if cosine(_decode_vector(used["embedding"]), embedding) >= self.replay_similarity:
                return True
        return False

    # -- optional raw audio ------------------------------------------------------------------------------------
    async def store_audio(self, customer_id: str, data: bytes, ttl_s: float) -> None:
        """Keep a raw note encrypted for ``ttl_s`` (only when the operator configured audio retention)."""
        row = self._seal(self._audio, self._check_id(customer_id), bytes(data))
        async with self.engine.begin() as conn:
            await conn.execute(sa.insert(self._audio).values(**row, expires_at=self.clock() + ttl_s))

    async def stored_audio(self, customer_id: str) -> list[bytes]:
        """Unexpired raw notes kept for the customer, oldest first."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sa.select(self._audio).where(
                self._audio.c.customer_id == self._check_id(customer_id),
                self._audio.c.expires_at > self.clock()).order_by(self._audio.c.id))).all()
        return [self._open(self._audio, r) for r in rows]

    async def purge_expired(self) -> int:
        """Delete expired replay memory and audio; returns rows removed."""
        now = self.clock()
        async with self.engine.begin() as conn:
            removed = 0
            for table in (self._used, self._audio):
                removed += (await conn.execute(sa.delete(table).where(table.c.expires_at <= now))).rowcount or 0
        return removed

    # -- key rotation ------------------------------------------------------------------------------------------
    async def rotate_key(self, *, batch: int = 500) -> int:
        """Re-encrypt every row not under the active key; returns how many rows were re-encrypted.

        Safe to interrupt and re-run: each batch commits on its own and rows already under the active key are skipped.
        """
        rotated = 0
        active = self.keyring.active_id
        for table in (self._templates, self._notes, self._used, self._audio):
            key_col = table.c.customer_id if table is self._templates else table.c.id
            while True:
                async with self.engine.begin() as conn:
                    rows = (await conn.execute(sa.select(table).where(table.c.key_id != active)
                                               .order_by(key_col).limit(batch))).all()
                    if not rows:
                        break
                    for row in rows:
                        sealed = self._seal(table, row.customer_id, self._open(table, row))
                        await conn.execute(sa.update(table).where(key_col == getattr(row, key_col.name))
                                           .values(key_id=sealed["key_id"], blob=sealed["blob"]))
                    rotated += len(rows)
        return rotated

    async def count_by_key(self) -> dict[str, int]:
        """Rows per key id over all vault tables (to see whether an old key is still needed)."""
        counts: dict[str, int] = {}
        async with self.engine.connect() as conn:
            for table in (self._templates, self._notes, self._used, self._audio):
                for key_id, n in (await conn.execute(sa.select(table.c.key_id, sa.func.count())
                                                     .group_by(table.c.key_id))).all():
                    counts[key_id] = counts.get(key_id, 0) + int(n)
        return counts

