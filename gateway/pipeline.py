"""The conversation pipeline: every inbound message, and everything agents push back.

Inbound path (:meth:`Pipeline.receive`): per-customer sequencer (one open conversation per
customer, so this orders each conversation) → read customer + open conversation + duplicate
check in one SELECT → CRM enrichment → by state: bots in YAML order / the authenticator /
nothing (a live agent holds it) → render replies for the channel → commit inbound message,
replies, conversation and events in one group-committed transaction → notification hooks.
The replies are returned only after that commit, so an answered message is durably stored.
A duplicate delivery (same channel and message id) returns the replies stored the first time.

Outbound path (:meth:`push`, :meth:`close_conversation`, :meth:`set_agent`) is what the
live-agent desk uses; it takes the same per-customer hold, so agent messages and customer
messages of one conversation never interleave their writes.
"""

from __future__ import annotations

import contextvars
import logging
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable, Sequence

from sqlalchemy.exc import IntegrityError

from gateway.agent_settings import AgentsSettings
from gateway.auth_gate import AuthGate
from gateway.components import Authenticator, Bot, BotReply, BotTurn, Channel, Received
from gateway.conversation import ConversationState
from gateway.db.models import new_id
from gateway.db.store import (
    ConversationRow,
    CustomerRow,
    DuplicateInbound,
    StaleConversation,
    Store,
    WriteSet,
    event_row,
    inbound_body,
    message_row,
    outbound_body,
)
from gateway.enrichment import ConfiguredCrm, Enricher
from gateway.errors import GatewayError, InboundRejected, UnknownConversation
from gateway.events import ConversationClosed, HandoffRequested, MessageReceived, MessageSent
from gateway.messages import InboundMessage, OutboundMessage
from gateway.plugin_manager import Notifier
from gateway.rendering import OPTIONS_KEY, answer_to_option, render
from gateway.sequencer import Sequencer
from gateway.turn import Turn
from gateway.turn_cache import TurnCache

log = logging.getLogger(__name__)

MAX_ID_LENGTH = 255
TURN_ATTEMPTS = 3  # a turn that lost a race (stale version) is re-run from a fresh read

# Keys the current task already holds: the desk may call push()/set_agent() from inside a
# turn (e.g. during desk.assign), and the sequencer's locks are not re-entrant.
_held: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar("voicegate_held_keys", default=frozenset())


class _CachedDuplicate(Exception):
    """A turn from cached rows hit the unique index: the delivery is an older duplicate."""


class ClosedConversation(GatewayError):
    """The conversation is closed; agents cannot write to it any more."""


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Components:
    """The built components the pipeline drives (set at start-up by :mod:`gateway.app`)."""

    channels: dict[str, Channel]
    bots: list[Bot]
    crm: list[ConfiguredCrm]
    authenticator: Authenticator | None
    desk: Any | None = None  # gateway.agents.AgentDesk


class Pipeline:
    """Implements :class:`gateway.components.Inbox` and the outbox the live-agent desk uses."""

    def __init__(
        self,
        store: Store,
        sequencer: Sequencer,
        notifier: Notifier,
        *,
        agents: AgentsSettings = AgentsSettings(),
        verified_ttl_s: int = 900,
        clock: Callable[[], datetime] = utcnow,
        cache: TurnCache | None = None,
    ) -> None:
        self.store = store
        self.cache = cache  # single instance only: see gateway.turn_cache
        self.sequencer = sequencer
        self.notifier = notifier
        self.agents = agents
        self.verified_ttl_s = verified_ttl_s
        self.clock = clock
        self.components = Components(channels={}, bots=[], crm=[], authenticator=None)
        self.enricher = Enricher([])
        self.gate = AuthGate(None, verified_ttl_s=verified_ttl_s, resume=self._resume_bots)

    def attach(self, components: Components) -> None:
        """Give the pipeline its channels, bots, CRM backends, authenticator and desk."""
        self.components = components
        self.enricher = Enricher(components.crm)
        self.gate = AuthGate(components.authenticator, verified_ttl_s=self.verified_ttl_s, resume=self._resume_bots)

    # ------------------------------------------------------------------ inbound

    async def receive(self, message: InboundMessage) -> list[OutboundMessage]:
        """Persist ``message`` idempotently, run it through the conversation, return the replies."""
        return (await self.receive_turn(message)).replies

    async def receive_turn(self, message: InboundMessage) -> Received:
        """As :meth:`receive`; ``duplicate`` says the message id was stored before (see :class:`Received`)."""
        channel = self.components.channels.get(message.channel)
        if channel is None:
            raise InboundRejected(f"channel '{message.channel}' is not enabled in this gateway", status=404)
        for name, value in (("sender", message.sender), ("message_id", message.message_id)):
            if not isinstance(value, str) or not value or len(value) > MAX_ID_LENGTH:
                raise InboundRejected(f"'{name}' must be a non-empty string of at most {MAX_ID_LENGTH} characters")
        use_cache = True
        for attempt in range(1, TURN_ATTEMPTS + 1):
            customer_id = await self.store.customer_for(message.channel, message.sender)
            key = customer_id or f"identity:{message.channel}:{message.sender}"
            async with self._hold(key):
                if customer_id is None and await self.store.customer_for(message.channel, message.sender):
                    continue  # created while we waited: take the customer's own key instead
                try:
                    return await self._turn(message, customer_id, channel, use_cache=use_cache)
                except _CachedDuplicate:  # an old duplicate met a cached conversation: re-read
                    use_cache = False
                except StaleConversation:
                    use_cache = False
                    self._forget(customer_id)
                    if attempt == TURN_ATTEMPTS:
                        raise
                    log.info("conversation changed under a turn (attempt %d); re-running it", attempt)
                except IntegrityError:  # e.g. two identities of one customer opened a conversation at once
                    self._forget(customer_id)
                    if attempt == TURN_ATTEMPTS:
                        raise
        raise GatewayError("could not settle the customer of this message; retry the delivery")

    def _forget(self, customer_id: str | None) -> None:
        if self.cache is not None and customer_id is not None:
            self.cache.drop(customer_id)

    async def _turn(
        self, message: InboundMessage, customer_id: str | None, channel: Channel, *, use_cache: bool
    ) -> Received:
        now = self.clock()
        ws = WriteSet()
        cache = self.cache if use_cache else None
        cached = cache.get(customer_id) if cache is not None and customer_id is not None else None
        if cached is not None:
            duplicate_of = cache.seen(message.channel, message.message_id)  # type: ignore[union-attr]
            if duplicate_of is not None:
                return await self._duplicate(duplicate_of, customer_id, message)  # type: ignore[arg-type]
            customer, conv = cached
        elif customer_id is None:
            customer = CustomerRow(id=new_id(), profile=None, profile_fetched_at=None, is_new=True)
            ws.customers.append({"id": customer.id, "profile": None, "profile_fetched_at": None, "created_at": now})
            ws.identities.append(
                {"channel": message.channel, "external_id": message.sender, "customer_id": customer.id, "created_at": now}
            )
            conv = None
        else:
            read = await self.store.load_turn(customer_id, message.channel, message.message_id)
            if read is None:
                raise GatewayError(f"customer {customer_id} of {message.channel}:{message.sender} no longer exists")
            if read.duplicate_of is not None:
                return await self._duplicate(read.duplicate_of, customer_id, message)
            customer, conv = read.customer, read.conversation
        if conv is None:
            conv = ConversationRow(
                id=new_id(), customer_id=customer.id, channel=message.channel, sender=message.sender,
                state=ConversationState.WITH_BOT, context={}, pending_intent=None, verified_until=None,
                assigned_agent=None, version=0, created_at=now, updated_at=now, is_new=True,
            )
        conv.channel, conv.sender = message.channel, message.sender
        # A channel without buttons showed a numbered menu: the typed digit means that button.
        effective = message
        if message.button is None:
            payload = answer_to_option(message.text, conv.context.get(OPTIONS_KEY))
            if payload is not None:
                effective = replace(message, button=payload)
        turn = Turn(message=effective, conversation=conv, customer_id=customer.id, profile=None, now=now, write_set=ws)  # type: ignore[arg-type]
        turn.profile = await self.enricher.profile(customer, turn.customer_view(), ws, now)
        inbound_id = new_id()
        ws.messages.append(
            message_row(
                message_id=inbound_id, conversation_id=conv.id, direction="in", channel=message.channel,
                body=inbound_body(message), at=now, channel_message_id=message.message_id, author="customer",
            )
        )
        if conv.state is ConversationState.AWAITING_VERIFICATION:
            await self.gate.handle(turn)
        elif conv.state is ConversationState.WITH_BOT:
            await self._ask_bots(turn, effective)
        # WITH_AGENT: stored, no bot reply; the desk shows it to the agent.
        if turn.handoff is not None:
            await self._hand_off(turn)
        if turn.close_reason is not None:
            self._close(turn.conversation, turn, turn.close_reason)
        rendered = self._render(turn, channel, in_reply_to=inbound_id)
        ws.add_conversation(conv, now)
        try:
            await self.store.commit(ws)
        except DuplicateInbound:
            if cached is not None:
                raise _CachedDuplicate() from None
            raise InboundRejected(
                f"message_id '{message.message_id}' was already used on channel '{message.channel}' by another "
                "sender; give every message a unique id", status=409,
            ) from None
        if customer.is_new:
            self.store.remember_identity(message.channel, message.sender, customer.id)
        if self.cache is not None:
            self.cache.put(customer, conv)
            self.cache.remember(message.channel, message.message_id, inbound_id)
        self._notify_turn(turn, message, rendered)
        return Received(rendered)

    async def _duplicate(self, inbound_id: str, customer_id: str, message: InboundMessage) -> Received:
        owner, sender = await self.store.inbound_owner(inbound_id)
        if owner != customer_id or sender != message.sender:
            raise InboundRejected(
                f"message_id '{message.message_id}' was already used on channel '{message.channel}' by another "
                "sender; give every message a unique id", status=409,
            )
        return Received(await self.store.replies_to(inbound_id), duplicate=True)

    async def _ask_bots(self, turn: Turn, message: InboundMessage, *, resumed_intent: str | None = None) -> None:
        conv = turn.conversation
        verified = conv.verified_until is not None and turn.now < conv.verified_until
        bot_turn = BotTurn(
            message=message, conversation=turn.conversation_view(), customer=turn.customer_view(),
            verified=verified, resumed_intent=resumed_intent,
        )
        reply: BotReply | None = None
        bot: Bot | None = None
        for bot in self.components.bots:
            try:
                reply = await bot.handle(bot_turn)
            except Exception:  # noqa: BLE001 - a broken bot lets the next one answer
                log.exception("bot '%s' failed on conversation %s; asking the next bot", bot.name, conv.id)
                continue
            if reply is not None:
                break
        if reply is None or bot is None:
            return
        if reply.context:
            conv.context.update(reply.context)
        intent = reply.intent
        if intent is not None and intent.sensitive and not verified:
            await self.gate.start(turn, intent)  # the bot's answer is discarded until verified
            return
        turn.add(reply.messages, f"bot:{bot.name}")
        if intent is not None and intent.action == "forget_verification":
            await self.gate.forget(turn)
        if reply.handoff is not None:
            turn.handoff = reply.handoff
        if reply.close:
            turn.close_reason = f"closed by bot '{bot.name}'"

    async def _resume_bots(self, turn: Turn, message: InboundMessage, intent: str) -> None:
        await self._ask_bots(turn, message, resumed_intent=intent)

    def _render(self, turn: Turn, channel: Channel, *, in_reply_to: str | None) -> list[OutboundMessage]:
        """Fit the turn's replies to ``channel`` and queue their rows; remember offered numbered options."""
        rendered_all: list[OutboundMessage] = []
        options: dict[str, str] | None = None
        context = turn.conversation.context
        for message, author in turn.replies:
            rendered, offered = render([message], channel.capabilities)
            if message.buttons or offered:
                options = offered
            for out in rendered:
                turn.write_set.messages.append(
                    message_row(
                        message_id=new_id(), conversation_id=turn.conversation.id, direction="out",
                        channel=turn.conversation.channel, body=outbound_body(out), at=turn.now,
                        in_reply_to=in_reply_to, author=author,
                    )
                )
                rendered_all.append(out)
        if turn.replies:
            if options:
                context[OPTIONS_KEY] = options
            else:
                context.pop(OPTIONS_KEY, None)
        return rendered_all

    def _notify_turn(self, turn: Turn, message: InboundMessage, rendered: Sequence[OutboundMessage]) -> None:
        conv = turn.conversation
        calls: list[tuple[str, object]] = []
        if self.notifier.wanted("on_message_received"):
            calls.append(("on_message_received", MessageReceived(conv.id, turn.customer_id, message, turn.now)))
        if rendered and self.notifier.wanted("on_message_sent"):
            calls.extend(
                ("on_message_sent", MessageSent(conv.id, turn.customer_id, conv.channel, conv.sender, out, turn.now))
                for out in rendered
            )
        calls.extend(turn.notifications)
        self.notifier.notify(calls)

    async def _hand_off(self, turn: Turn) -> None:
        """Pass the conversation to a live agent: the desk picks one (or queues it) before the turn commits."""
        handoff = turn.handoff
        assert handoff is not None
        conv = turn.conversation
        if not self.agents.reachable_team:
            # No one could ever take it from the queue (agents sign in as team members, and an empty token locks
            # one out): the bot keeps the conversation and the customer is told now, not left waiting for nobody.
            turn.add([OutboundMessage(text=self.agents.text("unavailable_text", turn.language))], "system")
            turn.event("handoff_unavailable", reason=handoff.reason, skill=handoff.skill)
            return
        agent = None
        desk = self.components.desk
        if desk is not None:
            try:
                agent = await desk.assign(conv.id, skill=handoff.skill, language=turn.language)
            except Exception:  # noqa: BLE001 - the customer stays queued; agents pick it from the queue
                log.exception("the agent desk failed to assign conversation %s; it stays queued", conv.id)
        conv.state, conv.pending_intent = ConversationState.WITH_AGENT, None
        conv.assigned_agent = agent.id if agent is not None else None
        text = (self.agents.text("handoff_text", turn.language).format(agent_name=agent.name) if agent is not None
                else self.agents.text("queued_text", turn.language))
        turn.add([OutboundMessage(text=text)], "system")
        turn.event("handoff", reason=handoff.reason, skill=handoff.skill, agent_id=conv.assigned_agent)
        turn.notify(
            "on_handoff",
            HandoffRequested(conv.id, turn.customer_id, conv.channel, handoff.reason, handoff.skill, conv.assigned_agent, turn.now),
        )

    def _close(self, conv: ConversationRow, turn: Turn, reason: str) -> None:
        conv.state, conv.closed_at = ConversationState.CLOSED, turn.now
        conv.pending_intent = None
        turn.event("closed", reason=reason)
        turn.notify("on_conversation_closed", ConversationClosed(conv.id, conv.customer_id, reason, turn.now))

    # ------------------------------------------------------------------ outbox (live agents)

    async def push(self, conversation_id: str, messages: Sequence[OutboundMessage], *, author: str) -> None:
        """Store ``messages`` in the conversation and deliver them through its current channel.

        A delivery failure (customer offline, channel down) is logged and recorded as a
        ``delivery_failed`` event; the messages stay stored. Raises :class:`UnknownConversation`.
        """

        async def add(turn: Turn) -> None:
            turn.add(messages, author)

        await self._push_turn(conversation_id, add, author=author)

    async def forget_verification(self, conversation_id: str, *, author: str,
                                  guard: Callable[[ConversationRow], None] | None = None) -> bool:
        """Delete the customer's verification data (the authenticator's ``forget``, as for a customer who asks the
        bot) on their behalf, e.g. by the agent they asked, and tell them in the conversation, as :meth:`push` does.

        ``guard`` runs on the conversation under its lock and may refuse by raising. Returns whether there was
        anything to delete. If the authenticator fails, raises :class:`GatewayError` and sends nothing, so the
        caller can say so and retry.
        """
        deleted = False

        async def forget(turn: Turn) -> None:
            nonlocal deleted
            deleted = await self.gate.forget(turn, author=author, raise_errors=True)

        await self._push_turn(conversation_id, forget, author=author, guard=guard)
        return deleted

    async def _push_turn(self, conversation_id: str, fill: Callable[[Turn], Awaitable[None]], *, author: str,
                         guard: Callable[[ConversationRow], None] | None = None) -> None:
        conv = await self._conversation(conversation_id)
        async with self._hold(conv.customer_id):
            conv = await self._conversation(conversation_id)
            if guard is not None:
                guard(conv)
            if conv.state is ConversationState.CLOSED:
                raise ClosedConversation(f"conversation {conversation_id} is closed; start a new one")
            channel = self.components.channels.get(conv.channel)
            if channel is None:
                raise GatewayError(f"conversation {conversation_id} is on channel '{conv.channel}', which is not enabled")
            now = self.clock()
            turn = Turn(message=InboundMessage(conv.channel, conv.sender, ""), conversation=conv,
                        customer_id=conv.customer_id, profile=None, now=now)  # type: ignore[arg-type]
            await fill(turn)
            rendered = self._render(turn, channel, in_reply_to=None)
            turn.write_set.add_conversation(conv, now)
            await self.store.commit(turn.write_set)
            try:
                await channel.deliver(conv.sender, rendered)
            except Exception as exc:  # noqa: BLE001 - stored; the customer sees it when back
                log.warning("could not deliver %d message(s) to conversation %s: %s", len(rendered), conv.id, exc)
                ws = WriteSet(events=[event_row(conv.id, "delivery_failed", {"error": str(exc)[:500], "author": author}, now)])
                await self.store.commit(ws)
                return
        self.notifier.notify([
            ("on_message_sent", MessageSent(conv.id, conv.customer_id, conv.channel, conv.sender, out, now))
            for out in rendered
        ])

    async def close_conversation(self, conversation_id: str, *, reason: str, author: str) -> None:
        """Close the conversation (no-op if already closed). Raises :class:`UnknownConversation`."""
        conv = await self._conversation(conversation_id)
        async with self._hold(conv.customer_id):
            conv = await self._conversation(conversation_id)
            if conv.state is ConversationState.CLOSED:
                return
            now = self.clock()
            turn = Turn(message=InboundMessage(conv.channel, conv.sender, ""), conversation=conv,
                        customer_id=conv.customer_id, profile=None, now=now)  # type: ignore[arg-type]
            self._close(conv, turn, reason)
            turn.event("closed_by", author=author)
            turn.write_set.add_conversation(conv, now)
            await self.store.commit(turn.write_set)
        self.notifier.notify(turn.notifications)

    async def set_agent(self, conversation_id: str, agent_id: str | None, *, author: str) -> None:
        """Assign the conversation to ``agent_id`` (``None``: back to the queue); it stays WITH_AGENT."""
        conv = await self._conversation(conversation_id)
        async with self._hold(conv.customer_id):
            conv = await self._conversation(conversation_id)
            if conv.state is ConversationState.CLOSED:
                raise ClosedConversation(f"conversation {conversation_id} is closed; it cannot be assigned")
            now = self.clock()
            conv.state, conv.assigned_agent, conv.pending_intent = ConversationState.WITH_AGENT, agent_id, None
            ws = WriteSet(events=[event_row(conv.id, "agent_assigned", {"agent_id": agent_id, "author": author}, now)])
            ws.add_conversation(conv, now)
            await self.store.commit(ws)

    async def _conversation(self, conversation_id: str) -> ConversationRow:
        conv = await self.store.conversation(conversation_id)
        if conv is not None and self.cache is not None:
            self.cache.drop(conv.customer_id)  # this write makes the cached row stale
        if conv is None:
            raise UnknownConversation(f"no conversation with id '{conversation_id}'; check the id (list conversations first)")
        return conv

    def _hold(self, key: str) -> "_Hold":
        """The sequencer's hold on ``key``, re-entrant within one task (see ``_held``)."""
        return _Hold(self.sequencer, key)


class _Hold:
    """``async with``: hold ``key`` unless this task already does (a plain class: it runs on every message)."""

    __slots__ = ("_sequencer", "_key", "_inner", "_token")

    def __init__(self, sequencer: Sequencer, key: str) -> None:
        self._sequencer, self._key = sequencer, key
        self._inner: Any = None
        self._token: Any = None

    async def __aenter__(self) -> None:
        held = _held.get()
        if self._key in held:
            return
        inner = self._sequencer.hold(self._key)
        await inner.__aenter__()
        self._inner = inner
        self._token = _held.set(held | {self._key})

    async def __aexit__(self, *exc: Any) -> None:
        if self._inner is None:
            return
        _held.reset(self._token)
        await self._inner.__aexit__(*exc)
