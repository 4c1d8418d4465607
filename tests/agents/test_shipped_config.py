"""The operators' shipped configuration builds a working desk (templates parse, team is valid)."""

from __future__ import annotations

from pathlib import Path

from gateway.agents import AgentDesk
from gateway.config_loader import load_config

CONFIG = Path(__file__).resolve().parents[2] / "config" / "gateway.yaml"


async def test_config_gateway_yaml_agents_section_builds_a_desk(store, outbox, clock):
    environ = {"VOICEGATE_REST_SECRET": "a-long-enough-secret", "VOICEGATE_AGENT_TOKEN": "anna-secret-token"}
    settings = load_config(CONFIG, environ=environ)
    desk = AgentDesk(settings.agents, store, outbox, clock)
    assert desk.agent_by_token("anna-secret-token") is desk.agents["anna"]
    assert {t["name"] for t in desk.templates_json()} >= {"greet"}
