"""Fitting outbound messages to what a channel can show.

A channel without buttons (SMS, a plain webhook) gets the choices as a numbered list in the
text, and the customer answers with the digit. :func:`render` returns the numbered options it
offered; the pipeline keeps them in the conversation context (``offered_options``) and
:func:`answer_to_option` maps the customer's digit back to the button's payload, so bots only
ever see button payloads, whatever the channel.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Mapping, Sequence

from gateway.components import ChannelCapabilities
from gateway.messages import Button, OutboundMessage

OPTIONS_KEY = "offered_options"  # conversation.context key: {"1": payload, ...}


def render(
    messages: Sequence[OutboundMessage], capabilities: ChannelCapabilities
) -> tuple[list[OutboundMessage], dict[str, str] | None]:
    """Messages fitted to ``capabilities`` and the numbered options offered (``None`` if none).

    Buttons stay buttons where the channel has them and they fit (count, title length);
    otherwise they become ``1. Title`` lines. Text longer than the channel's limit is split.
    """
    rendered: list[OutboundMessage] = []
    options: dict[str, str] | None = None
    for message in messages:
        buttons = message.buttons
        if buttons and not _fits(buttons, capabilities):
            options = {str(i): b.payload for i, b in enumerate(buttons, start=1)}
            menu = "\n".join(f"{i}. {b.title}" for i, b in enumerate(buttons, start=1))
            text = f"{message.text}\n{menu}" if message.text else menu
            message = replace(message, text=text, buttons=())
        elif buttons:
            options = None  # the latest message's real buttons supersede an earlier menu
        rendered.extend(_split(message, capabilities.max_text_length))
    return rendered, options


def answer_to_option(text: str | None, options: Mapping[str, str] | None) -> str | None:
    """The payload of the numbered option the customer typed (``"2"``, ``" 2. "``), or ``None``."""
    if not text or not options:
        return None
    answer = text.strip().rstrip(".)")
    return options.get(answer)


def _fits(buttons: Sequence[Button], capabilities: ChannelCapabilities) -> bool:
    return (
        capabilities.buttons
        and len(buttons) <= capabilities.max_buttons
        and all(len(b.title) <= capabilities.max_button_title for b in buttons)
    )


def split_text(text: str, limit: int) -> list[str]:
    """``text`` in parts of at most ``limit`` characters, cut at a line break, else a space, else hard."""
    parts: list[str] = []
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit)
        if cut <= 0:
            cut = text.rfind(" ", 0, limit)
        if cut <= 0:
            cut = limit
        parts.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    parts.append(text)
    return parts


def _split(message: OutboundMessage, limit: int) -> list[OutboundMessage]:
    text = message.text
    if len(text) <= limit or limit <= 0:
        return [message]
    parts = split_text(text, limit)
    # Buttons and attachments go with the last part, after the customer read the whole text.
    return [OutboundMessage(text=p) for p in parts[:-1]] + [replace(message, text=parts[-1])]
