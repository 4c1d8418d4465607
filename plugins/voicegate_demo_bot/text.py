"""Text normalisation for matching: lower case, accents folded, words split, crude stems.

>>> tokens("Qual è l'orario d'apertura?")
['qual', 'e', 'l', 'orario', 'd', 'apertura']
>>> same_word("operatore", "operatori"), same_word("hour", "house")
(True, False)
"""

from __future__ import annotations

import re
import unicodedata

_WORD = re.compile(r"[a-z0-9]+")
_STEM = 5  # words of at least this length match on their first _STEM letters (orari/orario, balance/balances)


def fold(text: str) -> str:
    """Lower case without accents: "Però È" -> "pero e"."""
    if text.isascii():  # most messages: nothing to decompose, and casefold() is lower() for ASCII
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def tokens(text: str) -> list[str]:
    """The folded words of ``text``."""
    return _WORD.findall(fold(text))


def stem(word: str) -> str | None:
    """The stem :func:`same_word` compares, or ``None`` for a word too short to have one."""
    return word[:_STEM] if len(word) >= _STEM else None


def same_word(a: str, b: str) -> bool:
    """Equal, or long enough and sharing a stem (a poor man's stemmer that works for it/en)."""
    if a == b:
        return True
    return len(a) >= _STEM and len(b) >= _STEM and a[:_STEM] == b[:_STEM]
