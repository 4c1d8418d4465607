"""The desk inside the real gateway: a customer asks the bot for an agent, the agent reads the
history over HTTP and answers, the customer receives it through the channel, a slow agent
triggers one acknowledgement (the desk's clock is moved by hand, nothing sleeps)."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from gateway.testing import make_settings, runtime_of

from .desk_plugin import DeskTestPlugin

ANNA = {"Authorization": "Bearer anna-token"}
BOB = {"X-VoiceGate-Agent": "bob"}
_ids = itertools.count(1)

AGENTS = {
    "ack_after_s": 30,
    "sweep_interval_s": 3600,  # the background sweeper runs once at start; the test drives the rest
    "team": [
        {"id": "anna", "name": "Anna", "skills": ["billing", "general"], "languages": ["it", "en"], "token": "anna-token"},
        {"id": "bob", "name": "Bob", "skills": ["general"], "languages": ["en"]},
    ],
    "templates": [{"name": "greet", "text": "Ciao {first_name}, sono {agent_name}. Il tuo livello: {tier}."}],
}


class Customer:
    def __init__(self, client: Any, sender: str) -> None:
        self.client, self.sender = client, sender

    async def say(self, text: str) -> list[str]:
        response = await self.client.post(
            "/channels/deskchat/messages",
            json={"sender": self.sender, "message_id": f"{self.sender}-{next(_ids)}", "text": text},
        )
        body = await response.json()
        assert response.status == 200, body
        return [r["text"] for r in body["replies"]]


async def _start(tmp_path: Any, gateway_client: Any, agents: dict[str, Any]) -> Any:
    settings = make_settings(
        tmp_path,
        plugins=[],
        channels={"deskchat": {}},
        bots=[{"use": "desk_handoff"}],
        crm=[{"use": "desk_crm"}],
        agents=agents,
    )
    return await gateway_client(settings, extra_plugins=[DeskTestPlugin()])


@pytest.fixture
async def gateway(tmp_path, gateway_client):
    return await _start(tmp_path, gateway_client, AGENTS)


def _later(seconds: float):
    return lambda: datetime.now(timezone.utc) + timedelta(seconds=seconds)


async def _get(client: Any, path: str, headers: dict[str, str], status: int = 200) -> Any:
    response = await client.get(path, headers=headers)
    body = await response.json()
    assert response.status == status, body
    return body


async def _post(client: Any, path: str, headers: dict[str, str], json: Any = None, status: int = 200) -> Any:
    response = await client.post(path, headers=headers, json=json)
    body = await response.json()
    assert response.status == status, body
    return body


async def test_handoff_history_reply_ack_release(gateway):
    runtime = runtime_of(gateway)
    desk, chat = runtime.desk, runtime.channels["deskchat"]
    maria = Customer(gateway, "maria")

    assert await maria.say("ciao") == ["bot heard: ciao"]
    # Billing + Italian: Anna is the only match. Same channel, no context lost.
    assert await maria.say("I need an agent for my bill") == ["I'm passing you to Anna, who can see our conversation so far."]

    mine = await _get(gateway, "/agents/me/conversations", ANNA)
    (summary,) = mine["assigned"]
    assert summary["customer_name"] == "Maria Verdi" and summary["channel"] == "deskchat"
    cid = summary["id"]
    detail = await _get(gateway, f"/agents/conversations/{cid}", ANNA)
    assert [m["body"].get("text") for m in detail["messages"]] == [
        "ciao",
        "bot heard: ciao",
        "I need an agent for my bill",
        "I'm passing you to Anna, who can see our conversation so far.",
    ]
    assert detail["customer"]["profile"]["attributes"] == {"tier": "gold"}
    assert detail["customer"]["identities"] == [{"channel": "deskchat", "sender": "maria"}]
    assert [e["type"] for e in detail["events"]][-1] == "handoff"

    # While an agent holds the conversation, the bot stays silent.
    assert await maria.say("hello? anyone?") == []

    # The agent is slow: exactly one acknowledgement after ack_after_s, none before.
    desk.clock = _later(10)
    assert await desk.sweep_once() == 0
    desk.clock = _later(31)
    assert await desk.sweep_once() == 1
    assert await desk.sweep_once() == 0
    assert chat.texts_for("maria") == [runtime.settings.agents.ack_text]

    # Anna answers with a template filled from the CRM profile; the channel delivers it.
    sent = await _post(gateway, f"/agents/conversations/{cid}/messages", ANNA, {"template": "greet"})
    assert sent["sent"]["text"] == "Ciao Maria, sono Anna. Il tuo livello: gold."
    assert chat.texts_for("maria")[-1] == "Ciao Maria, sono Anna. Il tuo livello: gold."

    # Now it is the customer's turn: however long they take, nobody nags them.
    desk.clock = _later(3600)
    assert await desk.sweep_once() == 0

    # Someone else cannot write into Anna's conversation.
    refused = await _post(gateway, f"/agents/conversations/{cid}/messages", BOB, {"text": "hi"}, status=409)
    assert "assigned to agent 'anna'" in refused["error"]

    # Back to the bot: the next message is answered by it again, in the same conversation.
    released = await _post(gateway, f"/agents/conversations/{cid}/release", ANNA)
    assert released["state"] == "with_bot"
    assert await maria.say("grazie") == ["bot heard: grazie"]
    assert (await runtime.store.conversation(cid)).state.value == "with_bot"


async def test_load_and_fairness_then_queue_and_claim(gateway):
    runtime = runtime_of(gateway)
    chat = runtime.channels["deskchat"]
    tom, maria, hans = Customer(gateway, "tom"), Customer(gateway, "maria"), Customer(gateway, "hans")
    # English, general: Anna and Bob are both free; team order picks Anna first.
    assert await tom.say("agent please") == ["I'm passing you to Anna, who can see our conversation so far."]
    # Anna now holds one conversation, Bob none; Maria speaks Italian, which only Anna does.
    assert await maria.say("agent please") == ["I'm passing you to Anna, who can see our conversation so far."]
    # German: nobody speaks it, so Hans is queued and told so.
    assert await hans.say("agent please") == [runtime.settings.agents.queued_text]

    bob_view = await _get(gateway, "/agents/me/conversations", BOB)
    assert bob_view["assigned"] == [] and [q["customer_name"] for q in bob_view["queue"]] == ["Hans Weber"]
    queued = bob_view["queue"][0]["id"]
    claimed = await _post(gateway, f"/agents/conversations/{queued}/claim", BOB)
    assert claimed["assigned_agent"] == "bob"
    await _post(gateway, f"/agents/conversations/{queued}/messages", BOB, {"text": "Hello Hans, Bob here."})
    assert chat.texts_for("hans") == ["Hello Hans, Bob here."]

    # Bob closes it; Hans's next message opens a new conversation with the bot.
    closed = await _post(gateway, f"/agents/conversations/{queued}/close", BOB, {"reason": "resolved"})
    assert closed["state"] == "closed"
    assert await hans.say("one more thing") == ["bot heard: one more thing"]
    assert (await _post(gateway, f"/agents/conversations/{queued}/messages", BOB, {"text": "x"}, status=409))


async def test_agent_api_errors_through_the_app(gateway):
    body = await _get(gateway, "/agents/me/conversations", {}, status=401)
    assert "Authorization: Bearer" in body["error"]
    body = await _get(gateway, "/agents/me/conversations", {"X-VoiceGate-Agent": "anna"}, status=401)
    assert "has a token" in body["error"]
    body = await _get(gateway, "/agents/conversations/0123456789abcdef", ANNA, status=404)
    assert "no conversation with id '0123456789abcdef'" in body["error"]
    templates = await _get(gateway, "/agents/templates", BOB)
    assert templates["templates"][0]["variables"] == ["first_name", "agent_name", "tier"]


async def test_queued_customer_is_given_to_the_agent_who_frees_up(tmp_path, gateway_client):
    agents = {**AGENTS, "team": [{**a, "max_concurrent": 1} for a in AGENTS["team"]]}
    gateway = await _start(tmp_path, gateway_client, agents)
    runtime = runtime_of(gateway)
    desk, chat = runtime.desk, runtime.channels["deskchat"]
    maria, tom = Customer(gateway, "maria"), Customer(gateway, "tom")
    assert await maria.say("agent please") == ["I'm passing you to Anna, who can see our conversation so far."]
    # Tom speaks English; Bob would do, but make him busy first with another English customer.
    other = Customer(gateway, "someone-else")
    assert await other.say("agent please") == ["I'm passing you to Bob, who can see our conversation so far."]
    assert await tom.say("agent please") == [runtime.settings.agents.queued_text]
    assert await desk.assign_queued_once() == 0

    anna_view = await _get(gateway, "/agents/me/conversations", ANNA)
    await _post(gateway, f"/agents/conversations/{anna_view['assigned'][0]['id']}/close", ANNA)
    assert await desk.assign_queued_once() == 1
    # Tom hears it through his channel, outside any request of his.
    assert chat.texts_for("tom") == ["I'm passing you to Anna, who can see our conversation so far."]
    anna_view = await _get(gateway, "/agents/me/conversations", ANNA)
    assert [c["customer_name"] for c in anna_view["assigned"]] == ["Tom Baker"] and anna_view["queue"] == []


async def test_texts_in_the_customers_language(tmp_path, gateway_client):
    """Texts given per language: the customer's (here from the CRM profile) picks one, else English."""
    localized = {
        **AGENTS,
        "handoff_text": {"en": "Passing you to {agent_name}.", "it": "Ti passo a {agent_name}."},
        "queued_text": {"en": "You are in the queue.", "it": "Sei in coda."},
        "ack_text": {"en": "Thanks for waiting.", "it": "Grazie dell'attesa."},
    }
    gateway = await _start(tmp_path, gateway_client, localized)
    runtime = runtime_of(gateway)
    desk, chat = runtime.desk, runtime.channels["deskchat"]
    maria, hans = Customer(gateway, "maria"), Customer(gateway, "hans")
    assert await maria.say("agent please") == ["Ti passo a Anna."]  # Italian profile
    assert await hans.say("agent please") == ["You are in the queue."]  # German: no German text, so English
    assert await maria.say("ci sei?") == [] and await hans.say("hello?") == []
    desk.clock = _later(31)
    assert await desk.sweep_once() == 2
    assert chat.texts_for("maria") == ["Grazie dell'attesa."]
    # Hans was told he is queued by the handoff itself, so he gets the plain thanks, not the queue text again.
    assert chat.texts_for("hans") == ["Thanks for waiting."]
