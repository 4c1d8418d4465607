"""Typed contracts for the objects plugins register.

Register hooks (see :mod:`gateway.hookspecs`) hand :class:`ComponentSpec` objects to a
``register`` callback. The core validates each component's settings from YAML with the
spec's pydantic model, then calls ``factory(settings, context)`` to build it. The built
objects satisfy the protocols below; their I/O methods are ``async`` and must never block
the event loop (run CPU work in an executor).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Generic, Mapping, Protocol, Sequence, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict

from gateway.conversation import ConversationView, CustomerProfile, CustomerView
from gateway.messages import InboundMessage, OutboundMessage

if TYPE_CHECKING:  # pragma: no cover - imports for type checkers only
    import aiohttp
    from aiohttp import web
    from sqlalchemy.ext.asyncio import AsyncEngine


class PluginSettings(BaseModel):
    """Base for every plugin's settings model: frozen, and unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoSettings(PluginSettings):
    """For components that take no settings."""


T = TypeVar("T")


@dataclass(frozen=True)
class ComponentSpec(Generic[T]):
    """What a register hook hands to the core.

    ``name`` is the key operators use in YAML; two components of one kind with the same
    name are a start-up error.
    """

    name: str
    factory: Callable[[Any, "GatewayContext"], T]
    settings_model: type[PluginSettings] = NoSettings
    description: str = ""


class Register(Protocol[T]):
    """The callback a register hook receives."""

    def __call__(self, spec: ComponentSpec[T]) -> None: ...


# --------------------------------------------------------------------------- context


@dataclass(frozen=True, slots=True)
class Received:
    """What :meth:`Inbox.receive_turn` returns: the replies, and whether the delivery was a duplicate."""

    replies: list[OutboundMessage]
    duplicate: bool = False  # the message id was stored before: ``replies`` are those stored then


class Inbox(Protocol):
    """The pipeline's entry point, which channels call for every inbound delivery."""

    async def receive(self, message: InboundMessage) -> list[OutboundMessage]:
        """Persist ``message`` (idempotently), run it through the pipeline, return the replies.

        Returns the replies to send back in the same request; a duplicate delivery returns
        the replies stored the first time. Raises :class:`gateway.errors.InboundRejected`
        for input that cannot be processed.
        """
        ...

    async def receive_turn(self, message: InboundMessage) -> Received:
        """As :meth:`receive`, and says whether the delivery was a duplicate.

        For channels that send replies themselves (vendor webhooks answered at once): a
        duplicate's replies were sent the first time, so such a channel skips them. The
        check uses the stored message ids, so it holds across restarts and instances.
        """
        ...


@runtime_checkable
class GatewayContext(Protocol):
    """What the core gives to component factories."""

    inbox: Inbox
    http: "aiohttp.ClientSession"  # one shared session; never create one per request
    db_engine: "AsyncEngine"  # the gateway's database, for plugins that persist (e.g. voiceprints)
    config_dir: str  # directory of the main YAML, to resolve relative paths
    data_dir: str  # writable directory for plugin state files
    # coordination.redis_url, or None for a single instance: components that hand work to the
    # instance holding a customer's connection (or wake its long polls) publish there.
    redis_url: str | None

    def now(self) -> datetime: ...


# --------------------------------------------------------------------------- channels


@dataclass(frozen=True)
class ChannelCapabilities:
    """What a channel can show; the core degrades messages to fit (e.g. numbered menus)."""

    buttons: bool = True
    max_buttons: int = 3
    max_button_title: int = 20
    max_text_length: int = 4096
    audio_in: bool = True


@runtime_checkable
class Channel(Protocol):
    """A way customers reach the gateway (web chat, WhatsApp, SMS ...)."""

    name: str
    capabilities: ChannelCapabilities

    def routes(self) -> Sequence["web.AbstractRouteDef"]:
        """aiohttp routes, mounted under ``/channels/<name>``; called once at start-up."""
        ...

    async def deliver(self, recipient: str, messages: Sequence[OutboundMessage]) -> None:
        """Push messages to ``recipient`` outside a request/response cycle (agent replies,
        acknowledgements). Raise on failure; the core records it."""
        ...

    async def close(self) -> None:
        """Release connections at shut-down."""
        ...


# --------------------------------------------------------------------------- bots


@dataclass(frozen=True)
class Intent:
    """What the bot recognised. A ``sensitive`` intent runs only for a verified customer."""

    name: str
    sensitive: bool = False
    confidence: float = 1.0
    # A core action the pipeline performs for this intent. ``"forget_verification"``: the
    # configured authenticator deletes what it stores for the customer (e.g. the voiceprint),
    # and the pipeline appends a confirmation to the bot's messages.
    action: str | None = None


@dataclass(frozen=True)
class Handoff:
    """A request to pass the conversation to a live agent with ``skill``."""

    reason: str
    skill: str | None = None


@dataclass(frozen=True)
class BotTurn:
    """Everything a bot sees for one inbound message.

    ``resumed_intent`` is set when the core replays a sensitive intent after the customer
    was verified: the bot should now fulfil it.
    """

    message: InboundMessage
    conversation: ConversationView
    customer: CustomerView
    verified: bool
    resumed_intent: str | None = None


@dataclass(frozen=True)
class BotReply:
    """A bot's answer. For a sensitive intent of an unverified customer the core discards
    ``messages``, stores the intent, and asks the authenticator instead."""

    messages: tuple[OutboundMessage, ...] = ()
    intent: Intent | None = None
    handoff: Handoff | None = None
    context: Mapping[str, Any] = field(default_factory=dict)  # merged into the conversation context
    close: bool = False


@runtime_checkable
class Bot(Protocol):
    """A virtual assistant. Bots are asked in the YAML order; the first reply wins."""

    name: str

    async def handle(self, turn: BotTurn) -> BotReply | None:
        """Answer ``turn`` or return ``None`` to let the next bot try."""
        ...


# --------------------------------------------------------------------------- CRM


@runtime_checkable
class CrmBackend(Protocol):
    """A source of customer context (profile, history) for bots and agents."""

    name: str

    async def lookup(self, customer: CustomerView) -> CustomerProfile | None:
        """Return what this backend knows about ``customer``, or ``None``."""
        ...


# --------------------------------------------------------------------------- authentication


class AuthStatus(str, enum.Enum):
    PENDING = "pending"  # waiting for the customer (consent, a voice note ...)
    VERIFIED = "verified"
    FAILED = "failed"  # could not verify; ``handoff`` says whether to pass to an agent
    LOCKED = "locked"
    DECLINED = "declined"  # the customer said no; offer an agent, never block


@dataclass(frozen=True)
class AuthSession:
    """One verification in progress. ``state`` is the authenticator's own, persisted by the
    core in the conversation between messages (authenticators keep nothing in memory)."""

    customer_id: str
    conversation_id: str
    channel: str
    intent: str
    language: str | None
    state: Mapping[str, Any]


@dataclass(frozen=True)
class AuthStep:
    """An authenticator's answer to one step."""

    status: AuthStatus
    messages: tuple[OutboundMessage, ...] = ()
    state: Mapping[str, Any] = field(default_factory=dict)
    handoff: bool = False
    reason: str = ""
    verified_ttl_s: int | None = None


@runtime_checkable
class Authenticator(Protocol):
    """Verifies a customer before a sensitive step."""

    name: str

    async def start(self, session: AuthSession) -> AuthStep:
        """Begin verifying (ask for consent, a voice note ...); usually returns PENDING."""
        ...

    async def handle(self, session: AuthSession, message: InboundMessage) -> AuthStep:
        """Process the customer's next message while verification is pending."""
        ...

    async def forget(self, customer_id: str) -> bool:
        """Delete everything stored for ``customer_id``; True if something was deleted."""
        ...

