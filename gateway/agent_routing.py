"""Choosing the live agent for a handoff: skill, language, load, fairness.

Pure functions over what the database says (open conversations per agent, when each agent
was last assigned), so every gateway instance reaches the same decision from the same rows.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from gateway.agent_settings import AgentProfile
from gateway.languages import primary_language

GENERAL_SKILL = "general"


def speaks(agent: AgentProfile, language: str | None) -> bool:
    """True if ``agent`` speaks ``language`` (any agent does when the language is unknown)."""
    wanted = primary_language(language)
    return wanted is None or any(primary_language(lang) == wanted for lang in agent.languages)


def skill_tiers(skill: str | None) -> tuple[str, ...]:
    """Skills to try in order: the handoff's own, then ``general``.

    >>> skill_tiers("billing"), skill_tiers(None), skill_tiers("general")
    (('billing', 'general'), ('general',), ('general',))
    """
    wanted = (skill or GENERAL_SKILL).strip().lower() or GENERAL_SKILL
    return (wanted,) if wanted == GENERAL_SKILL else (wanted, GENERAL_SKILL)


def pick_agent(
    team: Sequence[AgentProfile],
    *,
    skill: str | None,
    language: str | None,
    loads: Mapping[str, int],
    last_assigned: Mapping[str, int],
) -> AgentProfile | None:
    """The most suitable available agent, or ``None`` (the conversation waits in the queue).

    Among agents with the handoff's skill (if none of them is available: agents with the
    ``general`` skill) who speak the customer's language, pick the one with the fewest open
    conversations (``loads``) below ``max_concurrent``; ties go to the agent assigned least
    recently (``last_assigned``: a sequence number per agent, higher = more recent; never
    assigned = first), then to team order.
    """
    for tier in skill_tiers(skill):
        candidates = [
            (loads.get(a.id, 0), last_assigned.get(a.id, -1), index, a)
            for index, a in enumerate(team)
            if tier in (s.lower() for s in a.skills) and speaks(a, language) and loads.get(a.id, 0) < a.max_concurrent
        ]
        if candidates:
            return min(candidates, key=lambda c: c[:3])[3]
    return None
