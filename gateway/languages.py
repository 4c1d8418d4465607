"""The customer's language, as every part of the core reads it: one place for the rule and the tag matching.

A bot records the language the customer writes in as ``conversation.context["language"]``; otherwise the CRM
profile's language applies. Tags are compared by their primary subtag (``it-IT`` matches ``it``).
"""

from __future__ import annotations

from typing import Any, Mapping

LANGUAGE_KEY = "language"  # conversation.context key a bot sets to the language the customer writes in


def primary_language(tag: str | None) -> str | None:
    """The primary subtag of a language tag, lower case (``"it-IT"`` -> ``"it"``); ``None`` if empty.

    >>> primary_language("pt_BR"), primary_language(" EN "), primary_language(None)
    ('pt', 'en', None)
    """
    if not tag or not tag.strip():
        return None
    return tag.strip().replace("_", "-").split("-", 1)[0].lower()


def conversation_language(context: Mapping[str, Any] | None, profile_language: Any) -> str | None:
    """The conversation's language (``context["language"]``, set by a bot), else the CRM profile's; ``None`` if
    neither is a non-empty string."""
    spoken = (context or {}).get(LANGUAGE_KEY)
    if isinstance(spoken, str) and spoken:
        return spoken
    return profile_language if isinstance(profile_language, str) and profile_language else None
