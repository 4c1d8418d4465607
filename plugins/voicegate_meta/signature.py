"""Meta's webhook signature: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, raw body)>``."""

from __future__ import annotations

import hmac

from gateway.signing import hmac_sha256_hex

HEADER = "X-Hub-Signature-256"
_PREFIX = "sha256="


def sign(body: bytes, app_secret: str) -> str:
    """The header value Meta sends for ``body`` (used by tests and tools)."""
    return _PREFIX + hmac_sha256_hex(app_secret, body)


def signature_problem(header: str | None, body: bytes, app_secret: str) -> str | None:
    """``None`` if ``header`` signs ``body`` with ``app_secret``, else what is wrong (constant-time check)."""
    if not header:
        return f"the {HEADER} header is missing"
    if not header.startswith(_PREFIX):
        return f"the {HEADER} header must look like 'sha256=<hex>'"
    expected = sign(body, app_secret).encode("ascii")
    if not hmac.compare_digest(expected, header.strip().lower().encode("ascii", "replace")):
        return f"the {HEADER} signature does not match the body"
    return None
