"""The ``X-VoiceGate-Signature`` header: ``sha256=<hex HMAC-SHA256 of the raw body>``."""

from __future__ import annotations

import hmac

from gateway.signing import hmac_sha256_hex

HEADER = "X-VoiceGate-Signature"
_PREFIX = "sha256="


def sign(body: bytes, secret: str) -> str:
    """The header value for ``body`` signed with ``secret``."""
    return _PREFIX + hmac_sha256_hex(secret, body)


def signature_problem(header: str | None, body: bytes, secret: str) -> str | None:
    """``None`` if ``header`` is a valid signature of ``body``, else what is wrong with it.

    The comparison is constant-time (:func:`hmac.compare_digest`) so the secret cannot be
    guessed byte by byte from response times.
    """
    if not header:
        return f"the {HEADER} header is missing"
    if not header.startswith(_PREFIX):
        return f"the {HEADER} header must look like 'sha256=<hex>'"
    expected = sign(body, secret)
    if not hmac.compare_digest(expected.encode("ascii"), header.strip().lower().encode("ascii", "replace")):
        return "the signature does not match the body"
    return None
