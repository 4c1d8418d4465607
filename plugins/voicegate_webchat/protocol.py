"""The web chat's JSON frames over the WebSocket (see ``docs/webchat.md``).

Page -> gateway::

    {"type": "hello", "session": "<id from localStorage, or absent>"}
    {"type": "message", "id": "<client id>", "text": "...", "button": "<payload>",
     "attachments": [{"type": "audio", "mime": "audio/webm;codecs=opus", "data_base64": "...", "duration_s": 3.1}]}

Gateway -> page::

    {"type": "ready", "session": "<id>", "max_upload_bytes": N, "max_text_chars": N}
    {"type": "reply", "in_reply_to": "<client id>", "messages": [{"text", "buttons": [{"title", "payload"}]}]}
    {"type": "push", "messages": [...]}            # agents, acknowledgements
    {"type": "error", "in_reply_to": "<client id or null>", "error": "...", "hint": "..."}
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any, Sequence

from gateway.messages import Attachment, AttachmentKind, InboundMessage, OutboundMessage

SESSION_RE = re.compile(r"^[A-Za-z0-9_-]{22,64}$")
CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


class FrameProblem(Exception):
    """A frame the gateway refuses; ``error`` says what, ``hint`` what to do."""

    def __init__(self, error: str, hint: str, in_reply_to: str | None = None) -> None:
        super().__init__(error)
        self.error, self.hint, self.in_reply_to = error, hint, in_reply_to

    def frame(self) -> dict[str, Any]:
        return {"type": "error", "in_reply_to": self.in_reply_to, "error": self.error, "hint": self.hint}


@dataclass(frozen=True)
class Limits:
    max_upload_bytes: int
    max_text_chars: int


def new_session_id() -> str:
    """A fresh customer session id: 192 random bits, URL-safe (it is the customer's key)."""
    return secrets.token_urlsafe(24)


def parse_frame(raw: str) -> dict[str, Any]:
    """A frame as a dict with a string ``type``, or :class:`FrameProblem`."""
    try:
        data = json.loads(raw)
    except json.JSONDecodeError:
        raise FrameProblem("the frame is not JSON", "Send one JSON object per WebSocket message") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise FrameProblem("the frame has no 'type'", "Send {\"type\": \"hello\" | \"message\", ...}")
    return data


def session_from_hello(frame: dict[str, Any]) -> str:
    """The session id the page remembered, or a fresh one if it had none (or a malformed one)."""
    session = frame.get("session")
    if isinstance(session, str) and SESSION_RE.match(session):
        return session
    return new_session_id()


def inbound_message(frame: dict[str, Any], *, channel: str, session: str, limits: Limits) -> InboundMessage:
    """The :class:`InboundMessage` of a ``message`` frame, or :class:`FrameProblem`."""
    client_id = frame.get("id")
    if not isinstance(client_id, str) or not CLIENT_ID_RE.match(client_id):
        raise FrameProblem("the message has no valid 'id'", "Give every message a unique id of up to 64 letters/digits")
    text = frame.get("text")
    button = frame.get("button")
    if text is not None and not isinstance(text, str):
        raise FrameProblem("'text' must be a string", "Send the text as a string", client_id)
    if button is not None and not isinstance(button, str):
        raise FrameProblem("'button' must be a string", "Send the button's payload as a string", client_id)
    if text and len(text) > limits.max_text_chars:
        raise FrameProblem(f"the message is too long ({len(text)} characters, at most {limits.max_text_chars})",
                           "Split it into shorter messages", client_id)
    raw_attachments = frame.get("attachments") or []
    if not isinstance(raw_attachments, list) or len(raw_attachments) > 4:
        raise FrameProblem("'attachments' must be a list of at most 4 files", "Send fewer files at once", client_id)
    attachments = tuple(_attachment(a, client_id, limits) for a in raw_attachments)
    if not (text and text.strip()) and not button and not attachments:
        raise FrameProblem("the message is empty", "Type something, press a button or attach a file", client_id)
    # The session prefix keeps one browser's ids apart from another's in the channel's id space.
    return InboundMessage(channel=channel, sender=session, message_id=f"{session}:{client_id}",
                          text=text, button=button, attachments=attachments)


def _attachment(item: Any, client_id: str, limits: Limits) -> Attachment:
    if not isinstance(item, dict):
        raise FrameProblem("an attachment must be an object", "Send {type, mime, data_base64}", client_id)
    kind = item.get("type")
    if kind not in {k.value for k in AttachmentKind}:
        raise FrameProblem(f"unknown attachment type {kind!r}", "Use audio, image, video or file", client_id)
    mime = item.get("mime")
    if not isinstance(mime, str) or "/" not in mime:
        raise FrameProblem("the attachment has no MIME type", "Set mime, e.g. audio/webm", client_id)
    encoded = item.get("data_base64")
    if not isinstance(encoded, str) or not encoded:
        raise FrameProblem("the attachment has no data", "Send the file's bytes base64-encoded", client_id)
    limit = human_size(limits.max_upload_bytes)
    if len(encoded) * 3 // 4 > limits.max_upload_bytes + 2:
        raise FrameProblem(f"the file is too large (at most {limit})", "Send a shorter recording or a smaller file",
                           client_id)
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise FrameProblem("the attachment is not valid base64", "Encode the bytes with standard base64", client_id) from None
    if len(data) > limits.max_upload_bytes:
        raise FrameProblem(f"the file is too large (at most {limit})", "Send a shorter recording or a smaller file",
                           client_id)
    duration = item.get("duration_s")
    if isinstance(duration, bool) or not isinstance(duration, (int, float)) or duration < 0:
        duration = None
    filename = item.get("filename") if isinstance(item.get("filename"), str) else None
    return Attachment(kind=AttachmentKind(kind), mime=mime.strip().lower()[:100], data=data,
                      duration_s=float(duration) if duration is not None else None, filename=filename)


def human_size(size: int) -> str:
    """``5242880`` -> ``"5 MB"``, ``2048`` -> ``"2 KB"`` (binary units, as the page shows them)."""
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f}".removesuffix(".0") + " MB"
    return f"{max(1, round(size / 1024))} KB"


def messages_json(messages: Sequence[OutboundMessage]) -> list[dict[str, Any]]:
    """Outbound messages as the page renders them."""
    out: list[dict[str, Any]] = []
    for message in messages:
        item: dict[str, Any] = {
            "text": message.text,
            "buttons": [{"title": b.title, "payload": b.payload} for b in message.buttons],
        }
        if message.attachments:
            item["attachments"] = [
                {"type": a.kind.value, "mime": a.mime, "filename": a.filename, "url": a.url,
                 "data_base64": base64.b64encode(a.data).decode("ascii") if a.data is not None else None}
                for a in message.attachments
            ]
        out.append(item)
    return out
