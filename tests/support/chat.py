"""Reading the chat the way a customer does: what the last prompt asks them to say."""

from __future__ import annotations

import re
from typing import Any, Sequence

_SAY = re.compile(r"(?:say|di'):\s*((?:\d\s?){3,})", re.IGNORECASE)


def prompted_digits(replies: Sequence[dict[str, Any]] | str) -> str:
    """The digits the latest prompt shows ("say: 4 7 2 9" -> "4729"); fails when no prompt asks for digits."""
    texts = [replies] if isinstance(replies, str) else [r.get("text", "") for r in replies]
    for text in reversed(texts):
        found = _SAY.findall(text)
        if found:
            return found[-1].replace(" ", "")
    raise AssertionError(f"no prompt with digits to say in {texts!r}")


def all_text(replies: Sequence[dict[str, Any]]) -> str:
    """Every reply's text joined (to look for words or the euro sign)."""
    return "\n".join(r.get("text", "") for r in replies)


def buttons(replies: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    """(title, payload) of every button offered."""
    return [(b["title"], b["payload"]) for r in replies for b in r.get("buttons", [])]
