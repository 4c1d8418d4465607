"""The Telegram channel component: webhook updates in, Bot API messages out.

Route (relative to ``/channels/<name>``): ``POST /webhook``, registered with ``setWebhook``
and its ``secret_token``. An update is checked and parsed, answered with 200 at once
(Telegram redelivers updates a webhook is slow to accept), then processed in the background,
one chat's updates in order. Button presses are acknowledged with ``answerCallbackQuery`` so
the customer's button stops spinning; replies go out with ``sendMessage`` and an inline keyboard.
"""

from __future__ import annotations

import hmac
import logging
from typing import Sequence

import aiohttp
from aiohttp import web

from gateway.button_payloads import PayloadCodec
from gateway.channel_lanes import LanedWebhookChannel
from gateway.components import ChannelCapabilities, GatewayContext
from gateway.http_errors import error_response
from gateway.messages import Attachment, AttachmentKind, InboundMessage, OutboundMessage

from voicegate_telegram.api import BotApi, TelegramError
from voicegate_telegram.settings import TelegramSettings
from voicegate_telegram.wire import CALLBACK_DATA_BYTES, TgMessage, UpdateProblem, parse_update, send_message

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# Attachment kind -> (Bot API method, its file parameter)
_SEND_METHODS = {AttachmentKind.AUDIO: ("sendAudio", "audio"), AttachmentKind.IMAGE: ("sendPhoto", "photo"),
                 AttachmentKind.VIDEO: ("sendVideo", "video"), AttachmentKind.FILE: ("sendDocument", "document")}


class TelegramChannel(LanedWebhookChannel):
    """A Telegram bot as a VoiceGate channel."""

    vendor = "Telegram"

    def __init__(self, settings: TelegramSettings, context: GatewayContext, *, name: str = "telegram") -> None:
        super().__init__(name, context)
        self.settings = settings
        # Inline keyboards take many buttons; titles past ~40 characters are cut on phones.
        self.capabilities = ChannelCapabilities(buttons=True, max_buttons=10, max_button_title=40,
                                                max_text_length=4096, audio_in=True)
        self.api = BotApi(context.http, settings)
        self._payloads = PayloadCodec(CALLBACK_DATA_BYTES)

    @classmethod
    def create(cls, settings: TelegramSettings, context: GatewayContext) -> "TelegramChannel":
        """The factory handed to the core in the ComponentSpec."""
        return cls(settings, context)

    def routes(self) -> Sequence[web.AbstractRouteDef]:
        return [web.post("/webhook", self.webhook)]

    # ----------------------------------------------------------------- handler

    async def webhook(self, request: web.Request) -> web.Response:
        secret = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(secret.encode("utf-8"), self.settings.webhook_secret.encode("utf-8")):
            problem = f"the {SECRET_HEADER} header is missing" if not secret else f"the {SECRET_HEADER} header does not match"
            log.warning("Telegram webhook refused: %s", problem)
            return _error(401, problem, "Register the webhook with setWebhook and secret_token set to "
                                        "channels.telegram.webhook_secret; see docs/channels.md")
        try:
            update = parse_update(await request.read(), private_only=self.settings.private_chats_only,
                                  start_text=self.settings.start_text)
        except UpdateProblem as exc:
            return _error(exc.status, exc.error, exc.hint)
        if update is None:
            return web.json_response({"accepted": 0})
        # A redelivered update is recognised, durably, when its turn comes (see _process).
        self._lanes.submit(update.sender, lambda: self._process(update))
        return web.json_response({"accepted": 1})

    # ----------------------------------------------------------------- processing

    async def _process(self, update: TgMessage) -> None:
        if update.callback_query_id is not None:
            await self._acknowledge(update)
        attachments: tuple[Attachment, ...] = ()
        if update.media is not None:
            try:
                data = await self.api.download(update.media.file_id, self.settings.max_file_bytes)
            except TelegramError as exc:
                log.warning("Telegram %s: %s", update.message_id, exc)
                await self._send(update.sender, [OutboundMessage(text=self.settings.media_failed_text)])
                return
            attachments = (Attachment(kind=update.media.kind, mime=update.media.mime, data=data,
                                      duration_s=update.media.duration_s, filename=update.media.filename),)
        text, button = self._payloads.pressed(update.button_data, update.button_title, update.text)
        inbound = InboundMessage(channel=self.name, sender=update.sender, message_id=update.message_id,
                                 text=text, button=button, attachments=attachments, received_at=update.received_at)
        await self._hand_in(inbound)

    async def _acknowledge(self, update: TgMessage) -> None:
        """Stop the pressed button's spinner and take the keyboard off its message: the choice is
        made (as in the web chat, older buttons disappear). Failures here must not lose the press."""
        calls = [("answerCallbackQuery", {"callback_query_id": update.callback_query_id})]
        if update.origin_message_id is not None:
            calls.append(("editMessageReplyMarkup", {"chat_id": update.sender, "message_id": update.origin_message_id}))
        for method, params in calls:
            try:
                await self.api.call(method, params)
            except TelegramError as exc:
                log.warning("Telegram %s: %s", update.message_id, exc)

    async def _send(self, chat_id: str, messages: Sequence[OutboundMessage]) -> None:
        for message in messages:
            for attachment in message.attachments:
                await self._send_file(chat_id, attachment)
            if message.text or message.buttons:
                await self.api.call("sendMessage", send_message(chat_id, message, encode=self._payloads.encode,
                                                                prompt=self.settings.choice_prompt))

    async def _send_file(self, chat_id: str, attachment: Attachment) -> None:
        method, field = _SEND_METHODS[attachment.kind]
        if attachment.kind is AttachmentKind.AUDIO and attachment.mime.startswith("audio/ogg"):
            method, field = "sendVoice", "voice"  # OGG/Opus shows as a voice note with a waveform
        if attachment.data is not None:
            form = aiohttp.FormData()
            form.add_field("chat_id", chat_id)
            form.add_field(field, attachment.data, content_type=attachment.mime,
                           filename=attachment.filename or f"{field}.bin")
            await self.api.call(method, form=form)
        elif attachment.url:
            await self.api.call(method, {"chat_id": chat_id, field: attachment.url})
        else:
            raise TelegramError("an outgoing attachment has neither data nor url")


def _error(status: int, error: str, hint: str) -> web.Response:
    return error_response(status, error, hint)
