"""HMAC-SHA256 of webhook bodies, and the ``sha256=<hex>`` header that carries it, for the channels that sign
with a shared secret (REST, Meta).

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


SHA256_PREFIX = "sha256="


def sha256_header(secret: str | bytes, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of body>``: the signature header value the REST channel and Meta's webhooks carry."""
    return SHA256_PREFIX + hmac_sha256_hex(secret, body)


def sha256_header_problem(name: str, header: str | None, body: bytes, secret: str | bytes, *,
                          mismatch: str | None = None) -> str | None:
    """``None`` if ``header`` (the value of the header called ``name``) is :func:`sha256_header` of ``body``, else
    what is wrong with it; ``mismatch`` replaces the default wording for a wrong signature.

    The comparison is constant-time (:func:`hmac.compare_digest`) so the secret cannot be guessed byte by byte
    from response times; the hex digits may be upper or lower case.
    """
    if not header:
        return f"the {name} header is missing"
    if not header.startswith(SHA256_PREFIX):
        return f"the {name} header must look like 'sha256=<hex>'"
    expected = sha256_header(secret, body).encode("ascii")
    if not hmac.compare_digest(expected, header.strip().lower().encode("ascii", "replace")):
        return mismatch or f"the {name} signature does not match the body"
    return None
