"""HMAC-SHA256 of webhook bodies, for the channels that sign with a shared secret (REST, Meta).

Why not ``hmac.digest()``: CPython's one-shot HMAC releases the GIL around OpenSSL even for a
few hundred bytes, and under load every release lets another thread (the SQLite writer) take
the GIL from the event loop. An ``hmac.HMAC`` object keeps it for inputs under 2 KiB, and
copying one already keyed with the secret skips the key schedule on every message.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache


@lru_cache(maxsize=64)
def _keyed(secret: bytes) -> "hmac.HMAC":
    return hmac.new(secret, digestmod=hashlib.sha256)


def hmac_sha256_hex(secret: str | bytes, body: bytes) -> str:
    """Lower-case hex HMAC-SHA256 of ``body`` keyed with ``secret`` (a str is UTF-8 encoded)."""
    mac = _keyed(secret.encode("utf-8") if isinstance(secret, str) else secret).copy()
    mac.update(body)
    return mac.hexdigest()
