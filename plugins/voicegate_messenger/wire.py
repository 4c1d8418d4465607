"""Messenger Platform JSON: parsing webhook deliveries and building Send API bodies.

Webhook (``POST``), abridged::

    {"object": "page", "entry": [{"id": "<page id>", "time": 1700000000000, "messaging": [{
      "sender": {"id": "<PSID>"}, "recipient": {"id": "<page id>"}, "timestamp": 1700000000000,
      "message": {"mid": "m_X", "text": "hi", "quick_reply": {"payload": "hours"},
                  "attachments": [{"type": "audio", "payload": {"url": "https://cdn..."}}]}}]}]}

Events read: ``message`` (text, quick reply, ``audio`` / ``image`` / ``video`` / ``file`` attachments)
and ``postback`` (a persistent-menu or template button). Echoes of the Page's own messages,
deliveries, reads, reactions and other attachment types (location, fallback) are skipped.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Literal, Mapping

from gateway.messages import AttachmentKind, Button, OutboundMessage
from gateway.rendering import split_text

from voicegate_meta.webhook import WebhookProblem, dicts as _dicts, epoch, string as _str

log = logging.getLogger(__name__)

MAX_QUICK_REPLIES = 13
MAX_QUICK_REPLY_TITLE = 20
MAX_PAYLOAD = 1000
MAX_TEXT = 2000
MAX_ATTACHMENTS = 5  # per customer message; Messenger groups a few photos into one message

MessagingType = Literal["RESPONSE", "UPDATE", "MESSAGE_TAG"]

_MEDIA_KINDS = {"audio": AttachmentKind.AUDIO, "image": AttachmentKind.IMAGE,
                "video": AttachmentKind.VIDEO, "file": AttachmentKind.FILE}
SEND_TYPES = {kind: name for name, kind in _MEDIA_KINDS.items()}


@dataclass(frozen=True)
class MediaUrl:
    """An attachment Messenger holds on its CDN: a pre-signed URL."""

    url: str
    kind: AttachmentKind


@dataclass(frozen=True)
class FbMessage:
    """One customer message (or postback) of a webhook delivery."""

    sender: str  # the page-scoped id (PSID)
    message_id: str
    received_at: datetime | None
    text: str | None = None
    payload: str | None = None  # a quick reply's or postback's payload
    payload_title: str | None = None
    media: tuple[MediaUrl, ...] = ()


def parse_webhook(raw: bytes, page_id: str) -> list[FbMessage]:
    """The customer messages in a webhook body addressed to ``page_id``."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise WebhookProblem(400, "the body is not JSON", "Send the webhook body exactly as Messenger does") from None
    if not isinstance(data, dict) or data.get("object") != "page" or not isinstance(data.get("entry"), list):
        raise WebhookProblem(400, "the body is not a Page delivery (object 'page' with an 'entry' list)",
                             "Subscribe the app to the Page's 'messages' and 'messaging_postbacks' fields")
    found: list[FbMessage] = []
    for entry in _dicts(data["entry"]):
        for event in _dicts(entry.get("messaging")):
            to = event.get("recipient")
            recipient = str(to.get("id", "") if isinstance(to, dict) else entry.get("id", ""))
            if recipient != page_id:
                log.warning("Messenger delivery for page %s ignored (configured: %s)", recipient, page_id)
                continue
            parsed = _event(event)
            if parsed is not None:
                found.append(parsed)
    return found


def _event(event: Mapping[str, Any]) -> FbMessage | None:
    sender = event["sender"].get("id") if isinstance(event.get("sender"), dict) else None
    if not isinstance(sender, str) or not sender:
        log.warning("Messenger event without a sender id skipped")
        return None
    received_at = epoch(event.get("timestamp"), per_second=1000)  # Messenger counts milliseconds
    message, postback = event.get("message"), event.get("postback")
    if isinstance(message, dict):
        if message.get("is_echo"):
            return None  # the Page's own message (ours, or a person answering in the Page inbox)
        mid = message.get("mid")
        if not isinstance(mid, str) or not mid:
            log.warning("Messenger message without 'mid' skipped")
            return None
        quick = message.get("quick_reply")
        payload = quick.get("payload") if isinstance(quick, dict) and isinstance(quick.get("payload"), str) else None
        media = tuple(
            MediaUrl(url=a["payload"]["url"], kind=_MEDIA_KINDS[a["type"]])
            for a in _dicts(message.get("attachments"))
            if a.get("type") in _MEDIA_KINDS and isinstance(a.get("payload"), dict)
            and isinstance(a["payload"].get("url"), str) and a["payload"]["url"].startswith(("https://", "http://"))
        )[:MAX_ATTACHMENTS]
        text = _str(message.get("text"))
        if text is None and payload is None and not media:
            log.info("Messenger message %s skipped (no text and no supported attachment)", mid)
            return None
        return FbMessage(sender=sender, message_id=mid, received_at=received_at, text=text,
                         payload=payload, payload_title=text if payload is not None else None, media=media)
    if isinstance(postback, dict) and isinstance(postback.get("payload"), str):
        # Older postbacks carry no mid: the sender and the millisecond timestamp identify a retry.
        mid = postback.get("mid") if isinstance(postback.get("mid"), str) else f"postback:{sender}:{event.get('timestamp')}"
        return FbMessage(sender=sender, message_id=mid, received_at=received_at,
                         payload=postback["payload"], payload_title=_str(postback.get("title")))
    return None  # delivery, read, reaction, optin ...




# --------------------------------------------------------------------------- outgoing


def outgoing(psid: str, message: OutboundMessage, *, messaging_type: MessagingType, encode: Callable[[str], str],
             prompt: str) -> list[dict[str, Any]]:
    """Send API bodies for ``message``'s text: parts of at most 2,000 characters, the last one carrying the buttons
    as quick replies (titles fitted to 20 characters)."""
    if not message.buttons:
        return [envelope(psid, {"text": part}, messaging_type) for part in split_text(message.text, MAX_TEXT)] \
            if message.text else []
    parts = split_text(message.text, MAX_TEXT) if message.text else [prompt]
    bodies = [envelope(psid, {"text": part}, messaging_type) for part in parts[:-1]]
    if len(message.buttons) > MAX_QUICK_REPLIES:
        log.warning("Messenger shows %d quick replies; %d choices cut", MAX_QUICK_REPLIES,
                    len(message.buttons) - MAX_QUICK_REPLIES)
    quick = [_quick_reply(b, encode) for b in message.buttons[:MAX_QUICK_REPLIES]]
    bodies.append(envelope(psid, {"text": parts[-1], "quick_replies": quick}, messaging_type))
    return bodies


def envelope(psid: str, message: dict[str, Any], messaging_type: MessagingType) -> dict[str, Any]:
    """The Send API body around ``message``; ``MESSAGE_TAG`` messages carry the ``HUMAN_AGENT`` tag."""
    body: dict[str, Any] = {"recipient": {"id": psid}, "messaging_type": messaging_type, "message": message}
    if messaging_type == "MESSAGE_TAG":
        body["tag"] = "HUMAN_AGENT"
    return body


def _quick_reply(button: Button, encode: Callable[[str], str]) -> dict[str, str]:
    return {"content_type": "text", "title": _fit(button.title, MAX_QUICK_REPLY_TITLE), "payload": encode(button.payload)}


def _fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
