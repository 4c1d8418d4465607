"""WhatsApp Cloud API JSON: parsing webhook deliveries and building outgoing messages.

Webhook (``POST``), abridged::

    {"object": "whatsapp_business_account", "entry": [{"id": "<WABA id>", "changes": [{
      "field": "messages", "value": {"metadata": {"phone_number_id": "<id>"},
        "messages": [{"from": "393331234567", "id": "wamid.X", "timestamp": "1700000000",
                      "type": "text", "text": {"body": "hi"}}],
        "statuses": [...]}}]}]}

Message types read: ``text``, ``interactive`` (``button_reply`` / ``list_reply``), ``button``
(template quick reply), ``audio`` / ``voice``, ``image``, ``video``, ``document``, ``sticker``.
Delivery statuses and other types (reactions, locations ...) are skipped.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Callable, Mapping

from gateway.messages import AttachmentKind, Button, OutboundMessage
from gateway.rendering import split_text

from voicegate_meta.webhook import WebhookProblem, dicts as _dicts, epoch, string as _str

log = logging.getLogger(__name__)

MAX_REPLY_BUTTONS = 3
MAX_REPLY_TITLE = 20
MAX_LIST_ROWS = 10
MAX_LIST_TITLE = 24
MAX_INTERACTIVE_BODY = 1024
MAX_TEXT = 4096

_MEDIA_KINDS = {
    "audio": AttachmentKind.AUDIO,
    "voice": AttachmentKind.AUDIO,
    "image": AttachmentKind.IMAGE,
    "sticker": AttachmentKind.IMAGE,
    "video": AttachmentKind.VIDEO,
    "document": AttachmentKind.FILE,
}


@dataclass(frozen=True)
class MediaRef:
    """A media object WhatsApp holds for us: fetched by id through the Graph API."""

    media_id: str
    kind: AttachmentKind
    mime: str
    sha256: str | None = None
    filename: str | None = None


@dataclass(frozen=True)
class WaMessage:
    """One customer message of a webhook delivery."""

    sender: str
    message_id: str
    received_at: datetime | None
    text: str | None = None
    button_id: str | None = None
    button_title: str | None = None
    media: MediaRef | None = None


def parse_webhook(raw: bytes, phone_number_id: str) -> list[WaMessage]:
    """The customer messages in a webhook body addressed to ``phone_number_id``."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise WebhookProblem(400, "the body is not JSON", "Send the webhook body exactly as WhatsApp does") from None
    if not isinstance(data, dict) or not isinstance(data.get("entry"), list):
        raise WebhookProblem(400, "the body has no 'entry' list",
                             "Subscribe the app to the 'messages' field of a WhatsApp Business Account")
    found: list[WaMessage] = []
    for entry in data["entry"]:
        for change in _dicts(entry.get("changes") if isinstance(entry, dict) else None):
            value = change.get("value")
            if change.get("field") != "messages" or not isinstance(value, dict):
                continue
            to = (value.get("metadata") or {}).get("phone_number_id")
            if to is not None and str(to) != phone_number_id:
                log.warning("WhatsApp delivery for phone number id %s ignored (configured: %s)", to, phone_number_id)
                continue
            for message in _dicts(value.get("messages")):
                parsed = _message(message)
                if parsed is not None:
                    found.append(parsed)
    return found


def _message(message: Mapping[str, Any]) -> WaMessage | None:
    sender, message_id, kind = message.get("from"), message.get("id"), message.get("type")
    if not isinstance(sender, str) or not isinstance(message_id, str) or not sender or not message_id:
        log.warning("WhatsApp message without 'from' or 'id' skipped")
        return None
    base = WaMessage(sender=sender, message_id=message_id, received_at=epoch(message.get("timestamp")))
    body = message.get(kind) if isinstance(kind, str) else None
    body = body if isinstance(body, dict) else {}
    if kind == "text":
        return replace(base, text=_str(body.get("body")))
    if kind == "interactive":
        reply = body.get(body.get("type", "")) if body.get("type") in ("button_reply", "list_reply") else None
        if isinstance(reply, dict) and isinstance(reply.get("id"), str):
            return replace(base, button_id=reply["id"], button_title=_str(reply.get("title")))
    elif kind == "button":  # a quick-reply button of a template message
        if isinstance(body.get("payload"), str):
            return replace(base, button_id=body["payload"], button_title=_str(body.get("text")))
    elif kind in _MEDIA_KINDS and isinstance(body.get("id"), str):
        media = MediaRef(media_id=body["id"], kind=_MEDIA_KINDS[kind],
                         mime=_str(body.get("mime_type")) or "application/octet-stream",
                         sha256=_str(body.get("sha256")), filename=_str(body.get("filename")))
        return replace(base, text=_str(body.get("caption")), media=media)
    log.info("WhatsApp message of type %r skipped (not supported by this channel)", kind)
    return None




# --------------------------------------------------------------------------- outgoing


def outgoing(to: str, message: OutboundMessage, *, encode: Callable[[str], str],
             list_button: str, prompt: str) -> list[dict[str, Any]]:
    """Graph API bodies for ``message``: text, reply buttons (≤ 3 short titles) or a list.

    Text beyond the 1,024 characters an interactive body holds goes first as plain text.
    """
    if not message.buttons:
        return [_text(to, part) for part in split_text(message.text, MAX_TEXT)] if message.text else []
    parts = split_text(message.text, MAX_INTERACTIVE_BODY) if message.text else [prompt]
    bodies = [_text(to, part) for part in parts[:-1]]
    bodies.append(_interactive(to, parts[-1], message.buttons, encode, list_button))
    return bodies


def _text(to: str, text: str) -> dict[str, Any]:
    return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to, "type": "text",
            "text": {"body": text, "preview_url": False}}


def _interactive(to: str, body: str, buttons: tuple[Button, ...], encode: Callable[[str], str],
                 list_button: str) -> dict[str, Any]:
    if len(buttons) <= MAX_REPLY_BUTTONS and all(len(b.title) <= MAX_REPLY_TITLE for b in buttons):
        action: dict[str, Any] = {"buttons": [
            {"type": "reply", "reply": {"id": encode(b.payload), "title": b.title}} for b in buttons]}
        kind = "button"
    else:
        if len(buttons) > MAX_LIST_ROWS:
            log.warning("WhatsApp lists hold %d rows; %d choices cut", MAX_LIST_ROWS, len(buttons) - MAX_LIST_ROWS)
        rows = [{"id": encode(b.payload), "title": _fit(b.title, MAX_LIST_TITLE)}
                for b in buttons[:MAX_LIST_ROWS]]
        for row, button in zip(rows, buttons):
            if len(button.title) > MAX_LIST_TITLE:
                row["description"] = _fit(button.title, 72)  # the full title, as far as WhatsApp shows it
        action = {"button": list_button, "sections": [{"rows": rows}]}
        kind = "list"
    return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to, "type": "interactive",
            "interactive": {"type": kind, "body": {"text": body}, "action": action}}


def _fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
