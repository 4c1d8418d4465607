"""Telegram Bot API JSON: reading webhook updates and building ``sendMessage`` calls.

An update, abridged::

    {"update_id": 10001, "message": {"message_id": 5, "date": 1700000000,
      "chat": {"id": 42, "type": "private"}, "from": {"id": 42}, "text": "hi"}}
    {"update_id": 10002, "callback_query": {"id": "cb1", "from": {"id": 42}, "data": "hours",
      "message": {"message_id": 6, "chat": {"id": 42, "type": "private"}, "reply_markup": {...}}}}

Read: ``message`` (text, caption, voice, audio, document, photo, video, video_note) and
``callback_query`` (an inline button). Every other update kind is skipped.

The delivery's message id is ``tg-<update_id>-<chat message_id>`` (``-<callback id>`` for a press):
a redelivered update keeps it, so it is answered once. ``update_id`` alone is not enough: after
a week without updates Telegram restarts it at a random value, which could meet an old one.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Callable, Mapping

from gateway.messages import AttachmentKind, OutboundMessage

log = logging.getLogger(__name__)

CALLBACK_DATA_BYTES = 64


class UpdateProblem(Exception):
    """An update the channel refuses: ``status``, ``error`` (what) and ``hint`` (what to do)."""

    def __init__(self, status: int, error: str, hint: str) -> None:
        super().__init__(error)
        self.status, self.error, self.hint = status, error, hint


@dataclass(frozen=True)
class FileRef:
    """A file Telegram holds for the bot: fetched with ``getFile`` and a download."""

    file_id: str
    kind: AttachmentKind
    mime: str
    duration_s: float | None = None
    filename: str | None = None
    file_size: int | None = None


@dataclass(frozen=True)
class TgMessage:
    """What one update asks of the gateway."""

    sender: str  # the private chat's id
    message_id: str  # "tg-<update_id>-<chat message id or callback id>"
    received_at: datetime | None
    text: str | None = None
    button_data: str | None = None
    button_title: str | None = None
    callback_query_id: str | None = None
    origin_message_id: int | None = None  # the message whose inline button was pressed
    media: FileRef | None = None


def parse_update(raw: bytes, *, private_only: bool, start_text: str | None = None) -> TgMessage | None:
    """The customer message in an update body, or ``None`` for updates the channel skips.

    ``/start`` (what Telegram sends when a customer opens the bot) becomes ``start_text``.
    """
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise UpdateProblem(400, "the body is not JSON", "Send the Update object as Telegram does") from None
    if not isinstance(data, dict) or isinstance(data.get("update_id"), bool) or not isinstance(data.get("update_id"), int):
        raise UpdateProblem(400, "the body is not a Telegram Update (no integer 'update_id')",
                            "Register this URL with setWebhook; see docs/channels.md")
    message_id = f"tg-{data['update_id']}"
    if isinstance(data.get("message"), dict):
        message = _message(data["message"], message_id, private_only)
        if message is not None and start_text and message.text and _is_start(message.text):
            message = replace(message, text=start_text)
        return message
    if isinstance(data.get("callback_query"), dict):
        return _callback(data["callback_query"], message_id, private_only)
    log.debug("Telegram update %s skipped (kind %s)", data["update_id"], sorted(k for k in data if k != "update_id"))
    return None


def _is_start(text: str) -> bool:
    command = text.split(maxsplit=1)[0] if text.strip() else ""
    return command == "/start" or command.startswith("/start@")  # "/start@MyBot" in some clients


def _chat_id(message: Mapping[str, Any], private_only: bool) -> str | None:
    chat = message.get("chat")
    if not isinstance(chat, dict) or isinstance(chat.get("id"), bool) or not isinstance(chat.get("id"), int):
        return None
    if private_only and chat.get("type") != "private":
        log.info("Telegram message from a %s chat skipped (private_chats_only)", chat.get("type"))
        return None
    return str(chat["id"])


def _message(message: Mapping[str, Any], message_id: str, private_only: bool) -> TgMessage | None:
    sender = _chat_id(message, private_only)
    if sender is None:
        return None
    text = _str(message.get("text")) or _str(message.get("caption"))
    if _int(message.get("message_id")) is not None:
        message_id = f"{message_id}-{message['message_id']}"
    base = TgMessage(sender=sender, message_id=message_id, received_at=_date(message.get("date")), text=text)
    media = _media(message)
    if media is None and text is None:
        log.info("Telegram message %s skipped: no text and no supported file", message_id)
        return None
    return replace(base, media=media)


def _media(message: Mapping[str, Any]) -> FileRef | None:
    for key, kind, mime in (("voice", AttachmentKind.AUDIO, "audio/ogg"), ("audio", AttachmentKind.AUDIO, "audio/mpeg"),
                            ("video_note", AttachmentKind.VIDEO, "video/mp4"), ("video", AttachmentKind.VIDEO, "video/mp4"),
                            ("document", AttachmentKind.FILE, "application/octet-stream")):
        item = message.get(key)
        if isinstance(item, dict) and isinstance(item.get("file_id"), str):
            item_mime = _str(item.get("mime_type")) or mime
            if key == "document" and item_mime.startswith("audio/"):
                kind = AttachmentKind.AUDIO
            duration = item.get("duration")
            return FileRef(file_id=item["file_id"], kind=kind, mime=item_mime.lower(),
                           duration_s=float(duration) if isinstance(duration, (int, float)) else None,
                           filename=_str(item.get("file_name")), file_size=_int(item.get("file_size")))
    photos = message.get("photo")
    if isinstance(photos, list) and photos:
        sizes = [p for p in photos if isinstance(p, dict) and isinstance(p.get("file_id"), str)]
        if sizes:
            largest = max(sizes, key=lambda p: _int(p.get("file_size")) or 0)
            return FileRef(file_id=largest["file_id"], kind=AttachmentKind.IMAGE, mime="image/jpeg",
                           file_size=_int(largest.get("file_size")))
    return None


def _callback(query: Mapping[str, Any], message_id: str, private_only: bool) -> TgMessage | None:
    origin = query.get("message")
    data = _str(query.get("data"))
    if not isinstance(origin, dict) or data is None or not isinstance(query.get("id"), str):
        return None  # a game or inline-mode button: nothing for the gateway
    sender = _chat_id(origin, private_only)
    if sender is None:
        return None
    return TgMessage(sender=sender, message_id=f"{message_id}-{query['id']}", received_at=None, button_data=data,
                     button_title=_title_of(origin, data), callback_query_id=query["id"],
                     origin_message_id=_int(origin.get("message_id")))


def _title_of(message: Mapping[str, Any], data: str) -> str | None:
    keyboard = (message.get("reply_markup") or {}).get("inline_keyboard")
    for row in keyboard if isinstance(keyboard, list) else []:
        for button in row if isinstance(row, list) else []:
            if isinstance(button, dict) and button.get("callback_data") == data:
                return _str(button.get("text"))
    return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _date(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value), tz=timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def send_message(chat_id: str, message: OutboundMessage, *, encode: Callable[[str], str], prompt: str) -> dict[str, Any]:
    """The ``sendMessage`` parameters for ``message``: buttons as an inline keyboard, one per row."""
    params: dict[str, Any] = {"chat_id": chat_id, "text": message.text or prompt}
    if message.buttons:
        params["reply_markup"] = {"inline_keyboard": [
            [{"text": b.title, "callback_data": encode(b.payload)}] for b in message.buttons]}
    return params
