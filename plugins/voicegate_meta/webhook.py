"""The webhook half every Meta channel shares: the subscription handshake, the signature check, parsing and
queueing each customer's messages in their lane (:class:`gateway.channel_lanes.LanedWebhookChannel`)."""

from __future__ import annotations

import logging
from abc import abstractmethod
from datetime import datetime, timezone
from typing import Any, Generic, Sequence, TypeVar

from aiohttp import web

from gateway.channel_lanes import LanedWebhookChannel
from gateway.http_errors import error_response

from voicegate_meta.handshake import answer_subscription
from voicegate_meta.signature import HEADER, signature_problem

log = logging.getLogger(__name__)

M = TypeVar("M")


class WebhookProblem(Exception):
    """A delivery the channel refuses: ``status``, ``error`` (what) and ``hint`` (what to do)."""

    def __init__(self, status: int, error: str, hint: str) -> None:
        super().__init__(error)
        self.status, self.error, self.hint = status, error, hint


class MetaWebhookChannel(LanedWebhookChannel, Generic[M]):
    """``GET /webhook`` answers Meta's verification challenge, ``POST /webhook`` takes signed deliveries.

    A delivery is checked and parsed, then answered with ``200 {"accepted": n}`` at once (Meta retries slow
    webhooks); each parsed message is processed in its sender's lane by :meth:`_process`. ``settings`` must have
    ``verify_token`` and ``app_secret``.
    """

    settings: Any

    @abstractmethod
    def _parse(self, body: bytes) -> list[M]:
        """The customer messages of a delivery (raise :class:`WebhookProblem` for a malformed one)."""

    @abstractmethod
    def _sender(self, message: M) -> str:
        """Whose lane ``message`` runs in."""

    @abstractmethod
    async def _process(self, message: M) -> None:
        """Fetch the message's media, build the :class:`InboundMessage` and :meth:`_hand_in` it."""

    def routes(self) -> Sequence[web.AbstractRouteDef]:
        return [web.get("/webhook", self.verify), web.post("/webhook", self.webhook)]

    async def verify(self, request: web.Request) -> web.Response:
        """Meta's subscription check: echo ``hub.challenge`` when ``hub.verify_token`` is ours."""
        return answer_subscription(request, self.settings.verify_token, f"channels.{self.name}.verify_token")

    async def webhook(self, request: web.Request) -> web.Response:
        body = await request.read()
        problem = signature_problem(request.headers.get(HEADER), body, self.settings.app_secret)
        if problem:
            log.warning("%s webhook refused: %s", self.vendor, problem)
            return error_response(401, problem, "Meta signs each delivery with the app secret: set "
                                                f"channels.{self.name}.app_secret to the app's secret "
                                                "(App settings > Basic)")
        try:
            messages = self._parse(body)
        except WebhookProblem as exc:
            return error_response(exc.status, exc.error, exc.hint)
        for message in messages:  # a retried message id is recognised, durably, when its turn comes
            self._lanes.submit(self._sender(message), lambda m=message: self._process(m))
        return web.json_response({"accepted": len(messages)})


# Reading Meta's JSON defensively: a field of the wrong type reads as absent, never as an exception.


def dicts(value: Any) -> list[dict[str, Any]]:
    """The objects of a JSON list (anything else reads as empty)."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def string(value: Any) -> str | None:
    """``value`` if it is a string."""
    return value if isinstance(value, str) else None


def epoch(value: Any, *, per_second: int = 1) -> datetime | None:
    """A Unix timestamp (in seconds, or ``per_second`` units a second) as an aware UTC datetime, or ``None``."""
    try:
        return datetime.fromtimestamp(int(value) / per_second, tz=timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        return None
