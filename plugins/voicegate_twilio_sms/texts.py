"""Fitting replies into SMS: plain punctuation, joining short messages, a cap per answer, TwiML."""

from __future__ import annotations

import logging
from typing import Sequence
from xml.etree import ElementTree

log = logging.getLogger(__name__)

# Characters outside the GSM 03.38 alphabet that bots and templates commonly use. One of them
# turns a whole SMS into UCS-2: 70 characters per segment instead of 160.
_PLAIN = str.maketrans({"‘": "'", "’": "'", "‚": "'", "“": '"', "”": '"', "„": '"', "–": "-", "—": "-",
                        "…": "...", "\u00a0": " ", "•": "-", "«": '"', "»": '"'})
_GAP = "..."


def plain(text: str) -> str:
    """``text`` with typographic punctuation replaced by GSM-alphabet equivalents."""
    return text.translate(_PLAIN)


def pack(texts: Sequence[str], *, max_chars: int, max_messages: int) -> list[str]:
    """SMS bodies for ``texts`` (each already at most ``max_chars``; the core splits longer ones).

    Consecutive texts are joined with a blank line while they fit one SMS, so a short reply and
    its menu arrive together and in order. Beyond ``max_messages`` the middle is dropped and the
    last body kept: it ends the answer and holds any numbered choices.
    """
    bodies: list[str] = []
    for text in (t.strip() for t in texts):
        if not text:
            continue
        if bodies and len(bodies[-1]) + 2 + len(text) <= max_chars:
            bodies[-1] = f"{bodies[-1]}\n\n{text}"
        else:
            bodies.append(text[:max_chars])
    if len(bodies) <= max_messages:
        return bodies
    log.info("SMS answer of %d messages cut to %d (max_messages_per_reply)", len(bodies), max_messages)
    head = bodies[: max_messages - 1]
    if head:
        head[-1] = head[-1][: max_chars - len(_GAP) - 1].rstrip() + " " + _GAP
    return head + [bodies[-1]]


def twiml(bodies: Sequence[str], media: Sequence[Sequence[str]] = ()) -> bytes:
    """``<Response><Message>…</Message>…</Response>``; ``media[i]`` are URLs sent with body ``i``."""
    response = ElementTree.Element("Response")
    for index, body in enumerate(bodies):
        message = ElementTree.SubElement(response, "Message")
        urls = media[index] if index < len(media) else ()
        if urls:
            ElementTree.SubElement(message, "Body").text = body
            for url in urls:
                ElementTree.SubElement(message, "Media").text = url
        else:
            message.text = body
    return ElementTree.tostring(response, encoding="utf-8", xml_declaration=True)
