"""The one message model every channel, bot and authenticator speaks.

Channels translate their wire format to :class:`InboundMessage` and render
:class:`OutboundMessage` in their own idiom (buttons where they exist, a numbered
menu where they don't). Everything here is immutable and JSON-serialisable through
:func:`to_json` / :func:`from_json` so it can be persisted and passed between workers.
"""

from __future__ import annotations

import base64
import enum
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Mapping


class AttachmentKind(str, enum.Enum):
    AUDIO = "audio"
    IMAGE = "image"
    VIDEO = "video"
    FILE = "file"


@dataclass(frozen=True)
class Attachment:
    """Media sent with a message.

    Either ``data`` (bytes already received) or ``url`` (which the channel plugin knows
    how to fetch, e.g. a WhatsApp media id URL) is set. ``duration_s`` is known for some
    voice notes (Telegram sends it, browsers can measure it) and ``None`` otherwise.
    """

    kind: AttachmentKind
    mime: str
    data: bytes | None = None
    url: str | None = None
    duration_s: float | None = None
    filename: str | None = None

    @property
    def is_voice_note(self) -> bool:
        return self.kind is AttachmentKind.AUDIO


@dataclass(frozen=True)
class Button:
    """A choice offered to the customer. ``payload`` comes back in :attr:`InboundMessage.button`."""

    title: str
    payload: str


@dataclass(frozen=True)
class Template:
    """A named message template with customer variables, e.g. ``Hello {first_name}``.

    Templates live in YAML; the core fills ``variables`` from the CRM profile and the bot.
    """

    name: str
    variables: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class InboundMessage:
    """One message from a customer, as a channel received it.

    ``channel`` is the channel plugin's name, ``sender`` the customer's id on that channel
    (phone number, chat id, web session id) and ``message_id`` the channel's unique id for
    this delivery: a second delivery with the same id is a duplicate and is answered once.
    """

    channel: str
    sender: str
    message_id: str
    text: str | None = None
    button: str | None = None
    attachments: tuple[Attachment, ...] = ()
    received_at: datetime | None = None

    @property
    def audio(self) -> Attachment | None:
        """The first voice note attached, if any."""
        return next((a for a in self.attachments if a.is_voice_note), None)


@dataclass(frozen=True)
class OutboundMessage:
    """One message to a customer. Keep ``text`` short: it is read on a phone."""

    text: str = ""
    buttons: tuple[Button, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    template: Template | None = None


def to_json(message: InboundMessage | OutboundMessage) -> dict[str, Any]:
    """A JSON-safe dict of ``message`` (bytes as base64, datetimes as ISO 8601)."""

    def encode(value: Any) -> Any:
        if isinstance(value, bytes):
            return {"$b64": base64.b64encode(value).decode("ascii")}
        if isinstance(value, datetime):
            return {"$dt": value.isoformat()}
        if isinstance(value, enum.Enum):
            return value.value
        if isinstance(value, dict):
            return {k: encode(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [encode(v) for v in value]
        return value

    return encode(asdict(message))


def outbound_from_json(data: Mapping[str, Any]) -> OutboundMessage:
    """Inverse of :func:`to_json` for outbound messages."""
    return OutboundMessage(
        text=data.get("text", ""),
        buttons=tuple(Button(**b) for b in data.get("buttons", ())),
        attachments=tuple(_attachment(a) for a in data.get("attachments", ())),
        template=Template(**data["template"]) if data.get("template") else None,
    )


def inbound_from_json(data: Mapping[str, Any]) -> InboundMessage:
    """Inverse of :func:`to_json` for inbound messages."""
    received = data.get("received_at")
    return InboundMessage(
        channel=data["channel"],
        sender=data["sender"],
        message_id=data["message_id"],
        text=data.get("text"),
        button=data.get("button"),
        attachments=tuple(_attachment(a) for a in data.get("attachments", ())),
        received_at=datetime.fromisoformat(received["$dt"]) if received else None,
    )


def _attachment(data: Mapping[str, Any]) -> Attachment:
    raw = data.get("data")
    return Attachment(
        kind=AttachmentKind(data["kind"]),
        mime=data["mime"],
        data=base64.b64decode(raw["$b64"]) if raw else None,
        url=data.get("url"),
        duration_s=data.get("duration_s"),
        filename=data.get("filename"),
    )
