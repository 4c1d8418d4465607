"""Meta's webhook signature: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, raw body)>``."""

from __future__ import annotations

from gateway.signing import sha256_header, sha256_header_problem

HEADER = "X-Hub-Signature-256"


def sign(body: bytes, app_secret: str) -> str:
    """The header value Meta sends for ``body`` (used by tests and tools)."""
    return sha256_header(app_secret, body)


def signature_problem(header: str | None, body: bytes, app_secret: str) -> str | None:
    """``None`` if ``header`` signs ``body`` with ``app_secret``, else what is wrong (constant-time check)."""
    return sha256_header_problem(HEADER, header, body, app_secret)
