"""The REST channel component: signed JSON in, the bots' replies out, an outbox for the rest."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any, Sequence

from aiohttp import web

from gateway.components import ChannelCapabilities, GatewayContext
from gateway.db.outbox import OutboxStore
from gateway.downloads import DownloadTooLarge, read_limited
from gateway.errors import InboundRejected
from gateway.http_errors import error_response, json_response
from gateway.messages import OutboundMessage
from gateway.wakeups import Wakeups

from voicegate_rest.outbox import Outbox
from voicegate_rest.settings import RestSettings
from voicegate_rest.signature import HEADER, signature_problem
from voicegate_rest.wire import Limits, RequestProblem, message_json, parse_message, reply_json

log = logging.getLogger(__name__)

_MAX_WAIT_S = 30.0


class RestChannel:
    """``POST /messages`` (signed) answers with the replies; ``GET /outbox/{sender}`` (signed)
    returns what was sent outside a request. Routes are relative to ``/channels/<name>``."""

    def __init__(self, settings: RestSettings, context: GatewayContext, *, name: str = "rest") -> None:
        self.name = name
        self.settings = settings
        self.capabilities = ChannelCapabilities(
            buttons=settings.buttons, max_buttons=10, max_button_title=40, max_text_length=settings.max_text_chars
        )
        self._context = context
        self._limits = Limits(settings.max_attachment_bytes, settings.max_attachments, settings.max_text_chars)
        store = OutboxStore(context.db_engine, name, max_per_recipient=settings.outbox_max_per_sender,
                            ttl_s=settings.outbox_ttl_s, clock=context.now)
        self.outbox = Outbox(store, Wakeups(f"voicegate:outbox:{name}", context.redis_url))

    @classmethod
    async def create(cls, settings: RestSettings, context: GatewayContext) -> "RestChannel":
        """The factory handed to the core in the ComponentSpec; subscribes to wake-ups (Redis)."""
        channel = cls(settings, context)
        await channel.outbox.wakeups.start()
        return channel

    def routes(self) -> Sequence[web.AbstractRouteDef]:
        return [
            web.post("/messages", self.post_message),
            web.get(r"/outbox/{sender}", self.get_outbox),
        ]

    async def deliver(self, recipient: str, messages: Sequence[OutboundMessage]) -> None:
        """Queue ``messages`` in the database for the integrator's next poll (any instance answers it)."""
        await self.outbox.put(recipient, messages)

    async def close(self) -> None:
        """Stop listening for wake-ups; the outbox itself is in the database."""
        await self.outbox.wakeups.close()

    # ----------------------------------------------------------------- handlers

    async def post_message(self, request: web.Request) -> web.Response:
        try:
            body = await self._read_body(request)
            problem = signature_problem(request.headers.get(HEADER), body, self.settings.secret)
            if problem:
                raise RequestProblem(401, problem, _SIGN_HINT)
            message = parse_message(body, self.name, self._limits)
        except RequestProblem as exc:
            return _error(exc)
        try:
            replies = (await self._context.inbox.receive_turn(message)).replies  # one coroutine layer fewer than receive()
        except InboundRejected as exc:
            return error_response(exc.status, str(exc), "Fix the request as the error says and resend it")
        except Exception:  # noqa: BLE001 - the integrator gets a retryable answer, the log the details
            log.exception("REST message %r from %r failed in the pipeline", message.message_id, message.sender)
            return error_response(500, "the gateway could not process the message",
                                  "Retry with the same message_id: a message already stored is answered once")
        return json_response(reply_json(replies))

    async def get_outbox(self, request: web.Request) -> web.Response:
        sender = request.match_info["sender"]
        problem = signature_problem(request.headers.get(HEADER), request.raw_path.encode("utf-8"), self.settings.secret)
        if problem:
            return _error(RequestProblem(401, problem, _OUTBOX_SIGN_HINT))
        try:
            after = _number(request.query.get("after", "0"), "after", int)
            wait = min(_number(request.query.get("wait", "0"), "wait", float), _MAX_WAIT_S)
        except RequestProblem as exc:
            return _error(exc)
        items = await self.outbox.take(sender, after=after, wait_s=wait)
        messages = [{"seq": item.seq, **message_json(item.message)} for item in items]
        cursor = items[-1].seq if items else after
        return json_response({"messages": messages, "cursor": cursor})

    async def _read_body(self, request: web.Request) -> bytes:
        limit = self.settings.max_body_bytes
        too_large = RequestProblem(413, f"the body is larger than {limit} bytes",
                                   "Send smaller attachments or raise channels.rest.max_body_bytes")
        length = request.content_length
        if length is not None and not request.headers.get("Content-Encoding"):  # compressed: the length is not the body's
            if length > limit:
                raise too_large
            # Content-Length within the limit: one read (aiohttp stops at that length).
            try:
                return await request.content.readexactly(length)
            except asyncio.IncompleteReadError:
                raise RequestProblem(400, f"the body ended before its Content-Length ({length} bytes)",
                                     "Send the whole body, or a Content-Length that matches it") from None
        # In chunks, so a body without Content-Length (or a compressed one) cannot exceed the limit in memory.
        try:
            return await read_limited(request, limit)
        except DownloadTooLarge:
            raise too_large from None


_SIGN_HINT = (f"Send the header {HEADER}: sha256=<hex HMAC-SHA256 of the exact body bytes, keyed with the "
              "channel secret>; see docs/rest-api.md")
_OUTBOX_SIGN_HINT = (f"Send the header {HEADER}: sha256=<hex HMAC-SHA256 of the request path with its query, "
                     "e.g. '/channels/rest/outbox/alice?after=0', keyed with the channel secret>")
_NUMBER = re.compile(r"^\d+(\.\d+)?$")


_MAX_SEQ = 2**63 - 1


def _number(text: str, key: str, kind: Any) -> Any:
    if not _NUMBER.match(text) or (kind is int and "." in text):
        raise RequestProblem(400, f"'{key}' must be a non-negative {'integer' if kind is int else 'number'}, found {text!r}",
                             f"Pass ?{key}=<number> or leave it out")
    value = kind(text)
    if kind is int and value > _MAX_SEQ:  # the database's sequence numbers are 64-bit
        raise RequestProblem(400, f"'{key}' is larger than any sequence number ({_MAX_SEQ})",
                             f"Pass the 'cursor' of your last poll as ?{key}=")
    return value


def _error(problem: RequestProblem) -> web.Response:
    return error_response(problem.status, problem.error, problem.hint)
