"""The agents' JSON API over real HTTP (aiohttp test server), on a real Store."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web

from gateway.agents import AgentDesk
from gateway.conversation import ConversationState
from gateway.errors import GatewayError

from .support import Clock, RecordingOutbox, Seeder

ANNA = {"X-VoiceGate-Agent": "anna"}
BOB = {"X-VoiceGate-Agent": "bob"}
CARLA = {"Authorization": "Bearer carla-secret"}


@pytest.fixture
async def api(aiohttp_client: Any, desk: AgentDesk) -> Any:
    app = web.Application()
    agents = web.Application()
    agents.add_routes(desk.routes())
    app.add_subapp("/agents", agents)  # how the gateway app mounts the desk
    return await aiohttp_client(app)


async def _json(response: Any, status: int) -> Any:
    body = await response.json()
    assert response.status == status, body
    return body


@pytest.mark.parametrize(
    "headers, fragment",
    [
        ({}, "identify yourself"),
        ({"Authorization": "Bearer wrong"}, "matches no agent"),
        ({"Authorization": "Basic abc"}, "must be 'Bearer <token>'"),
        ({"X-VoiceGate-Agent": "zed"}, "no agent 'zed'"),
        ({"X-VoiceGate-Agent": "carla"}, "has a token"),  # a configured token cannot be bypassed
    ],
)
async def test_unidentified_requests_get_401(api, headers, fragment):
    response = await api.get("/agents/me/conversations", headers=headers)
    body = await _json(response, 401)
    assert fragment in body["error"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_bearer_token_identifies_the_agent(api):
    body = await _json(await api.get("/agents/me/conversations", headers=CARLA), 200)
    assert body["agent"]["id"] == "carla" and body["assigned"] == [] and body["queue"] == []


async def test_unknown_conversation_is_404_with_a_clear_message(api):
    for method, path in [
        ("GET", "/agents/conversations/nope"),
        ("POST", "/agents/conversations/nope/claim"),
        ("POST", "/agents/conversations/nope/close"),
        ("POST", "/agents/conversations/nope/release"),
        ("POST", "/agents/conversations/nope/requeue"),
    ]:
        body = await _json(await api.request(method, path, headers=ANNA), 404)
        assert "no conversation with id 'nope'" in body["error"] and "GET /agents/me/conversations" in body["error"]
    body = await _json(await api.post("/agents/conversations/nope/messages", json={"text": "hi"}, headers=ANNA), 404)
    assert "'nope'" in body["error"]


async def test_agent_sees_the_queue_claims_reads_and_replies(api, seed: Seeder, clock: Clock, outbox: RecordingOutbox):
    cid = await seed.conversation(agent=None, profile={"display_name": "Maria Verdi", "language": "it"})
    await seed.inbound(cid, "voglio parlare con una persona")
    desk_view = await _json(await api.get("/agents/me/conversations", headers=ANNA), 200)
    assert [c["id"] for c in desk_view["queue"]] == [cid] and desk_view["assigned"] == []
    assert desk_view["queue"][0]["waiting"] is True and desk_view["queue"][0]["customer_name"] == "Maria Verdi"

    claimed = await _json(await api.post(f"/agents/conversations/{cid}/claim", headers=ANNA), 200)
    assert claimed == {"id": cid, "state": "with_agent", "assigned_agent": "anna", "closed_at": None}
    taken = await _json(await api.post(f"/agents/conversations/{cid}/claim", headers=BOB), 409)
    assert "is assigned to agent 'anna'" in taken["error"]

    detail = await _json(await api.get(f"/agents/conversations/{cid}", headers=ANNA), 200)
    assert detail["customer"]["profile"]["display_name"] == "Maria Verdi"
    assert detail["messages"][-1]["body"]["text"] == "voglio parlare con una persona"
    assert detail["customer"]["template_variables"]["first_name"] == "Maria"

    sent = await _json(
        await api.post(
            f"/agents/conversations/{cid}/messages",
            json={"template": "greet", "buttons": [{"title": "Yes", "payload": "yes"}]},
            headers=ANNA,
        ),
        200,
    )
    assert sent["sent"]["text"] == "Hi Maria, I'm Anna Bianchi. How can I help?"
    (pushed_cid, messages, author), = outbox.pushes()
    assert pushed_cid == cid and author == "agent:anna"
    assert messages[0].buttons[0].payload == "yes"
    history = await _json(await api.get(f"/agents/conversations/{cid}", headers=ANNA), 200)
    assert history["messages"][-1]["author"] == "agent:anna"

    refused = await _json(await api.post(f"/agents/conversations/{cid}/messages", json={"text": "hi"}, headers=BOB), 409)
    assert "assigned to agent 'anna', not to you" in refused["error"]


async def test_missing_template_variable_is_400_naming_it(api, seed: Seeder, outbox: RecordingOutbox):
    cid = await seed.conversation(agent="anna", profile={"display_name": "Maria", "attributes": {"tier": "gold"}})
    body = await _json(
        await api.post(f"/agents/conversations/{cid}/messages", json={"template": "balance"}, headers=ANNA), 400
    )
    assert "'account_number'" in body["error"]
    assert outbox.pushes() == []


@pytest.mark.parametrize(
    "payload, fragment",
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b"", "body is empty"),
        (b'{"text": "a", "template": "greet"}', "exactly one of 'text'"),
        (b"{}", "exactly one of 'text'"),
        (b'{"txt": "hello"}', "unknown field 'txt'"),
        (b'{"text": "   "}', "non-empty string"),
        (b'{"text": "a", "buttons": {"title": "x"}}', "must be a list"),
        (b'{"text": "a", "buttons": [{"title": "x"}]}', "buttons[0]"),
        (b'{"template": "nope"}', "unknown template 'nope'"),
    ],
)
async def test_bad_message_requests_are_400_and_send_nothing(api, seed: Seeder, outbox, payload, fragment):
    cid = await seed.conversation(agent="anna")
    before = await seed.store.count_messages(cid)
    response = await api.post(
        f"/agents/conversations/{cid}/messages", data=payload, headers={**ANNA, "Content-Type": "application/json"}
    )
    body = await _json(response, 400)
    assert fragment in body["error"]
    assert outbox.pushes() == [] and await seed.store.count_messages(cid) == before


async def test_release_hands_back_to_the_bot_and_close_closes(api, seed: Seeder, outbox: RecordingOutbox):
    cid = await seed.conversation(agent="anna")
    released = await _json(await api.post(f"/agents/conversations/{cid}/release", headers=ANNA), 200)
    assert released["state"] == "with_bot" and released["assigned_agent"] is None
    other = await seed.conversation(agent="anna")
    closed = await _json(
        await api.post(f"/agents/conversations/{other}/close", json={"reason": "resolved"}, headers=ANNA), 200
    )
    assert closed["state"] == "closed" and closed["closed_at"] is not None
    assert ("close", other, "resolved", "agent:anna") in outbox.calls
    assert (await seed.store.conversation(other)).state is ConversationState.CLOSED


async def test_templates_list_their_variables(api):
    body = await _json(await api.get("/agents/templates", headers=BOB), 200)
    assert {t["name"]: t["variables"] for t in body["templates"]} == {
        "greet": ["first_name", "agent_name"],
        "balance": ["tier", "account_number"],
    }


async def test_a_gateway_failure_is_503_with_the_reason(api, seed: Seeder, outbox: RecordingOutbox):
    cid = await seed.conversation(agent="anna")
    outbox.fail_push = GatewayError("conversation is on channel 'sms', which is not enabled")
    body = await _json(await api.post(f"/agents/conversations/{cid}/messages", json={"text": "hi"}, headers=ANNA), 503)
    assert "channel 'sms'" in body["error"]


async def test_an_agent_with_an_empty_token_cannot_sign_in(aiohttp_client, store, outbox, clock):
    # config/gateway.yaml gives Luca "${VOICEGATE_AGENT_TOKEN_LUCA:-}": unset means "cannot sign in yet".
    from gateway.agent_settings import AgentProfile

    from .support import make_settings

    desk = AgentDesk(make_settings(team=(AgentProfile(id="luca", name="Luca", token=""),)), store, outbox, clock)
    app, agents = web.Application(), web.Application()
    agents.add_routes(desk.routes())
    app.add_subapp("/agents", agents)
    client = await aiohttp_client(app)
    for headers in ({"X-VoiceGate-Agent": "luca"}, {"Authorization": "Bearer "}, {"Authorization": "Bearer x"}):
        assert (await client.get("/agents/me/conversations", headers=headers)).status == 401
    # The header alone is refused for the right reason: no token is set yet, not "use your token".
    answer = await client.get("/agents/me/conversations", headers={"X-VoiceGate-Agent": "luca"})
    assert "agent 'luca' cannot sign in: their agents.team[].token is empty" in (await answer.json())["error"]
