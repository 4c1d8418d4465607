"""The Twilio SMS channel component: form webhooks answered with TwiML, the rest via the Messages API.

Route (relative to ``/channels/<name>``): ``POST /webhook``, the number's "A message comes in"
webhook in the Twilio console. The signature is checked against the public URL, MMS files are
fetched, the pipeline answers, and the replies go back in the same response as TwiML
``<Message>`` elements. Messages outside a request (agents), and answers not ready within
``reply_within_s``, use ``POST .../Messages.json``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Coroutine, Sequence, TypeVar

from aiohttp import web

from gateway.components import ChannelCapabilities, GatewayContext
from gateway.errors import InboundRejected
from gateway.http_errors import error_response
from gateway.messages import Attachment, AttachmentKind, InboundMessage, OutboundMessage

from voicegate_twilio_sms.api import TwilioApi, TwilioError
from voicegate_twilio_sms.settings import TwilioSmsSettings
from voicegate_twilio_sms.signature import HEADER, signature_problem
from voicegate_twilio_sms.texts import pack, plain, twiml

log = logging.getLogger(__name__)

T = TypeVar("T")

_TWIML = "application/xml"
_MAX_MEDIA = 10  # Twilio sends at most 10 files per MMS


class TwilioSmsChannel:
    """A Twilio phone number (or Messaging Service) as a VoiceGate channel."""

    def __init__(self, settings: TwilioSmsSettings, context: GatewayContext, *, name: str = "sms") -> None:
        self.name = name
        self.settings = settings
        # No buttons: the core sends choices as "1. ..." lines and maps the digit back.
        self.capabilities = ChannelCapabilities(buttons=False, max_buttons=0, max_button_title=0,
                                                max_text_length=settings.max_message_chars, audio_in=True)
        self._context = context
        self.api = TwilioApi(context.http, settings)
        self._answered: dict[str, None] = {}  # MessageSids answered lately (insertion-ordered, bounded)
        self._tasks: set[asyncio.Task[Any]] = set()

    @classmethod
    def create(cls, settings: TwilioSmsSettings, context: GatewayContext) -> "TwilioSmsChannel":
        """The factory handed to the core in the ComponentSpec."""
        return cls(settings, context)

    def routes(self) -> Sequence[web.AbstractRouteDef]:
        return [web.post("/webhook", self.webhook)]

    async def deliver(self, recipient: str, messages: Sequence[OutboundMessage]) -> None:
        bodies, media = self._bodies(messages)
        for index, body in enumerate(bodies):
            await self.api.send_sms(recipient, body, media[index] if index < len(media) else ())

    async def close(self) -> None:
        """Let turns still running finish (up to 10 s) so their answers go out, then cancel the rest."""
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=10.0)
            for task in pending:
                task.cancel()

    # ----------------------------------------------------------------- handler

    async def webhook(self, request: web.Request) -> web.Response:
        form = await request.post()
        params = {name: [str(v) for v in form.getall(name)] for name in set(form.keys())}
        url = self._public_url(request)
        problem = signature_problem(request.headers.get(HEADER), url, params, self.settings.auth_token)
        if problem:
            log.warning("SMS webhook refused: %s (checked against %s)", problem, url)
            return _error(401, f"{problem} (checked against {url})",
                          "Set channels.sms.auth_token to the account's auth token, and channels.sms.public_base_url "
                          "to the scheme and host Twilio calls when the gateway runs behind a proxy")
        first = {name: values[0] for name, values in params.items() if values}
        if first.get("AccountSid") != self.settings.account_sid:
            return _error(403, "the message is for another Twilio account",
                          "Point only this account's numbers at this webhook, or fix channels.sms.account_sid")
        sid, sender = first.get("MessageSid") or first.get("SmsSid"), first.get("From")
        if not sid or not sender:
            return _error(400, "MessageSid or From is missing", "Configure this URL as the number's messaging webhook")
        if sid in self._answered:  # Twilio retried a delivery already answered: say nothing twice
            return web.Response(body=twiml([]), content_type=_TWIML)
        attachments, media_failed = await self._media(first)
        if media_failed:
            return self._twiml([OutboundMessage(text=self.settings.media_failed_text)])
        text = first.get("Body") or None
        if text is None and not attachments:
            return web.Response(body=twiml([]), content_type=_TWIML)
        inbound = InboundMessage(channel=self.name, sender=sender, message_id=sid, text=text, attachments=attachments)
        # Twilio waits 15 s for the answer. The pipeline runs in its own task so a slow turn (a voice
        # check on a busy machine) is never cut short: past reply_within_s its replies go by API.
        work = self._own(self._context.inbox.receive(inbound), f"sms turn {sid[-6:]}")
        try:
            done, _ = await asyncio.wait({work}, timeout=self.settings.reply_within_s)
        except asyncio.CancelledError:  # Twilio hung up: the answer goes out through the API
            self._send_later(work, sender, sid)
            raise
        if not done:
            log.info("SMS %s: the answer takes longer than %s s; it will be sent through the Messages API",
                     sid, self.settings.reply_within_s)
            self._send_later(work, sender, sid)
            self._remember(sid)
            return web.Response(body=twiml([]), content_type=_TWIML)
        try:
            replies = work.result()
        except InboundRejected as exc:
            return _error(exc.status, str(exc), "Fix the request as the error says and resend it")
        self._remember(sid)
        return self._twiml(replies)

    # ----------------------------------------------------------------- helpers

    def _own(self, coroutine: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
        task = asyncio.create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _send_later(self, work: asyncio.Task[list[OutboundMessage]], sender: str, sid: str) -> None:
        async def send() -> None:
            try:
                replies = await work
            except InboundRejected as exc:
                log.warning("SMS %s refused by the pipeline: %s", sid, exc)
                return
            except Exception:  # noqa: BLE001 - nobody else will see it
                log.exception("SMS %s failed in the pipeline", sid)
                return
            try:
                await self.deliver(sender, replies)
            except TwilioError as exc:
                log.warning("SMS %s: the late answer could not be sent: %s", sid, exc)

        self._own(send(), f"sms late answer {sid[-6:]}")

    def _public_url(self, request: web.Request) -> str:
        if self.settings.public_base_url:
            return self.settings.public_base_url + request.raw_path
        return str(request.url)

    async def _media(self, fields: dict[str, str]) -> tuple[tuple[Attachment, ...], bool]:
        try:
            count = min(int(fields.get("NumMedia", "0") or 0), _MAX_MEDIA)
        except ValueError:
            count = 0
        attachments: list[Attachment] = []
        for index in range(count):
            url, mime = fields.get(f"MediaUrl{index}"), (fields.get(f"MediaContentType{index}") or "").lower()
            if not url:
                continue
            try:
                data = await self.api.fetch_media(url, self.settings.max_media_bytes)
            except TwilioError as exc:
                log.warning("SMS %s: media %d: %s", fields.get("MessageSid"), index, exc)
                return (), True
            attachments.append(Attachment(kind=_kind(mime), mime=mime or "application/octet-stream", data=data))
        return tuple(attachments), False

    def _bodies(self, messages: Sequence[OutboundMessage]) -> tuple[list[str], list[list[str]]]:
        texts: list[str] = []
        media: list[list[str]] = []
        for message in messages:
            urls = [a.url for a in message.attachments if a.url]
            if len(urls) < len(message.attachments):
                log.warning("SMS cannot carry attachments without a public URL; %d dropped",
                            len(message.attachments) - len(urls))
            text = plain(message.text) if self.settings.plain_punctuation else message.text
            if urls:  # a message with media is sent on its own, not joined with others
                texts.append(text)
                media.append(urls)
            elif text:
                texts.append(text)
                media.append([])
        if any(media):
            return texts, media  # keep the pairing: no joining or cutting around media
        return pack(texts, max_chars=self.settings.max_message_chars,
                    max_messages=self.settings.max_messages_per_reply), []

    def _twiml(self, messages: Sequence[OutboundMessage]) -> web.Response:
        bodies, media = self._bodies(messages)
        return web.Response(body=twiml(bodies, media), content_type=_TWIML)

    def _remember(self, sid: str) -> None:
        self._answered[sid] = None
        if len(self._answered) > 10_000:
            del self._answered[next(iter(self._answered))]


def _kind(mime: str) -> AttachmentKind:
    for prefix, kind in (("audio/", AttachmentKind.AUDIO), ("image/", AttachmentKind.IMAGE),
                         ("video/", AttachmentKind.VIDEO)):
        if mime.startswith(prefix):
            return kind
    return AttachmentKind.FILE


def _error(status: int, error: str, hint: str) -> web.Response:
    return error_response(status, error, hint)
