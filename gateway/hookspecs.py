"""Every hook a VoiceGate plugin can implement, with what it receives and must return.

Two kinds of hook:

* **Register hooks** (``register_*``) run once at start-up, synchronously. A plugin hands
  :class:`gateway.components.ComponentSpec` objects to the ``register`` callback; the core
  owns validation, settings and duplicate-name checks. Which registered components are
  used, in which order, with which settings, comes from YAML, never from plugin load order.
* **Notification hooks** (``on_*``) tell plugins what happened. An implementation may be a
  plain function or ``async def``; the core calls each implementation separately, awaits
  it with a timeout, and logs (with the plugin's name) and ignores any failure, so one
  broken plugin never stops delivery to the customer. Their return values are ignored.

Plugins are loaded from the ``voicegate`` entry-point group — built-in plugins too.
"""

from __future__ import annotations

from typing import Any, Awaitable

import pluggy

from gateway.components import Authenticator, Bot, Channel, CrmBackend, Register
from gateway.events import (
    ConversationClosed,
    HandoffRequested,
    MessageReceived,
    MessageSent,
    VerificationFinished,
)

PROJECT_NAME = "voicegate"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


# --------------------------------------------------------------------------- register hooks


@hookspec
def register_channels(register: Register[Channel]) -> None:
    """Register channel components (web chat, WhatsApp, SMS ...).

    Called once at start-up. Call ``register(ComponentSpec(name, factory, settings_model))``
    for each channel this plugin provides. The channel is used only if the YAML
    ``channels:`` section names it; its settings are validated against ``settings_model``.
    """


@hookspec
def register_bots(register: Register[Bot]) -> None:
    """Register bot components (virtual assistants).

    Called once at start-up. Bots listed in the YAML ``bots:`` section are asked in that
    order for every message of a conversation held by the bot; the first non-``None``
    :class:`gateway.components.BotReply` wins.
    """


@hookspec
def register_crm_backends(register: Register[CrmBackend]) -> None:
    """Register CRM backends that enrich customers with a profile and history.

    Called once at start-up. Backends listed in the YAML ``crm:`` section are queried in
    that order; earlier backends win on conflicting fields.
    """


@hookspec
def register_authenticators(register: Register[Authenticator]) -> None:
    """Register authenticators that verify a customer before a sensitive intent.

    Called once at start-up. The YAML ``authentication.use`` key names the authenticator
    the sensitive-intent gate asks.
    """


# --------------------------------------------------------------------------- notifications


@hookspec
def on_message_received(event: MessageReceived) -> Awaitable[None] | None:
    """A new (non-duplicate) inbound message was committed to the database.

    Runs after the pipeline answered; may be async. Failures are logged and ignored.
    """


@hookspec
def on_message_sent(event: MessageSent) -> Awaitable[None] | None:
    """An outbound message was committed and handed to its channel. May be async."""


@hookspec
def on_handoff(event: HandoffRequested) -> Awaitable[None] | None:
    """A conversation was handed to a live agent (``event.agent_id`` may be ``None`` while
    queued). May be async."""


@hookspec
def on_verification_result(event: VerificationFinished) -> Awaitable[None] | None:
    """An authenticator finished a verification (verified, failed, locked or declined).

    The event carries the decision and reason only — never audio, embeddings or scores.
    May be async.
    """


@hookspec
def on_conversation_closed(event: ConversationClosed) -> Awaitable[None] | None:
    """A conversation was closed, by a bot (``BotReply(close=True)``) or by an agent through the desk's API.

    Nothing closes a conversation for inactivity. May be async.
    """


ALL_HOOKS: tuple[Any, ...] = (
    register_channels,
    register_bots,
    register_crm_backends,
    register_authenticators,
    on_message_received,
    on_message_sent,
    on_handoff,
    on_verification_result,
    on_conversation_closed,
)
