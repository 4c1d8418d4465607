"""Routing by the language the customer writes in (not only the CRM profile's), and the
``on_handoff`` hook for assignments the desk's queue sweep makes on its own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway.agent_sweeps import QUEUE_REASON
from gateway.events import HandoffRequested
from gateway.hookspecs import hookimpl
from gateway.testing import RestDriver, make_settings, runtime_of

CONFIG = Path(__file__).resolve().parents[2] / "config"
CARLA = {"Authorization": "Bearer carla-token"}


class HandoffRecorder:
    __name__ = "handoff_recorder"

    def __init__(self) -> None:
        self.events: list[HandoffRequested] = []

    @hookimpl
    def on_handoff(self, event: HandoffRequested) -> None:
        self.events.append(event)


def _settings(tmp_path: Any, *, carla_max: int = 2) -> Any:
    return make_settings(
        tmp_path,
        plugins=["rest", "demo_bot"],  # no CRM: no profile language to fall back on
        bots=[{"use": "demo", "settings": {"flows": str(CONFIG / "flows.yaml")}}],
        agents={
            "sweep_interval_s": 3600,
            "team": [
                {"id": "bob", "name": "Bob", "skills": ["general"], "languages": ["en"], "token": "bob-token"},
                {"id": "carla", "name": "Carla", "skills": ["general"], "languages": ["it"], "token": "carla-token",
                 "max_concurrent": carla_max},
            ],
        },
    )


async def test_handoff_goes_to_an_agent_who_speaks_the_conversation_language(tmp_path, gateway_client):
    client = await gateway_client(_settings(tmp_path))
    replies = await RestDriver(client, sender="giulia").say("vorrei parlare con un operatore")
    assert "Carla" in replies[-1]["text"]
    replies = await RestDriver(client, sender="george").say("I want to talk to an operator")
    assert "Bob" in replies[-1]["text"]


async def test_queue_sweep_assignment_fires_on_handoff(tmp_path, gateway_client):
    recorder = HandoffRecorder()
    client = await gateway_client(_settings(tmp_path, carla_max=1), extra_plugins=[recorder])
    runtime = runtime_of(client)
    await RestDriver(client, sender="giulia").say("vorrei parlare con un operatore")
    queued = await RestDriver(client, sender="marco").say("voglio parlare con un operatore")
    assert "Carla" not in queued[-1]["text"]  # Carla is full; Bob does not speak Italian
    await runtime.notifier.drain()
    first, second = recorder.events
    assert (first.agent_id, second.agent_id) == ("carla", None)

    response = await client.post(f"/agents/conversations/{first.conversation_id}/close", headers=CARLA, json={})
    assert response.status == 200, await response.text()
    assert await runtime.desk.assign_queued_once() == 1
    await runtime.notifier.drain()
    third = recorder.events[-1]
    assert (third.conversation_id, third.agent_id, third.reason) == (second.conversation_id, "carla", QUEUE_REASON)
    assert third.channel == "rest" and third.customer_id == second.customer_id and third.skill == "general"
