"""The encrypted vault on SQLite and on the real PostgreSQL (pure plumbing: embeddings here are random vectors)."""

from __future__ import annotations

import base64
import os
from datetime import datetime, timezone

import numpy as np
import pytest
import pytest_asyncio
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from voiceprints import KeyRing, NoteEmbedding, Vault, VaultError, Voiceprint
from voiceprints.model import MODEL_ID, MODEL_REVISION


def _vector(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(192).astype(np.float32)
    return v / np.linalg.norm(v)


def _print(seed: int = 1) -> Voiceprint:
    return Voiceprint(_vector(seed), MODEL_ID, MODEL_REVISION, 3, datetime(2026, 1, 2, tzinfo=timezone.utc))


def _note(seed: int) -> NoteEmbedding:
    return NoteEmbedding(_vector(seed), f"{seed:064x}", 2.5, MODEL_ID, MODEL_REVISION)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request, tmp_path) -> tuple[str, str | None]:
    """(database URL, schema): a fresh SQLite file, or a private PostgreSQL schema dropped afterwards."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'vault.db'}", None
    return request.getfixturevalue("pg_url"), request.getfixturevalue("pg_schema")


@pytest_asyncio.fixture
async def vault(db):
    url, schema = db
    engine = create_async_engine(url)
    v = Vault(engine, KeyRing.generate("k1"), schema=schema, clock=Clock())
    await v.create_schema()
    await v.create_schema()  # idempotent
    yield v
    await engine.dispose()


async def _raw_rows(vault: Vault, table: str) -> list[sa.Row]:
    prefix = f"{vault.metadata.schema}." if vault.metadata.schema else ""
    async with vault.engine.connect() as conn:
        return (await conn.execute(sa.select(vault.metadata.tables[prefix + table]))).all()


async def test_save_load_delete(vault):
    assert await vault.load("alice") is None
    await vault.save("alice", _print(1))
    await vault.save("alice", _print(2))  # replaces
    loaded = await vault.load("alice")
    assert loaded is not None and np.array_equal(loaded.template, _print(2).template)
    assert (loaded.model_id, loaded.model_revision, loaded.notes) == (MODEL_ID, MODEL_REVISION, 3)
    await vault.add_enrolment_note("alice", _note(5))
    assert await vault.delete("alice") is True
    assert await vault.load("alice") is None and await vault.enrolment_notes("alice") == []
    assert await vault.delete("alice") is False


async def test_rows_are_encrypted_and_bound_to_the_customer(vault):
    vp = _print(3)
    await vault.save("alice", vp)
    await vault.save("bob", _print(4))
    rows = {r.customer_id: r for r in await _raw_rows(vault, "voiceprint_templates")}
    blob = bytes(rows["alice"].blob)
    assert rows["alice"].key_id == "k1"
    template_b64 = base64.b64encode(vp.template.astype("<f4").tobytes())
    assert template_b64[:20] not in blob and vp.template.astype("<f4").tobytes()[:16] not in blob
    assert b"model_id" not in blob
    # Copy alice's ciphertext onto bob's row: the associated data no longer matches, so it is refused.
    table = vault._templates
    async with vault.engine.begin() as conn:
        await conn.execute(sa.update(table).where(table.c.customer_id == "bob").values(blob=blob))
    with pytest.raises(VaultError, match="integrity check"):
        await vault.load("bob")
    assert np.array_equal((await vault.load("alice")).template, vp.template)  # nothing else lost


async def test_enrolment_notes_accumulate_and_clear(vault):
    assert await vault.add_enrolment_note("carol", _note(1)) == 1
    assert await vault.add_enrolment_note("carol", _note(2)) == 2
    await vault.add_enrolment_note("dave", _note(3))
    notes = await vault.enrolment_notes("carol")
    assert [n.audio_sha256 for n in notes] == [_note(1).audio_sha256, _note(2).audio_sha256]
    assert np.array_equal(notes[1].embedding, _note(2).embedding)
    await vault.clear_enrolment_notes("carol")
    assert await vault.enrolment_notes("carol") == [] and len(await vault.enrolment_notes("dave")) == 1


async def test_replay_memory_matches_hash_or_near_identical_embedding_until_expiry(vault):
    used = _note(1)
    await vault.remember_used_note("erin", used.embedding, used.audio_sha256, ttl_s=600)
    assert await vault.is_replay("erin", _vector(99), used.audio_sha256)  # same PCM
    reencoded = used.embedding + 0.01 * _vector(7)
    assert await vault.is_replay("erin", reencoded / np.linalg.norm(reencoded), "f" * 64)  # same audio re-encoded
    assert not await vault.is_replay("erin", _vector(2), "e" * 64)  # a fresh note
    assert not await vault.is_replay("frank", used.embedding, used.audio_sha256)  # per customer
    vault.clock.now += 601
    assert not await vault.is_replay("erin", used.embedding, used.audio_sha256)
    assert await vault.purge_expired() == 1


async def test_audio_is_kept_encrypted_with_ttl(vault):
    await vault.store_audio("gina", b"OggS-voice-note-bytes", ttl_s=60)
    assert await vault.stored_audio("gina") == [b"OggS-voice-note-bytes"]
    assert b"voice-note" not in bytes((await _raw_rows(vault, "voiceprint_audio"))[0].blob)
    vault.clock.now += 61
    assert await vault.stored_audio("gina") == []


async def test_key_rotation_re_encrypts_everything(vault):
    await vault.save("alice", _print(1))
    await vault.add_enrolment_note("bob", _note(2))
    await vault.remember_used_note("bob", _note(3).embedding, "a" * 64, ttl_s=60)
    old_ring = vault.keyring
    new_ring = old_ring.with_new_active("k2")
    rotated = Vault(vault.engine, new_ring, schema=vault.metadata.schema, clock=vault.clock)
    assert await rotated.count_by_key() == {"k1": 3}
    assert await rotated.rotate_key(batch=1) == 3
    assert await rotated.count_by_key() == {"k2": 3} and await rotated.rotate_key() == 0
    # The old key alone can no longer read anything, and the error says what to do.
    with pytest.raises(VaultError, match="key 'k2', which is not configured"):
        await vault.load("alice")
    only_new = Vault(vault.engine, KeyRing({"k2": new_ring.keys["k2"]}, "k2"), schema=vault.metadata.schema)
    assert np.array_equal((await only_new.load("alice")).template, _print(1).template)
    assert len(await only_new.enrolment_notes("bob")) == 1


async def test_bad_customer_ids_are_refused(vault):
    with pytest.raises(VaultError, match="non-empty string"):
        await vault.save("", _print())
    with pytest.raises(VaultError):
        await vault.load("x" * 201)


# -- KeyRing ---------------------------------------------------------------------------------------------------

def test_keyring_from_env_first_key_is_active(monkeypatch):
    a, b = (base64.b64encode(os.urandom(32)).decode() for _ in range(2))
    monkeypatch.setenv("VG_KEYS", f"new:{a}, old:{b}")
    ring = KeyRing.from_env("VG_KEYS")
    assert ring.active_id == "new" and set(ring.keys) == {"new", "old"}
    assert a not in repr(ring) and KeyRing.parse(ring.export(), where="x") == ring
    key_id, blob = ring.encrypt(b"secret", b"ctx")
    assert key_id == "new" and ring.decrypt(key_id, blob, b"ctx") == b"secret"
    with pytest.raises(VaultError, match="integrity"):
        ring.decrypt(key_id, blob, b"other-ctx")


@pytest.mark.parametrize("value, message", [
    ("", "not set"),
    ("k1", "not 'KEY_ID:BASE64KEY'"),
    ("k1:not*base64", "not valid base64"),
    (f"k1:{base64.b64encode(b'short').decode()}", "AES-256 needs 32"),
    (f"bad id:{base64.b64encode(bytes(32)).decode()}", "Key id"),
])
def test_keyring_errors_say_what_to_do(monkeypatch, value, message):
    monkeypatch.setenv("VG_KEYS", value)
    with pytest.raises(VaultError, match=message):
        KeyRing.from_env("VG_KEYS")


def test_keyring_from_file_requires_private_permissions(tmp_path):
    path = tmp_path / "keys"
    path.write_text(f"# vault keys\nk1:{base64.b64encode(bytes(range(32))).decode()}\n")
    path.chmod(0o644)
    with pytest.raises(VaultError, match="chmod 600"):
        KeyRing.from_file(path)
    path.chmod(0o600)
    assert KeyRing.from_file(path).keys["k1"] == bytes(range(32))
