"""What an agent sees of a conversation, as JSON-ready dicts: the customer's CRM profile and
channel identities, the conversation's context, its full history and events, and the
customer's other conversations."""

from __future__ import annotations

from typing import Any

from gateway.agent_templates import profile_variables
from gateway.db.store import ConversationRow, Store


async def conversation_detail(store: Store, conversation: ConversationRow, history_limit: int = 1000) -> dict[str, Any]:
    """Everything an agent needs: the customer's profile and identities, context, history, events."""
    found = await store.customer(conversation.customer_id)
    profile, identities = (found[0].profile or {}, found[1]) if found else ({}, [])
    history = await store.history(conversation.id, limit=history_limit)
    total = len(history) if len(history) < history_limit else await store.count_messages(conversation.id)
    events = await store.events(conversation.id)
    earlier = await store.conversations(customer_id=conversation.customer_id, limit=50)
    return {
        "conversation": _conversation_json(conversation),
        "customer": {
            "id": conversation.customer_id,
            "profile": profile,
            "identities": [{"channel": ch, "sender": sender} for ch, sender in identities],
            "template_variables": profile_variables(profile),
        },
        "context": conversation.context,
        "messages": [
            {
                "id": m.id,
                "direction": m.direction,
                "author": m.author,
                "channel": m.channel,
                "in_reply_to": m.in_reply_to,
                "created_at": m.created_at.isoformat(),
                "body": m.body,
            }
            for m in history
        ],
        "message_count": total,  # more than len(messages) when only the latest history_limit are shown
        "events": [{"type": t, "data": d, "at": at.isoformat()} for t, d, at in events],
        "other_conversations": [
            {
                "id": c.id,
                "channel": c.channel,
                "state": c.state.value,
                "assigned_agent": c.assigned_agent,
                "created_at": c.created_at.isoformat(),
                "closed_at": c.closed_at.isoformat() if c.closed_at else None,
            }
            for c in earlier
            if c.id != conversation.id
        ],
    }


def _conversation_json(c: ConversationRow) -> dict[str, Any]:
    return {
        "id": c.id,
        "customer_id": c.customer_id,
        "channel": c.channel,
        "sender": c.sender,
        "state": c.state.value,
        "assigned_agent": c.assigned_agent,
        "pending_intent": c.pending_intent,
        "verified_until": c.verified_until.isoformat() if c.verified_until else None,
        "created_at": c.created_at.isoformat(),
        "updated_at": c.updated_at.isoformat(),
        "closed_at": c.closed_at.isoformat() if c.closed_at else None,
    }
