"""The WhatsApp channel component: Meta's webhook in, Graph API messages out.

Routes (relative to ``/channels/<name>``): ``GET /webhook`` answers Meta's verification
challenge, ``POST /webhook`` takes signed deliveries. A delivery is checked and parsed, then
answered with 200 at once (Meta retries slow webhooks); its messages are processed in the
background, one customer's messages in order, and the pipeline's replies are sent through
``POST /{phone-number-id}/messages``.
"""

from __future__ import annotations

import logging
from typing import Sequence

from gateway.button_payloads import PayloadCodec
from gateway.components import ChannelCapabilities, GatewayContext
from gateway.messages import Attachment, AttachmentKind, InboundMessage, OutboundMessage

from voicegate_meta.webhook import MetaWebhookChannel
from voicegate_whatsapp.graph import GraphClient, GraphError
from voicegate_whatsapp.settings import WhatsAppSettings
from voicegate_whatsapp.wire import MAX_LIST_ROWS, MAX_LIST_TITLE, WaMessage, outgoing, parse_webhook

log = logging.getLogger(__name__)

_MEDIA_TYPES = {AttachmentKind.AUDIO: "audio", AttachmentKind.IMAGE: "image",
                AttachmentKind.VIDEO: "video", AttachmentKind.FILE: "document"}
_ROW_ID_LIMIT = 200  # list row ids hold 200 characters, reply button ids 256: one limit for both


class WhatsAppChannel(MetaWebhookChannel[WaMessage]):
    """A WhatsApp Business phone number as a VoiceGate channel."""

    vendor = "WhatsApp"

    def __init__(self, settings: WhatsAppSettings, context: GatewayContext, *, name: str = "whatsapp") -> None:
        super().__init__(name, context)
        self.settings = settings
        # Up to ten choices fit a list message (row titles ≤ 24); the channel picks reply
        # buttons when there are at most three short ones. More than ten: the core numbers them.
        self.capabilities = ChannelCapabilities(buttons=True, max_buttons=MAX_LIST_ROWS,
                                                max_button_title=MAX_LIST_TITLE, max_text_length=4096, audio_in=True)
        self.graph = GraphClient(context.http, settings)
        self._payloads = PayloadCodec(_ROW_ID_LIMIT)

    @classmethod
    def create(cls, settings: WhatsAppSettings, context: GatewayContext) -> "WhatsAppChannel":
        """The factory handed to the core in the ComponentSpec."""
        return cls(settings, context)

    def _parse(self, body: bytes) -> list[WaMessage]:
        return parse_webhook(body, self.settings.phone_number_id)

    def _sender(self, message: WaMessage) -> str:
        return message.sender

    # ----------------------------------------------------------------- processing

    async def _process(self, message: WaMessage) -> None:
        attachments: tuple[Attachment, ...] = ()
        if message.media is not None:
            try:
                data, mime = await self.graph.fetch_media(message.media, self.settings.max_media_bytes)
            except GraphError as exc:
                log.warning("WhatsApp message %s: %s", message.message_id, exc)
                await self._send(message.sender, [OutboundMessage(text=self.settings.media_failed_text)])
                return
            attachments = (Attachment(kind=message.media.kind, mime=mime.lower(), data=data,
                                      filename=message.media.filename),)
        text, button = self._payloads.pressed(message.button_id, message.button_title, message.text)
        inbound = InboundMessage(channel=self.name, sender=message.sender, message_id=message.message_id,
                                 text=text, button=button, attachments=attachments, received_at=message.received_at)
        await self._hand_in(inbound)

    async def _send(self, to: str, messages: Sequence[OutboundMessage]) -> None:
        for message in messages:
            for attachment in message.attachments:
                await self.graph.send(await self._media_body(to, attachment))
            for body in outgoing(to, message, encode=self._payloads.encode,
                                 list_button=self.settings.list_button_text, prompt=self.settings.choice_prompt):
                await self.graph.send(body)

    async def _media_body(self, to: str, attachment: Attachment) -> dict[str, object]:
        kind = _MEDIA_TYPES[attachment.kind]
        if attachment.data is not None:
            media: dict[str, str] = {"id": await self.graph.upload(attachment.data, attachment.mime,
                                                                  attachment.filename or f"file.{kind}")}
        elif attachment.url:
            media = {"link": attachment.url}
        else:
            raise GraphError("an outgoing attachment has neither data nor url")
        if kind == "document" and attachment.filename:
            media["filename"] = attachment.filename
        return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to, "type": kind, kind: media}
