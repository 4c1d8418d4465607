"""The Messenger channel component: a Facebook Page's webhook in, the Send API out.

Routes (relative to ``/channels/<name>``): ``GET /webhook`` answers Meta's verification
challenge, ``POST /webhook`` takes signed deliveries. A delivery is checked and parsed, then
answered with 200 at once (Meta retries slow webhooks); its messages are processed in the
background, one customer's messages in order, and the pipeline's replies are sent through
``POST /{page-id}/messages``: replies to a message as ``RESPONSE``, messages sent outside a
reply (live agents) as ``MESSAGE_TAG`` ``HUMAN_AGENT`` (or ``UPDATE``, see the settings).
"""

from __future__ import annotations

import json
import logging
from typing import Sequence

import aiohttp

from gateway.button_payloads import PayloadCodec
from gateway.components import ChannelCapabilities, GatewayContext
from gateway.messages import Attachment, InboundMessage, OutboundMessage

from voicegate_meta.graph import GraphApi, GraphError
from voicegate_meta.webhook import MetaWebhookChannel
from voicegate_messenger.settings import MessengerSettings
from voicegate_messenger.wire import (
    MAX_PAYLOAD, MAX_QUICK_REPLIES, MAX_TEXT, SEND_TYPES, FbMessage, MessagingType, envelope,
    outgoing, parse_webhook,
)

log = logging.getLogger(__name__)

_TOO_LARGE_HINT = "raise channels.messenger.max_media_bytes"


class MessengerChannel(MetaWebhookChannel[FbMessage]):
    """A Facebook Page's Messenger inbox as a VoiceGate channel."""

    vendor = "Messenger"

    def __init__(self, settings: MessengerSettings, context: GatewayContext, *, name: str = "messenger") -> None:
        super().__init__(name, context)
        self.settings = settings
        # Quick replies: up to 13 under a message. Titles longer than Messenger's 20 characters are
        # shortened with an ellipsis (more readable than turning every choice into a numbered menu).
        self.capabilities = ChannelCapabilities(buttons=True, max_buttons=MAX_QUICK_REPLIES, max_button_title=80,
                                                max_text_length=MAX_TEXT, audio_in=True)
        self.graph = GraphApi(context.http, base_url=settings.graph_base_url, version=settings.graph_api_version,
                              token=settings.page_access_token, timeout_s=settings.request_timeout_s,
                              vendor="Messenger")
        self._payloads = PayloadCodec(MAX_PAYLOAD)

    @classmethod
    def create(cls, settings: MessengerSettings, context: GatewayContext) -> "MessengerChannel":
        """The factory handed to the core in the ComponentSpec."""
        return cls(settings, context)

    def _parse(self, body: bytes) -> list[FbMessage]:
        return parse_webhook(body, self.settings.page_id)

    def _sender(self, message: FbMessage) -> str:
        return message.sender

    # ----------------------------------------------------------------- processing

    async def _process(self, message: FbMessage) -> None:
        attachments: list[Attachment] = []
        for index, media in enumerate(message.media):
            try:
                data, mime = await self.graph.download(media.url, self.settings.max_media_bytes,
                                                       f"attachment {index + 1} of {message.message_id}",
                                                       authorised=False, too_large_hint=_TOO_LARGE_HINT)
            except GraphError as exc:
                log.warning("Messenger message %s: %s", message.message_id, exc)
                await self._send(message.sender, [OutboundMessage(text=self.settings.media_failed_text)])
                return
            mime = (mime or "application/octet-stream").split(";")[0].strip().lower()
            attachments.append(Attachment(kind=media.kind, mime=mime, data=data))
        text, button = self._payloads.pressed(message.payload, message.payload_title, message.text)
        inbound = InboundMessage(channel=self.name, sender=message.sender, message_id=message.message_id,
                                 text=text, button=button, attachments=tuple(attachments),
                                 received_at=message.received_at)
        await self._hand_in(inbound)

    async def deliver(self, recipient: str, messages: Sequence[OutboundMessage]) -> None:
        """Messages outside a reply (agents, acknowledgements): tagged ``HUMAN_AGENT`` when the app may."""
        await self._send_as(recipient, messages, "MESSAGE_TAG" if self.settings.human_agent_tag else "UPDATE")

    async def _send(self, recipient: str, messages: Sequence[OutboundMessage]) -> None:
        await self._send_as(recipient, messages, "RESPONSE")

    async def _send_as(self, psid: str, messages: Sequence[OutboundMessage], kind: MessagingType) -> None:
        path = f"/{self.settings.page_id}/messages"
        for message in messages:
            for attachment in message.attachments:
                await self._send_attachment(path, psid, attachment, kind)
            for body in outgoing(psid, message, messaging_type=kind, encode=self._payloads.encode,
                                 prompt=self.settings.choice_prompt):
                await self.graph.post_with_retries(path, json=body)

    async def _send_attachment(self, path: str, psid: str, attachment: Attachment, kind: MessagingType) -> None:
        send_type = SEND_TYPES[attachment.kind]
        if attachment.url:
            payload = {"attachment": {"type": send_type, "payload": {"url": attachment.url, "is_reusable": False}}}
            await self.graph.post_with_retries(path, json=envelope(psid, payload, kind))
            return
        if attachment.data is None:
            raise GraphError("an outgoing attachment has neither data nor url")
        # The Send API's upload form: the envelope's fields as JSON strings, the file as 'filedata'. Not retried:
        # a form is consumed by its request, and an upload that timed out may have been sent.
        form = aiohttp.FormData()
        for key, value in envelope(psid, {"attachment": {"type": send_type, "payload": {"is_reusable": False}}},
                                   kind).items():
            form.add_field(key, value if isinstance(value, str) else json.dumps(value))
        form.add_field("filedata", attachment.data, content_type=attachment.mime,
                       filename=attachment.filename or f"file.{attachment.mime.split('/')[-1]}")
        await self.graph.call("POST", path, data=form)
