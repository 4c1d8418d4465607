"""The sensitive-intent gate: a sensitive intent proceeds only for a verified customer.

When a bot answers with ``Intent(sensitive=True)`` for an unverified customer, its messages
are discarded, the intent is stored as the conversation's ``pending_intent``, the state
becomes ``AWAITING_VERIFICATION`` and the configured authenticator starts. Its next messages
go to ``authenticator.handle``; its state between messages lives in
``conversation.context["auth"][<authenticator name>]`` (authenticators keep nothing in memory).
The outcome:

* VERIFIED: ``verified_until = now + ttl``, back to the bot, which is asked again with
  ``BotTurn(resumed_intent=<pending>, verified=True)``;
* FAILED with ``handoff`` or LOCKED: handed to a live agent in the same channel;
* FAILED without handoff or DECLINED: back to the bot (the authenticator's messages say what next).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Awaitable, Callable

from gateway.components import AuthSession, AuthStatus, AuthStep, Authenticator, Handoff, Intent
from gateway.conversation import ConversationState
from gateway.errors import GatewayError
from gateway.events import VerificationFinished
from gateway.languages import primary_language
from gateway.messages import InboundMessage, OutboundMessage
from gateway.turn import Turn

log = logging.getLogger(__name__)

# What the gate itself says, by the customer's language (``Turn.language``); English when there is no text for it.
TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "no_authenticator": ("Sorry, I can't verify who you are in this chat, so I can't help with that here. "
                             "Ask for an agent and a person will help you."),
        "auth_error": "Sorry, something went wrong while checking. Please try again in a moment.",
        "forgotten": "Done: I deleted the verification data stored for you.",
        "nothing_to_forget": "There was no verification data stored for you.",
    },
    "it": {
        "no_authenticator": ("Mi dispiace, in questa chat non posso verificare chi sei, quindi qui non posso aiutarti "
                             "con questo. Chiedi un operatore e una persona ti aiuterà."),
        "auth_error": "Mi dispiace, qualcosa è andato storto durante la verifica. Riprova tra poco.",
        "forgotten": "Fatto: ho cancellato i dati di verifica salvati per te.",
        "nothing_to_forget": "Non c'erano dati di verifica salvati per te.",
    },
}


def gate_text(key: str, language: str | None) -> str:
    """The gate's text ``key`` in ``language`` (``it-IT`` counts as ``it``), else in English."""
    return TEXTS.get(primary_language(language) or "en", TEXTS["en"])[key]

ResumeBots = Callable[[Turn, InboundMessage, str], Awaitable[None]]


class AuthGate:
    """Runs the configured authenticator for the pipeline."""

    def __init__(self, authenticator: Authenticator | None, *, verified_ttl_s: int, resume: ResumeBots) -> None:
        self.authenticator = authenticator
        self.verified_ttl_s = verified_ttl_s
        self._resume = resume

    async def start(self, turn: Turn, intent: Intent) -> None:
        """Hold the sensitive ``intent`` and start verifying the customer."""
        auth = self.authenticator
        if auth is None:
            turn.add([OutboundMessage(text=gate_text("no_authenticator", turn.language))], "system")
            return
        conv = turn.conversation
        conv.state = ConversationState.AWAITING_VERIFICATION
        conv.pending_intent = intent.name
        turn.event("verification_started", authenticator=auth.name, intent=intent.name)
        await self._step(turn, lambda session: auth.start(session), state={})

    async def handle(self, turn: Turn) -> None:
        """Pass the customer's message to the authenticator while verification is pending."""
        auth = self.authenticator
        conv = turn.conversation
        if auth is None:  # configuration changed while a verification was pending
            conv.state, conv.pending_intent = ConversationState.WITH_BOT, None
            turn.add([OutboundMessage(text=gate_text("no_authenticator", turn.language))], "system")
            return
        state = dict(conv.context.get("auth", {}).get(auth.name, {}))
        await self._step(turn, lambda session: auth.handle(session, turn.message), state=state)

    async def forget(self, turn: Turn, *, author: str = "customer", raise_errors: bool = False) -> bool:
        """The customer asked to delete their verification data (``Intent.action == "forget_verification"``), or
        ``author`` (an agent) did it at their request. Returns whether there was anything to delete. If the
        authenticator fails: with ``raise_errors`` a :class:`GatewayError` (the caller answers), else the customer
        is told it did not work."""
        auth = self.authenticator
        deleted = False
        if auth is not None:
            try:
                deleted = await auth.forget(turn.customer_id)
            except Exception as exc:  # noqa: BLE001 - tell the customer (or the caller) it did not work
                log.exception("authenticator '%s' failed to forget customer %s", auth.name, turn.customer_id)
                if raise_errors:
                    raise GatewayError(f"the authenticator '{auth.name}' could not delete the verification data "
                                       "(see the gateway's log); nothing was deleted or sent, try again") from exc
                turn.add([OutboundMessage(text=gate_text("auth_error", turn.language))], "system")
                return False
            turn.conversation.context.get("auth", {}).pop(auth.name, None)
        turn.conversation.verified_until = None
        turn.event("verification_forgotten", deleted=deleted, author=author)
        turn.add([OutboundMessage(text=gate_text("forgotten" if deleted else "nothing_to_forget", turn.language))],
                 "system")
        return deleted

    async def _step(self, turn: Turn, call: Callable[[AuthSession], Awaitable[AuthStep]], *, state: dict) -> None:
        auth = self.authenticator
        assert auth is not None
        conv = turn.conversation
        session = AuthSession(
            customer_id=turn.customer_id,
            conversation_id=conv.id,
            channel=turn.message.channel,
            intent=conv.pending_intent or "",
            language=turn.language,
            state=state,
        )
        try:
            step = await call(session)
        except Exception:  # noqa: BLE001 - keep the verification pending; the customer can retry
            log.exception("authenticator '%s' failed in conversation %s", auth.name, conv.id)
            turn.add([OutboundMessage(text=gate_text("auth_error", turn.language))], "system")
            return
        conv.context.setdefault("auth", {})[auth.name] = dict(step.state)
        turn.add(step.messages, f"auth:{auth.name}")
        if step.status is AuthStatus.PENDING:
            conv.state = ConversationState.AWAITING_VERIFICATION
            return
        pending = conv.pending_intent
        conv.state, conv.pending_intent = ConversationState.WITH_BOT, None
        turn.event("verification_finished", authenticator=auth.name, status=step.status.value, reason=step.reason)
        turn.notify(
            "on_verification_result",
            VerificationFinished(
                conversation_id=conv.id,
                customer_id=turn.customer_id,
                channel=turn.message.channel,
                authenticator=auth.name,
                status=step.status,
                reason=step.reason,
                at=turn.now,
            ),
        )
        if step.status is AuthStatus.VERIFIED:
            ttl = step.verified_ttl_s or self.verified_ttl_s
            conv.verified_until = turn.now + timedelta(seconds=ttl)
            if pending:
                await self._resume(turn, turn.message, pending)
        elif step.status is AuthStatus.LOCKED or (step.status is AuthStatus.FAILED and step.handoff):
            turn.handoff = Handoff(reason=f"verification {step.status.value}: {step.reason}".rstrip(": "))
