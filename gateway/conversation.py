"""Conversation and customer views handed to plugins.

The state of a conversation lives in the database, never in process memory: any gateway
instance can pick up the next message. Plugins get read-only snapshots and return changes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping


class ConversationState(str, enum.Enum):
    """Who holds the conversation right now."""

    WITH_BOT = "with_bot"
    AWAITING_VERIFICATION = "awaiting_verification"
    WITH_AGENT = "with_agent"
    CLOSED = "closed"


@dataclass(frozen=True)
class CustomerProfile:
    """What CRM backends know about a customer; merged in the configured CRM order.

    ``attributes`` carries backend-specific facts (account number, tier, balance ...);
    bots read them, agents see them.
    """

    display_name: str | None = None
    language: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    source: str | None = None


@dataclass(frozen=True)
class CustomerView:
    """One customer, with every channel identity the gateway has linked to them."""

    id: str
    identities: tuple[tuple[str, str], ...]  # (channel, sender)
    profile: CustomerProfile = CustomerProfile()


@dataclass(frozen=True)
class ConversationView:
    """A snapshot of one conversation as the pipeline sees it at the start of a turn."""

    id: str
    customer_id: str
    channel: str
    state: ConversationState
    context: Mapping[str, Any]
    verified_until: datetime | None
    assigned_agent: str | None = None

    def is_verified(self, now: datetime) -> bool:
        """True while an authenticator's verification is still within its TTL."""
        return self.verified_until is not None and now < self.verified_until
