"""Encryption keys for the vault: AES-256-GCM with a key id, from the environment or a file, never the database.

Format (environment variable or file): ``KEY_ID:BASE64_32_BYTES`` entries separated by commas or new lines.
The **first** entry is the active key (new rows are encrypted with it); the others only decrypt older rows until
``voicegate voiceprints rotate-key`` has re-encrypted them. Lines starting with ``#`` are comments.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from voiceprints.errors import VaultError

_KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
NONCE_BYTES = 12


@dataclass(frozen=True)
class KeyRing:
    """Named AES-256 keys; ``active_id`` encrypts, every key decrypts."""

    keys: dict[str, bytes]
    active_id: str

    def __post_init__(self) -> None:
        if self.active_id not in self.keys:
            raise VaultError(f"The active key id {self.active_id!r} is not among the keys.")
        for key_id, key in self.keys.items():
            if not _KEY_ID.match(key_id):
                raise VaultError(f"Key id {key_id!r} must be 1-32 characters of letters, digits, '_', '.', '-'.")
            if len(key) != 32:
                raise VaultError(f"Key {key_id!r} has {len(key)} bytes; AES-256 needs 32 (base64 of 32 random bytes).")

    def __repr__(self) -> str:  # keys must never reach logs
        return f"KeyRing(active_id={self.active_id!r}, key_ids={sorted(self.keys)!r})"

    @classmethod
    def parse(cls, text: str, *, where: str) -> "KeyRing":
        """Parse ``id:base64`` entries (first = active); ``where`` names the source in error messages."""
        entries = [e.strip() for e in re.split(r"[,\n]", text) if e.strip() and not e.strip().startswith("#")]
        if not entries:
            raise VaultError(f"{where} holds no keys. Set it to 'KEY_ID:BASE64KEY' (generate one with "
                             "`voicegate voiceprints rotate-key --new-key`).")
        keys: dict[str, bytes] = {}
        for entry in entries:
            key_id, sep, encoded = entry.partition(":")
            if not sep:
                raise VaultError(f"{where}: entry {key_id[:8]!r}... is not 'KEY_ID:BASE64KEY'.")
            try:
                key = base64.b64decode(encoded.strip(), validate=True)
            except (binascii.Error, ValueError):
                raise VaultError(f"{where}: key {key_id!r} is not valid base64.") from None
            if key_id in keys:
                raise VaultError(f"{where}: key id {key_id!r} appears twice.")
            keys[key_id.strip()] = key
        return cls(keys=keys, active_id=next(iter(keys)))

    @classmethod
    def from_env(cls, name: str = "VOICEGATE_VOICEPRINT_KEYS") -> "KeyRing":
        """Keys from an environment variable."""
        value = os.environ.get(name)
        if not value:
            raise VaultError(f"Environment variable {name} is not set. Set it to 'KEY_ID:BASE64KEY' (e.g. from "
                             "scripts/dev-secrets, or `voicegate voiceprints rotate-key --new-key`).")
        return cls.parse(value, where=f"${name}")

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> "KeyRing":
        """Keys from a file (one ``id:base64`` per line); refuses files other users can read."""
        file = Path(path)
        try:
            mode = file.stat().st_mode
            text = file.read_text()
        except OSError as exc:
            raise VaultError(f"Cannot read the key file {file}: {exc.strerror}.") from None
        if mode & 0o077:
            raise VaultError(f"The key file {file} is readable by other users; run `chmod 600 {file}`.")
        return cls.parse(text, where=str(file))

    @classmethod
    def generate(cls, key_id: str | None = None) -> "KeyRing":
        """A ring with one fresh random key (tests, first set-up)."""
        key_id = key_id or f"k{secrets.token_hex(4)}"
        return cls(keys={key_id: AESGCM.generate_key(bit_length=256)}, active_id=key_id)

    def with_new_active(self, key_id: str | None = None) -> "KeyRing":
        """A copy with a fresh key in front (the new active key); old keys still decrypt."""
        fresh = KeyRing.generate(key_id)
        return KeyRing(keys={**fresh.keys, **self.keys}, active_id=fresh.active_id)

    def export(self) -> str:
        """The ``id:base64,...`` text for the environment (active first). Handle with care: it contains the keys."""
        order = [self.active_id] + [k for k in self.keys if k != self.active_id]
        return ",".join(f"{k}:{base64.b64encode(self.keys[k]).decode()}" for k in order)

    def encrypt(self, plaintext: bytes, associated: bytes) -> tuple[str, bytes]:
        """(key id, nonce + ciphertext) under the active key; ``associated`` binds it to its row (customer, table)."""
        nonce = os.urandom(NONCE_BYTES)
        return self.active_id, nonce + AESGCM(self.keys[self.active_id]).encrypt(nonce, plaintext, associated)

    def decrypt(self, key_id: str, blob: bytes, associated: bytes) -> bytes:
        """Inverse of :meth:`encrypt`; :class:`VaultError` for an unknown key id or tampered / moved data."""
        key = self.keys.get(key_id)
        if key is None:
            raise VaultError(f"A stored voiceprint is encrypted with key {key_id!r}, which is not configured. "
                             "Add that key back to VOICEGATE_VOICEPRINT_KEYS (after the active one).")
        try:
            return AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], associated)
        except InvalidTag:
            raise VaultError("A stored voiceprint failed its integrity check (tampered, or copied to another "
                             "customer). It was not used; re-enrol the customer.") from None
