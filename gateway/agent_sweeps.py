"""The desk's background work, run by :meth:`gateway.agents.AgentDesk.run` on every instance.

* :func:`acknowledge_waiting` — one automatic acknowledgement per waiting stretch when an
  agent is slow; never to a customer whose turn it is.
* :func:`assign_queued` — queued conversations go to agents who became available.

Both are safe to run on several instances at once: the acknowledgement is re-checked and
recorded under a row lock (:meth:`gateway.db.agent_queries.AgentQueries.record_ack`), the
assignment is a version-fenced write.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from gateway.agent_settings import AgentProfile, AgentsSettings
from gateway.conversation import ConversationState
from gateway.db.agent_queries import ACK_AUTHOR, AckDue
from gateway.db.store import ConversationRow
from gateway.errors import GatewayError
from gateway.events import HandoffRequested
from gateway.messages import OutboundMessage
from gateway.languages import conversation_language

if TYPE_CHECKING:  # pragma: no cover
    from gateway.agents import AgentDesk

log = logging.getLogger(__name__)

QUEUE_AUTHOR = "desk:queue"  # recorded as the author of assignments made from the queue
QUEUE_REASON = "assigned from the queue"  # HandoffRequested.reason of those assignments


async def acknowledge_waiting(desk: "AgentDesk") -> int:
    """Acknowledge, once per waiting stretch, every customer whose latest message has had no
    agent answer for ``ack_after_s``; returns how many acknowledgements were sent.

    A customer whose turn it is (the agent wrote last) is never messaged. Due-ness is
    re-checked and recorded in one locked transaction per conversation, so concurrent
    sweepers on several instances send one acknowledgement, not one each.
    """
    now = desk.clock()
    cutoff = now - timedelta(seconds=desk.settings.ack_after_s)
    sent = 0
    for due in await desk.queries.due_acks(cutoff):
        recorded = await desk.queries.record_ack(due.conversation_id, cutoff, now)
        if recorded is None:
            continue
        text = _ack_text(desk.settings, recorded, await _language(desk, recorded.conversation_id))
        # The agent may have answered since the check; then the ack would only confuse.
        if await desk.queries.agent_spoke_after(recorded.conversation_id, recorded.inbound_id):
            continue
        try:
            await desk.outbox.push(recorded.conversation_id, [OutboundMessage(text=text)], author=ACK_AUTHOR)
        except Exception:  # noqa: BLE001 - at most once: the event is recorded, never resend
            log.exception("could not deliver the acknowledgement to conversation %s", recorded.conversation_id)
            continue
        sent += 1
    if sent:
        log.info("sent %d acknowledgement(s) to waiting customers", sent)
    return sent


async def assign_queued(desk: "AgentDesk") -> int:
    """Give queued conversations, longest waiting first, to agents who became available
    (same routing as a handoff); returns how many were assigned.

    The customer is told who takes over (``handoff_text``). Each assignment is a
    version-fenced write, so when several instances drain the queue at once a
    conversation is assigned, and announced, once. Conversations nobody on the team can
    take (e.g. no one speaks the language) stay queued for a manual claim.
    """
    team = desk.settings.reachable_team
    loads = await desk.queries.open_loads([a.id for a in team])
    if all(loads.get(a.id, 0) >= a.max_concurrent for a in team):
        return 0  # the usual case while a queue exists: nobody is free, so skip reading it
    assigned = 0
    for queued in await desk.queries.queued():
        agent = await desk._route(queued.skill, queued.language, pending_for=None)
        if agent is None:
            continue
        won = False

        def take(conversation: ConversationRow, agent: AgentProfile = agent) -> tuple[str, dict[str, Any]] | None:
            nonlocal won
            won = False  # called again on a fresh read after a lost race
            if conversation.state is not ConversationState.WITH_AGENT or conversation.assigned_agent is not None:
                return None  # claimed, closed or handed back meanwhile
            conversation.assigned_agent, won = agent.id, True
            return "agent_assigned", {"agent_id": agent.id, "author": QUEUE_AUTHOR}

        try:
            await desk._fenced_change(queued.id, take)
        except GatewayError:  # not allowed any more (DeskError) or gone (UnknownConversation)
            continue
        if not won:
            continue
        assigned += 1
        log.info("queued conversation %s -> %s", queued.id, agent.id)
        if desk.notifier is not None:  # committed: tell plugins, as the pipeline does for a direct handoff
            desk.notifier.notify([("on_handoff", HandoffRequested(
                queued.id, queued.customer_id, queued.channel, QUEUE_REASON, queued.skill, agent.id, desk.clock(),
            ))])
        handoff_text = desk.settings.text("handoff_text", queued.language)
        try:
            text = handoff_text.format(agent_name=agent.name)
        except (KeyError, IndexError, ValueError):
            text = handoff_text
        try:
            await desk.outbox.push(queued.id, [OutboundMessage(text=text)], author="system")
        except Exception:  # noqa: BLE001 - the assignment stands; the agent greets the customer
            log.exception("could not tell the customer of conversation %s who takes over", queued.id)
    return assigned


def _ack_text(settings: AgentsSettings, due: AckDue, language: str | None) -> str:
    # A queued customer hears the queue message once; if the handoff already said it (in any
    # language), the acknowledgement is the plain "thanks for waiting" instead of a repeat.
    if due.assigned_agent is None and due.stretch_text not in settings.all_texts("queued_text"):
        return settings.text("queued_text", language)
    return settings.text("ack_text", language)


async def _language(desk: "AgentDesk", conversation_id: str) -> str | None:
    """The conversation's language as for a turn (:func:`gateway.languages.conversation_language`)."""
    conversation = await desk.store.conversation(conversation_id)
    if conversation is None:
        return None
    spoken = conversation_language(conversation.context, None)
    if spoken is not None:  # set by a bot: the customer's profile need not be read
        return spoken
    found = await desk.store.customer(conversation.customer_id)
    return conversation_language(None, ((found[0].profile if found else None) or {}).get("language"))
