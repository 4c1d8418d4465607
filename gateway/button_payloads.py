"""Button payloads that fit a vendor's id limit (WhatsApp row ids, Telegram ``callback_data``).

A payload that fits is sent as it is (so a button keeps working across restarts); a longer
one is replaced by a short digest remembered in memory. A digest this process no longer
knows is answered with the button's title as text, which bots match like typed words.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

_PREFIX = "vg#"


class PayloadCodec:
    """Maps payloads to ids of at most ``limit`` bytes (UTF-8) and back."""

    def __init__(self, limit: int, capacity: int = 10_000) -> None:
        self._limit = limit
        self._long: OrderedDict[str, str] = OrderedDict()
        self._capacity = capacity

    def encode(self, payload: str) -> str:
        if len(payload.encode("utf-8")) <= self._limit and not payload.startswith(_PREFIX):
            return payload
        key = _PREFIX + hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]
        self._long[key] = payload
        self._long.move_to_end(key)
        if len(self._long) > self._capacity:
            self._long.popitem(last=False)
        return key

    def decode(self, button_id: str) -> str | None:
        """The payload for ``button_id``, or ``None`` for a digest this process has forgotten."""
        if not button_id.startswith(_PREFIX):
            return button_id
        return self._long.get(button_id)

    def pressed(self, button_id: str | None, title: str | None, text: str | None) -> tuple[str | None, str | None]:
        """``(text, button)`` of an incoming message that may be a button press: the decoded payload as the button,
        or, for a digest this process has forgotten, the button's title as the text (bots match it like typed
        words); a message that is no press keeps its ``text``."""
        if button_id is None:
            return text, None
        button = self.decode(button_id)
        return (text, button) if button is not None else (title, None)
