"""The ``X-VoiceGate-Signature`` header: ``sha256=<hex HMAC-SHA256 of the raw body>`` (:mod:`gateway.signing`)."""

from __future__ import annotations

from gateway.signing import sha256_header, sha256_header_problem

HEADER = "X-VoiceGate-Signature"


def sign(body: bytes, secret: str) -> str:
    """The header value for ``body`` signed with ``secret``."""
    return sha256_header(secret, body)


def signature_problem(header: str | None, body: bytes, secret: str) -> str | None:
    """``None`` if ``header`` is a valid signature of ``body``, else what is wrong with it (constant-time check)."""
    return sha256_header_problem(HEADER, header, body, secret, mismatch="the signature does not match the body")
