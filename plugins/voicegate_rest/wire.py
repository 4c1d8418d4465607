"""The REST channel's JSON wire format: parsing requests and rendering replies.

Request body (``POST /channels/rest/messages``)::

    {"sender": "alice", "message_id": "m-1", "text": "hi", "button": "hours",
     "attachments": [{"type": "audio", "mime": "audio/ogg", "data_base64": "..."}]}

Every problem becomes a :class:`RequestProblem` that says what was wrong and what to do.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from gateway import json_codec
from gateway.messages import Attachment, AttachmentKind, InboundMessage, OutboundMessage

_FIELDS = ("sender", "message_id", "text", "button", "attachments")
_ATTACHMENT_FIELDS = ("type", "mime", "data_base64", "filename", "duration_s")
_MAX_ID_CHARS = 255  # the database columns for senders and message ids hold 255


@dataclass(frozen=True)
class Limits:
    """Size limits applied while parsing (from :class:`voicegate_rest.settings.RestSettings`)."""

    max_attachment_bytes: int
    max_attachments: int
    max_text_chars: int


class RequestProblem(Exception):
    """A request the channel refuses: HTTP ``status``, ``error`` (what) and ``hint`` (what to do)."""

    def __init__(self, status: int, error: str, hint: str) -> None:
        super().__init__(error)
        self.status, self.error, self.hint = status, error, hint

    def body(self) -> dict[str, str]:
        return {"error": self.error, "hint": self.hint}


def parse_message(raw: bytes, channel: str, limits: Limits) -> InboundMessage:
    """The :class:`InboundMessage` in ``raw`` (the request body), or :class:`RequestProblem`."""
    try:
        data = json_codec.loads(raw.decode("utf-8"), strict=True)  # JSON on the wire is UTF-8 (RFC 8259): no guessing
    except UnicodeDecodeError:
        raise RequestProblem(400, "the body is not UTF-8 text", "Send the JSON encoded as UTF-8") from None
    except json_codec.JSONDecodeError as exc:
        raise RequestProblem(
            400, f"the body is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})",
            "Send one JSON object, e.g. {\"sender\": \"alice\", \"message_id\": \"m-1\", \"text\": \"hi\"}",
        ) from None
    except json_codec.UnsupportedJSON as exc:
        raise RequestProblem(
            400, f"the body is JSON the gateway cannot store ({exc})",
            "Escape only whole characters (no lone \\ud800-\\udfff surrogates), keep numbers and nesting small",
        ) from None
    if not isinstance(data, dict):
        raise RequestProblem(400, f"the body must be a JSON object, found {_json_type(data)}",
                             "Wrap the fields in {...}")
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise RequestProblem(400, f"unknown field(s): {', '.join(unknown)}",
                             f"Remove them or fix the spelling; allowed fields: {', '.join(_FIELDS)}")
    sender = _identifier(data, "sender", "the customer's id on this channel, e.g. \"alice\"")
    message_id = _identifier(data, "message_id", "a unique id per message; resend the same id only to retry")
    text = _optional_str(data, "text")
    if text is not None and len(text) > limits.max_text_chars:
        raise RequestProblem(413, f"'text' has {len(text)} characters; the limit is {limits.max_text_chars}",
                             "Split the text into several messages")
    button = _optional_str(data, "button")
    attachments = _attachments(data.get("attachments"), limits)
    if not (text and text.strip()) and not button and not attachments:
        raise RequestProblem(400, "the message is empty",
                             "Send at least one of 'text', 'button' or 'attachments'")
    return InboundMessage(channel=channel, sender=sender, message_id=message_id, text=text,
                          button=button, attachments=attachments)


def reply_json(messages: Sequence[OutboundMessage]) -> dict[str, Any]:
    """The ``200`` response body: ``{"replies": [{"text", "buttons": [{"title", "payload"}]}]}``."""
    return {"replies": [message_json(m) for m in messages]}


def message_json(message: OutboundMessage) -> dict[str, Any]:
    """One outbound message on the wire; ``attachments`` only when the message has some."""
    out: dict[str, Any] = {
        "text": message.text,
        "buttons": [{"title": b.title, "payload": b.payload} for b in message.buttons],
    }
    if message.attachments:
        out["attachments"] = [_attachment_json(a) for a in message.attachments]
    return out


def _attachment_json(attachment: Attachment) -> dict[str, Any]:
    out: dict[str, Any] = {"type": attachment.kind.value, "mime": attachment.mime}
    if attachment.data is not None:
        out["data_base64"] = base64.b64encode(attachment.data).decode("ascii")
    if attachment.url is not None:
        out["url"] = attachment.url
    if attachment.filename:
        out["filename"] = attachment.filename
    return out


def _identifier(data: Mapping[str, Any], key: str, what: str) -> str:
    value = data.get(key)
    if value is None:
        raise RequestProblem(400, f"'{key}' is missing", f"Add '{key}': {what}")
    if not isinstance(value, str) or not value.strip():
        raise RequestProblem(400, f"'{key}' must be a non-empty string, found {_json_type(value)}",
                             f"Set '{key}' to {what}")
    if len(value) > _MAX_ID_CHARS:
        raise RequestProblem(400, f"'{key}' is longer than {_MAX_ID_CHARS} characters", f"Use a shorter '{key}'")
    return value


def _optional_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None or isinstance(value, str):
        return value
    raise RequestProblem(400, f"'{key}' must be a string, found {_json_type(value)}",
                         f"Send '{key}' as a JSON string or leave it out")


def _attachments(value: Any, limits: Limits) -> tuple[Attachment, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise RequestProblem(400, f"'attachments' must be a list, found {_json_type(value)}",
                             "Send \"attachments\": [{\"type\": \"audio\", \"mime\": \"audio/ogg\", \"data_base64\": \"...\"}]")
    if len(value) > limits.max_attachments:
        raise RequestProblem(413, f"{len(value)} attachments; the limit is {limits.max_attachments}",
                             "Send the files in several messages")
    return tuple(_attachment(item, i, limits) for i, item in enumerate(value))


def _attachment(item: Any, index: int, limits: Limits) -> Attachment:
    where = f"attachments[{index}]"
    if not isinstance(item, dict):
        raise RequestProblem(400, f"{where} must be an object, found {_json_type(item)}",
                             "Each attachment is {\"type\", \"mime\", \"data_base64\"}")
    unknown = sorted(set(item) - set(_ATTACHMENT_FIELDS))
    if unknown:
        raise RequestProblem(400, f"{where} has unknown field(s): {', '.join(unknown)}",
                             f"Allowed fields: {', '.join(_ATTACHMENT_FIELDS)}")
    kinds = [k.value for k in AttachmentKind]
    kind = item.get("type")
    if kind not in kinds:
        raise RequestProblem(400, f"{where}.type is {kind!r}", f"Use one of: {', '.join(kinds)}")
    mime = item.get("mime")
    if not isinstance(mime, str) or "/" not in mime:
        raise RequestProblem(400, f"{where}.mime is missing or not a MIME type", "Set it, e.g. \"audio/ogg\"")
    encoded = item.get("data_base64")
    if not isinstance(encoded, str) or not encoded:
        raise RequestProblem(400, f"{where}.data_base64 is missing", "Send the file's bytes base64-encoded")
    # Check the size before decoding so an oversized file costs no memory for its bytes.
    if len(encoded) * 3 // 4 - encoded.count("=") > limits.max_attachment_bytes + 2:
        raise RequestProblem(413, f"{where} is larger than {limits.max_attachment_bytes} bytes",
                             "Send a shorter recording or a smaller file")
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise RequestProblem(400, f"{where}.data_base64 is not valid base64",
                             "Encode the bytes with standard base64 (A-Z a-z 0-9 + /, '=' padding), no line breaks") from None
    if len(data) > limits.max_attachment_bytes:
        raise RequestProblem(413, f"{where} is {len(data)} bytes; the limit is {limits.max_attachment_bytes}",
                             "Send a shorter recording or a smaller file")
    if not data:
        raise RequestProblem(400, f"{where} is empty", "Attach a non-empty file")
    filename = item.get("filename")
    duration = item.get("duration_s")
    if filename is not None and not isinstance(filename, str):
        raise RequestProblem(400, f"{where}.filename must be a string", "Send the name as a string or leave it out")
    if duration is not None and (isinstance(duration, bool) or not isinstance(duration, (int, float)) or duration < 0):
        raise RequestProblem(400, f"{where}.duration_s must be a non-negative number", "Send seconds, e.g. 3.2, or leave it out")
    return Attachment(kind=AttachmentKind(kind), mime=mime.strip().lower(), data=data, filename=filename,
                      duration_s=float(duration) if duration is not None else None)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list",
            dict: "an object"}.get(type(value), type(value).__name__)
