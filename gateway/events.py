"""Events passed to notification hooks. Frozen, small, and free of biometric data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gateway.components import AuthStatus
from gateway.messages import InboundMessage, OutboundMessage


@dataclass(frozen=True)
class MessageReceived:
    conversation_id: str
    customer_id: str
    message: InboundMessage
    at: datetime


@dataclass(frozen=True)
class MessageSent:
    conversation_id: str
    customer_id: str
    channel: str
    recipient: str
    message: OutboundMessage
    at: datetime


@dataclass(frozen=True)
class HandoffRequested:
    conversation_id: str
    customer_id: str
    channel: str
    reason: str
    skill: str | None
    agent_id: str | None
    at: datetime


@dataclass(frozen=True)
class VerificationFinished:
    conversation_id: str
    customer_id: str
    channel: str
    authenticator: str
    status: AuthStatus
    reason: str
    at: datetime


@dataclass(frozen=True)
class ConversationClosed:
    conversation_id: str
    customer_id: str
    reason: str
    at: datetime
