"""The one shape of every error the gateway answers over HTTP: ``{"error": ..., "hint": ...}``.

``error`` says what was wrong, ``hint`` what the caller can do about it. The core (oversized
bodies, rejected inbound messages), the agent API and the channels all answer through
:func:`error_response`, so integrators parse one shape.
"""

from __future__ import annotations

from typing import Mapping

from aiohttp import web


def error_response(status: int, error: str, hint: str, *, headers: Mapping[str, str] | None = None) -> web.Response:
    """A JSON error answer with ``status``: ``{"error": error, "hint": hint}``."""
    return web.json_response({"error": error, "hint": hint}, status=status, headers=headers or None)


__all__ = ["error_response"]
