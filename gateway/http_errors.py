"""JSON answers over HTTP, and the one shape of every error: ``{"error": ..., "hint": ...}``.

``error`` says what was wrong, ``hint`` what the caller can do about it. The core (oversized
bodies, rejected inbound messages), the agent API and the channels all answer through
:func:`error_response`, so integrators parse one shape.
"""

from __future__ import annotations

from typing import Any, Mapping

from aiohttp import web

from gateway import json_codec


def json_response(data: Any, *, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    """``data`` as an ``application/json`` answer, encoded by :mod:`gateway.json_codec` (compact UTF-8)."""
    return web.Response(body=json_codec.dumps_bytes(data), status=status, headers=headers or None,
                        content_type="application/json", charset="utf-8")


def error_response(status: int, error: str, hint: str, *, headers: Mapping[str, str] | None = None) -> web.Response:
    """A JSON error answer with ``status``: ``{"error": error, "hint": hint}``."""
    return json_response({"error": error, "hint": hint}, status=status, headers=headers)


__all__ = ["error_response", "json_response"]
