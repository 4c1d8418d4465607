"""The live-agent desk: routing handoffs, what agents see and do, and acknowledging waiting customers.

The bot hands a conversation over in the same channel: the pipeline calls
:meth:`AgentDesk.assign` and then holds the conversation ``WITH_AGENT``. Agents work through
the JSON API in :mod:`gateway.agent_api` (mounted under ``/agents``); everything they send
goes through the pipeline's :class:`Outbox`, so it is persisted, ordered with the customer's
own messages and delivered by the conversation's current channel.

State lives in the database: the load per agent, the queue and whether a customer is due an
acknowledgement are read from SQL (:mod:`gateway.db.agent_queries`), so any number of gateway
instances can run the desk and the sweeper side by side.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence

from gateway.agent_routing import pick_agent
from gateway.agent_settings import AgentProfile, AgentsSettings, AgentTemplate
from gateway.agent_sweeps import acknowledge_waiting, assign_queued
from gateway.agent_templates import TemplateError, fill_template, profile_variables, template_variables
from gateway.agent_views import conversation_detail
from gateway.conversation import ConversationState
from gateway.db.agent_queries import ACK_AUTHOR, AgentQueries, ConversationSummary
from gateway.db.store import ConversationRow, StaleConversation, Store, WriteSet, event_row
from gateway.errors import GatewayError, UnknownConversation
from gateway.messages import Button, OutboundMessage, Template

if TYPE_CHECKING:  # pragma: no cover
    from aiohttp import web

    from gateway.plugin_manager import Notifier

log = logging.getLogger(__name__)

# How long a routing decision made here counts towards an agent's load before the database
# shows it (the pipeline commits the turn that asked for the handoff a moment later).
PENDING_ASSIGNMENT_S = 30.0
HISTORY_LIMIT = 1000
FENCE_ATTEMPTS = 3


class Outbox(Protocol):
    """What the desk needs from the pipeline (:class:`gateway.pipeline.Pipeline` satisfies it)."""

    async def push(self, conversation_id: str, messages: Sequence[OutboundMessage], *, author: str) -> None:
        """Persist ``messages`` and deliver them through the conversation's channel, in order."""
        ...

    async def close_conversation(self, conversation_id: str, *, reason: str, author: str) -> None:
        """Close the conversation."""
        ...

    async def set_agent(self, conversation_id: str, agent_id: str | None, *, author: str) -> None:
        """Give the conversation to ``agent_id``, or back to the queue with ``None`` (it stays WITH_AGENT)."""
        ...

    async def forget_verification(self, conversation_id: str, *, author: str,
                                  guard: Callable[[ConversationRow], None] | None = None) -> bool:
        """Delete the customer's verification data and tell them in the conversation; ``guard`` may refuse, under
        the conversation's lock, by raising. Returns whether there was anything to delete."""
        ...


class DeskError(GatewayError):
    """An agent's request cannot be carried out; ``status`` is the HTTP status to answer with."""

    status = 409


class DeskConflict(DeskError):
    """The conversation is not in a state that allows the action (queued, someone else's, closed ...)."""


class BadAgentRequest(DeskError):
    """The request itself is wrong (unknown template, missing template variable, bad buttons)."""

    status = 400


def agent_author(agent_id: str) -> str:
    """The ``author`` recorded on everything an agent sends or does."""
    return f"agent:{agent_id}"


@dataclass(frozen=True)
class SentMessage:
    """What an agent's message turned into before delivery."""

    text: str
    buttons: tuple[Button, ...]
    template: str | None
    variables: dict[str, str]


class AgentDesk:
    """Routes handoffs to agents, serves the agent API and acknowledges waiting customers."""

    def __init__(
        self,
        settings: AgentsSettings,
        store: Store,
        outbox: Outbox,
        clock: Callable[[], datetime],
        notifier: Notifier | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.outbox = outbox
        self.clock = clock
        self.notifier = notifier  # fires on_handoff for assignments the desk makes on its own (queue drain)
        self.queries = AgentQueries(store.db)
        # Unique ids and names, and plain template placeholders: checked by AgentsSettings itself.
        self.agents: dict[str, AgentProfile] = {a.id: a for a in settings.team}
        self.templates: dict[str, AgentTemplate] = {t.name: t for t in settings.templates}
        self._reachable = frozenset(a.id for a in settings.reachable_team)
        self._assign_lock = asyncio.Lock()
        # conversation id -> (agent id, monotonic time, sequence): decisions not yet committed.
        self._pending: dict[str, tuple[str, float, int]] = {}
        self._sequence = 0
        if any(a.token == "" for a in settings.team):
            log.warning(
                "agents with an empty token cannot sign in to the agent API until one is set: %s",
                ", ".join(a.id for a in settings.team if a.token == ""),
            )
        if any(a.token is None for a in settings.team):
            log.warning(
                "agents without a token (%s) are identified by the X-VoiceGate-Agent header alone; "
                "set agents.team[].token for production",
                ", ".join(a.id for a in settings.team if a.token is None),
            )

    # ------------------------------------------------------------------ routing

    async def assign(self, conversation_id: str, *, skill: str | None, language: str | None) -> AgentProfile | None:
        """The agent who should take ``conversation_id`` now, or ``None`` to queue it.

        Called by the pipeline inside the conversation's turn, before it commits the handoff.
        Load and fairness come from the database; decisions this process made whose turn has
        not committed yet also count, so a burst of handoffs does not pile onto one agent.
        """
        agent = await self._route(skill, language, pending_for=conversation_id)
        log.info(
            "handoff of %s (skill=%s, language=%s) -> %s",
            conversation_id, skill, language, agent.id if agent else "queue",
        )
        return agent

    async def _route(self, skill: str | None, language: str | None, *, pending_for: str | None) -> AgentProfile | None:
        team = self.settings.reachable_team
        if not team:
            return None
        ids = [a.id for a in team]
        async with self._assign_lock:
            loads = await self.queries.open_loads(ids)
            last = await self.queries.last_assignments(ids)
            await self._count_pending(loads, last)
            agent = pick_agent(team, skill=skill, language=language, loads=loads, last_assigned=last)
            if agent is not None and pending_for is not None:
                self._sequence += 1
                self._pending[pending_for] = (agent.id, time.monotonic(), self._sequence)
        return agent

    async def _count_pending(self, loads: dict[str, int], last: dict[str, int]) -> None:
        now = time.monotonic()
        for cid, (_, at, _) in list(self._pending.items()):
            if now - at > PENDING_ASSIGNMENT_S:
                del self._pending[cid]
        if not self._pending:
            return
        committed = await self.queries.assigned_to((cid, p[0]) for cid, p in self._pending.items())
        top = max(last.values(), default=0)
        for cid, (agent_id, _, seq) in list(self._pending.items()):
            if cid in committed:  # the database counts it now
                del self._pending[cid]
                continue
            loads[agent_id] = loads.get(agent_id, 0) + 1
            last[agent_id] = max(last.get(agent_id, -1), top + seq)

    # ------------------------------------------------------------------ API support

    def routes(self) -> list["web.RouteDef"]:
        """The agent API's routes, relative to where the app mounts them (``/agents``)."""
        from gateway.agent_api import AgentApi

        return AgentApi(self).routes()

    def agent_by_token(self, token: str) -> AgentProfile | None:
        """The agent whose configured bearer token is ``token`` (constant-time comparison)."""
        found = None
        for agent in self.settings.team:
            if agent.token is not None and hmac.compare_digest(agent.token.encode(), token.encode()):
                found = agent
        return found

    async def desk(self, agent: AgentProfile) -> tuple[list[ConversationSummary], list[ConversationSummary]]:
        """(conversations assigned to ``agent``, the queue), oldest first."""
        return await self.queries.desk(agent.id)

    async def _conversation(self, conversation_id: str) -> ConversationRow:
        conversation = await self.store.conversation(conversation_id)
        if conversation is None:
            raise UnknownConversation(
                f"no conversation with id '{conversation_id}'; list yours and the queue with GET /agents/me/conversations"
            )
        return conversation

    async def conversation_detail(self, conversation_id: str) -> dict[str, Any]:
        """Everything an agent needs (JSON-ready): see :func:`gateway.agent_views.conversation_detail`."""
        return await conversation_detail(self.store, await self._conversation(conversation_id), HISTORY_LIMIT)

    def _require_mine(self, agent: AgentProfile, conversation: ConversationRow, action: str) -> None:
        if conversation.state is not ConversationState.WITH_AGENT:
            raise DeskConflict(
                f"cannot {action}: conversation '{conversation.id}' is {conversation.state.value}, not with an agent"
            )
        if conversation.assigned_agent is None:
            raise DeskConflict(
                f"cannot {action}: conversation '{conversation.id}' is in the queue; "
                f"claim it first with POST /agents/conversations/{conversation.id}/claim"
            )
        if conversation.assigned_agent != agent.id:
            raise DeskConflict(
                f"cannot {action}: conversation '{conversation.id}' is assigned to agent "
                f"'{conversation.assigned_agent}', not to you"
            )

    async def send(
        self,
        agent: AgentProfile,
        conversation_id: str,
        *,
        text: str | None = None,
        template: str | None = None,
        buttons: Sequence[Button] = (),
    ) -> SentMessage:
        """Send a message (free text, or a template filled from the CRM profile) as ``agent``."""
        conversation = await self._conversation(conversation_id)
        self._require_mine(agent, conversation, "send a message")
        variables: dict[str, str] = {}
        if template is not None:
            chosen = self.templates.get(template)
            if chosen is None:
                known = ", ".join(sorted(self.templates)) or "none are configured"
                raise BadAgentRequest(f"unknown template '{template}'; known templates: {known} (GET /agents/templates)")
            found = await self.store.customer(conversation.customer_id)
            available = profile_variables(found[0].profile if found else None)
            available["agent_name"] = agent.name
            try:
                text, variables = fill_template(chosen, available)
            except TemplateError as exc:
                raise BadAgentRequest(str(exc)) from exc
        assert text is not None
        message = OutboundMessage(
            text=text,
            buttons=tuple(buttons),
            template=Template(name=template, variables=variables) if template is not None else None,
        )
        for _ in range(FENCE_ATTEMPTS):
            try:
                await self.outbox.push(conversation_id, [message], author=agent_author(agent.id))
                break
            except StaleConversation:  # a customer turn committed first; nothing of ours was stored
                self._require_mine(agent, await self._conversation(conversation_id), "send a message")
            except GatewayError:
                # Closed or handed over meanwhile: say so (409) rather than fail obscurely.
                self._require_mine(agent, await self._conversation(conversation_id), "send a message")
                raise
        else:
            raise DeskConflict(f"conversation '{conversation_id}' kept changing while sending; try again")
        return SentMessage(text=text, buttons=tuple(buttons), template=template, variables=variables)

    async def _fenced_change(
        self,
        conversation_id: str,
        change: Callable[[ConversationRow], tuple[str, dict[str, Any]] | None],
    ) -> ConversationRow:
        """Apply ``change`` to a fresh read of the conversation and commit it with the version it
        read as a fence, re-reading on a lost race.

        ``change`` raises :class:`DeskError` when the action is not allowed, returns ``None``
        when nothing needs writing, or mutates the row and returns the event to record. A
        customer turn or another agent committing in between makes this write stale (or that
        one), so two writers never silently overwrite each other — across instances too.
        """
        for _ in range(FENCE_ATTEMPTS):
            conversation = await self._conversation(conversation_id)
            event = change(conversation)
            if event is None:
                return conversation
            now = self.clock()
            ws = WriteSet(events=[event_row(conversation_id, event[0], event[1], now)])
            ws.add_conversation(conversation, now)
            try:
                await self.store.commit(ws)
            except StaleConversation:
                continue
            return await self._conversation(conversation_id)
        raise DeskConflict(f"conversation '{conversation_id}' kept changing under this request; try again")

    async def claim(self, agent: AgentProfile, conversation_id: str) -> ConversationRow:
        """Take a queued conversation. Claiming one already yours is a no-op.

        Two agents claiming at once: one wins, the other gets :class:`DeskConflict` naming the winner.
        """
        load = (await self.queries.open_loads([agent.id])).get(agent.id, 0)

        def take(conversation: ConversationRow) -> tuple[str, dict[str, Any]] | None:
            if conversation.state is not ConversationState.WITH_AGENT:
                raise DeskConflict(
                    f"cannot claim: conversation '{conversation_id}' is {conversation.state.value}; "
                    "only conversations waiting for an agent can be claimed"
                )
            if conversation.assigned_agent == agent.id:
                return None
            # An agent removed from agents.team, or whose token is now empty, cannot answer: their conversations
            # are up for grabs.
            if conversation.assigned_agent is not None and conversation.assigned_agent in self._reachable:
                raise DeskConflict(
                    f"cannot claim: conversation '{conversation_id}' is assigned to agent '{conversation.assigned_agent}'"
                )
            if load >= agent.max_concurrent:
                raise DeskConflict(
                    f"cannot claim: you already hold {load} open conversations (max_concurrent is "
                    f"{agent.max_concurrent}); close, release or requeue one first"
                )
            conversation.assigned_agent = agent.id
            # The same event the pipeline writes for assignments: it feeds the fairness tie-break.
            return "agent_assigned", {"agent_id": agent.id, "author": agent_author(agent.id)}

        return await self._fenced_change(conversation_id, take)

    async def release(self, agent: AgentProfile, conversation_id: str) -> ConversationRow:
        """Give the conversation back to the bot (state WITH_BOT, no agent)."""

        def hand_back(conversation: ConversationRow) -> tuple[str, dict[str, Any]]:
            self._require_mine(agent, conversation, "release")
            conversation.state, conversation.assigned_agent = ConversationState.WITH_BOT, None
            return "agent_released", {"agent_id": agent.id, "author": agent_author(agent.id)}

        return await self._fenced_change(conversation_id, hand_back)

    async def forget_verification(self, agent: AgentProfile, conversation_id: str) -> bool:
        """Delete the customer's verification data (e.g. their voiceprint) at their request, from the conversation
        ``agent`` holds; the customer is told in the chat. Only the assigned agent may, as for sending (checked
        again under the conversation's lock). Returns whether there was anything to delete; raises
        :class:`gateway.errors.GatewayError` when the authenticator could not delete (nothing is sent then)."""
        conversation = await self._conversation(conversation_id)
        self._require_mine(agent, conversation, "delete verification data")
        return await self.outbox.forget_verification(
            conversation_id, author=agent_author(agent.id),
            guard=lambda fresh: self._require_mine(agent, fresh, "delete verification data"),
        )

    async def requeue(self, agent: AgentProfile, conversation_id: str) -> ConversationRow:
        """Put a conversation assigned to ``agent`` back in the queue for another agent to claim."""
        conversation = await self._conversation(conversation_id)
        self._require_mine(agent, conversation, "requeue")
        await self.outbox.set_agent(conversation_id, None, author=agent_author(agent.id))
        return await self._conversation(conversation_id)

    async def close(self, agent: AgentProfile, conversation_id: str, *, reason: str | None = None) -> ConversationRow:
        """Close a conversation assigned to ``agent`` (or a queued one, e.g. spam)."""
        conversation = await self._conversation(conversation_id)
        if conversation.state is ConversationState.CLOSED:
            return conversation
        if not (conversation.state is ConversationState.WITH_AGENT and conversation.assigned_agent is None):
            self._require_mine(agent, conversation, "close")
        await self.outbox.close_conversation(
            conversation_id, reason=reason or f"closed by agent {agent.id}", author=agent_author(agent.id)
        )
        return await self._conversation(conversation_id)

    def templates_json(self) -> list[dict[str, Any]]:
        """The configured templates with the variables each needs."""
        return [
            {"name": t.name, "text": t.text, "variables": list(template_variables(t.text))}
            for t in self.settings.templates
        ]

    # ------------------------------------------------------------------ acknowledgements

    async def sweep_once(self) -> int:
        """Acknowledge customers waiting too long for an agent; see :func:`gateway.agent_sweeps.acknowledge_waiting`."""
        return await acknowledge_waiting(self)

    async def assign_queued_once(self) -> int:
        """Give queued conversations to agents who became free; see :func:`gateway.agent_sweeps.assign_queued`."""
        return await assign_queued(self)

    async def run(self, stop: asyncio.Event) -> None:
        """Every ``sweep_interval_s`` until ``stop`` is set (the app's background task): assign
        queued conversations to agents who became free, then acknowledge waiting customers."""
        while not stop.is_set():
            for name, step in (("queue", self.assign_queued_once), ("acknowledgement", self.sweep_once)):
                try:
                    await step()
                except Exception:  # noqa: BLE001 - a database hiccup must not end the sweeper
                    log.exception("%s sweep failed; retrying in %.1f s", name, self.settings.sweep_interval_s)
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.settings.sweep_interval_s)
            except asyncio.TimeoutError:
                pass


__all__ = [
    "AgentDesk",
    "Outbox",
    "DeskError",
    "DeskConflict",
    "BadAgentRequest",
    "SentMessage",
    "agent_author",
    "ACK_AUTHOR",
]
