"""One turn of a conversation: what the pipeline read, decided and will write.

A :class:`Turn` collects the replies (with their authors), the events and the notifications
of one inbound message, so that everything is written in one :class:`gateway.db.store.WriteSet`
and every notification fires only after that commit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Iterable

from gateway.components import Handoff
from gateway.conversation import ConversationView, CustomerProfile, CustomerView
from gateway.db.store import ConversationRow, WriteSet, event_row
from gateway.languages import conversation_language
from gateway.messages import InboundMessage, OutboundMessage



@dataclass
class Turn:
    """Mutable working state of one turn (never shared between turns)."""

    message: InboundMessage  # as the bots see it (a typed digit already mapped to its button)
    conversation: ConversationRow
    customer_id: str
    profile: CustomerProfile
    now: datetime
    write_set: WriteSet = field(default_factory=WriteSet)
    replies: list[tuple[OutboundMessage, str]] = field(default_factory=list)  # (message, author)
    notifications: list[tuple[str, object]] = field(default_factory=list)  # (hook name, event)
    handoff: Handoff | None = None
    close_reason: str | None = None

    def add(self, messages: Iterable[OutboundMessage], author: str) -> None:
        """Queue replies to the customer, attributed to ``author`` (``bot:<name>``, ``auth:<name>``, ``system``)."""
        self.replies.extend((m, author) for m in messages)

    def event(self, type_: str, **data: Any) -> None:
        """Record a conversation event (stored with the turn; never biometric data)."""
        self.write_set.events.append(event_row(self.conversation.id, type_, data, self.now))

    def notify(self, hook_name: str, event: object) -> None:
        """Queue a notification hook call for after the commit."""
        self.notifications.append((hook_name, event))

    @property
    def language(self) -> str | None:
        """The conversation's language (``context["language"]``, set by a bot) or else the CRM profile's."""
        return conversation_language(self.conversation.context, self.profile.language if self.profile else None)

    def conversation_view(self) -> ConversationView:
        conv = self.conversation
        return conversation_view(conv)

    def customer_view(self) -> CustomerView:
        return CustomerView(
            id=self.customer_id,
            identities=((self.message.channel, self.message.sender),),
            profile=self.profile,
        )


def conversation_view(conv: ConversationRow) -> ConversationView:
    """A read-only snapshot of ``conv`` for plugins."""
    return ConversationView(
        id=conv.id,
        customer_id=conv.customer_id,
        channel=conv.channel,
        state=conv.state,
        context=MappingProxyType(dict(conv.context)),
        verified_until=conv.verified_until,
        assigned_agent=conv.assigned_agent,
    )
