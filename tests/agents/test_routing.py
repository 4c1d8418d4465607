"""Choosing an agent: skill, language, load, fairness (pure function over database facts)."""

from __future__ import annotations

from gateway.agent_routing import pick_agent, primary_language, skill_tiers, speaks
from gateway.agent_settings import AgentProfile

ANNA = AgentProfile(id="anna", name="Anna", skills=("billing", "general"), languages=("it", "en"), max_concurrent=2)
BOB = AgentProfile(id="bob", name="Bob", skills=("general",), languages=("en",), max_concurrent=3)
CARLA = AgentProfile(id="carla", name="Carla", skills=("Billing",), languages=("it-IT",), max_concurrent=1)
TEAM = (ANNA, BOB, CARLA)


def pick(skill=None, language=None, loads=None, last=None, team=TEAM):
    agent = pick_agent(team, skill=skill, language=language, loads=loads or {}, last_assigned=last or {})
    return agent.id if agent else None


def test_language_tags_compare_by_primary_subtag():
    assert primary_language("it_IT") == "it"
    assert speaks(CARLA, "IT") and speaks(CARLA, "it-CH")
    assert not speaks(BOB, "it")
    assert speaks(BOB, None)  # unknown language: anyone


def test_skill_tiers_fall_back_to_general():
    assert skill_tiers(" Billing ") == ("billing", "general")
    assert skill_tiers("") == ("general",)


def test_skilled_agent_with_the_language_and_fewest_conversations_wins():
    # Anna and Carla have billing and speak Italian; Carla is idle, Anna has one.
    assert pick("billing", "it", loads={"anna": 1}) == "carla"
    # Skill names compare case-insensitively ("Billing" in Carla's profile).
    assert pick("BILLING", "it", loads={"anna": 1, "carla": 0}) == "carla"


def test_full_agents_are_skipped_and_the_general_tier_takes_over():
    # Both billing agents are at max_concurrent: fall back to general agents who speak the language.
    assert pick("billing", "en", loads={"anna": 2, "carla": 1}) == "bob"
    # ... but Bob does not speak Italian, so an Italian billing customer is queued.
    assert pick("billing", "it", loads={"anna": 2, "carla": 1}) is None


def test_nobody_speaks_the_language_means_queue():
    assert pick("general", "de") is None


def test_unknown_skill_goes_to_general_agents():
    assert pick("mortgages", "en", loads={"anna": 1}) == "bob"


def test_ties_go_to_the_least_recently_assigned_then_team_order():
    assert pick(None, "en", loads={"anna": 1, "bob": 1}, last={"anna": 7, "bob": 9}) == "anna"
    assert pick(None, "en", loads={"anna": 1, "bob": 1}, last={"anna": 9, "bob": 7}) == "bob"
    assert pick(None, "en", loads={"anna": 1, "bob": 1}, last={"anna": 3}) == "bob"  # never assigned goes first
    assert pick(None, "en") == "anna"  # all equal: team order


def test_empty_team_queues():
    assert pick("general", "en", team=()) is None
