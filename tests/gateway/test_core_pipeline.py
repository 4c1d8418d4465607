"""The conversation pipeline through a real app: persistence, idempotency, bots, rendering, the gate."""

from __future__ import annotations

import asyncio

import gw_plugins as gp
import pytest

from gateway.conversation import ConversationState
from gateway.messages import OutboundMessage
from gateway.testing import RestDriver, make_settings, runtime_of


async def start(tmp_path, gateway_client, *extra_plugins, **section_options):
    plugin = gp.CorePlugin()
    settings = make_settings(tmp_path, **gp.core_sections(**section_options))
    client = await gateway_client(settings, extra_plugins=[plugin, *extra_plugins])
    return client, plugin, runtime_of(client)


# A team whose only agent takes billing in French: a general handoff (a locked verification) waits in the queue.
QUEUE_ONLY_TEAM = {"team": [{"id": "zoe", "name": "Zoe", "skills": ["billing"], "languages": ["fr"]}]}


def driver(client, sender="alice"):
    return RestDriver(client, sender=sender, path=gp.CHAT_PATH)


async def test_healthz_and_a_reply_is_persisted(tmp_path, gateway_client):
    client, _, runtime = await start(tmp_path, gateway_client)
    health = await client.get("/healthz")
    assert health.status == 200
    assert (await health.json())["channels"] == ["testchat"]

    replies = await driver(client).say("hello there")
    assert replies == [
        {"text": "Hi! How can I help?", "buttons": [{"title": "Opening hours", "payload": "hours"}, {"title": "Balance", "payload": "balance"}]}
    ]
    [conv] = await runtime.store.conversations()
    assert conv.state is ConversationState.WITH_BOT
    assert conv.context["greeted"] is True
    history = await runtime.store.history(conv.id)
    assert [(m.direction, m.author) for m in history] == [("in", "customer"), ("out", "bot:script")]
    assert history[0].body["text"] == "hello there"


async def test_duplicate_delivery_is_stored_and_answered_once(tmp_path, gateway_client):
    client, plugin, runtime = await start(tmp_path, gateway_client)
    chat = driver(client)
    first = await chat.say("hello", message_id="dup-1")
    again = await chat.say("hello", message_id="dup-1")
    assert again == first
    assert await runtime.store.count_messages() == 2
    assert len(plugin.built["script"].turns) == 1  # the bot saw it once


async def test_message_id_reused_by_another_sender_is_a_conflict(tmp_path, gateway_client):
    client, _, runtime = await start(tmp_path, gateway_client)
    await driver(client, "alice").say("hello", message_id="shared-id")
    response = await driver(client, "bob").post({"sender": "bob", "message_id": "shared-id", "text": "hi"})
    assert response.status == 409
    assert "unique id" in (await response.json())["error"]
    assert await runtime.store.count_messages() == 2


async def test_bots_are_asked_in_order_and_a_failing_bot_lets_the_next_answer(tmp_path, gateway_client):
    client, _, _ = await start(tmp_path, gateway_client)
    chat = driver(client)
    assert (await chat.say("pass"))[0]["text"] == "fallback answer"
    assert (await chat.say("boom"))[0]["text"] == "fallback answer"


async def test_one_conversation_in_order_many_concurrently(tmp_path, gateway_client):
    client, plugin, runtime = await start(tmp_path, gateway_client)
    senders = [f"customer-{i}" for i in range(8)]

    async def talk(sender):
        chat = driver(client, sender)
        return [(await chat.say(f"{sender} #{n}"))[0]["text"] for n in range(5)]

    async def burst(sender):  # one customer's messages sent all at once
        chat = driver(client, sender)
        return await asyncio.gather(*(chat.say(f"{sender} burst {n}") for n in range(6)))

    results = await asyncio.gather(*(talk(s) for s in senders), burst("eager"))
    for sender, texts in zip(senders, results):
        assert texts == [f"echo: {sender} #{n}" for n in range(5)]
    # every message of the burst got its own answer, and each conversation saw them one at a time
    assert sorted(r[0]["text"] for r in results[-1]) == sorted(f"echo: eager burst {n}" for n in range(6))
    convs = await runtime.store.conversations()
    assert len(convs) == 9
    for conv in convs:
        history = await runtime.store.history(conv.id)
        assert [m.direction for m in history] == ["in", "out"] * (len(history) // 2)
        for inbound, outbound in zip(history[::2], history[1::2]):
            assert outbound.in_reply_to == inbound.id
            assert outbound.body["text"] == "echo: " + inbound.body["text"]
    assert runtime.sequencer.active_keys == 0


async def test_channel_without_buttons_gets_numbered_options_and_digits_map_back(tmp_path, gateway_client):
    client, plugin, runtime = await start(tmp_path, gateway_client, buttons=False)
    chat = driver(client)
    [menu] = await chat.say("hello")
    assert menu == {"text": "Hi! How can I help?\n1. Opening hours\n2. Balance", "buttons": []}
    [conv] = await runtime.store.conversations()
    assert conv.context["offered_options"] == {"1": "hours", "2": "balance"}
    assert await chat.say("1") == [{"text": "pressed hours", "buttons": []}]
    assert plugin.built["script"].turns[-1].message.button == "hours"
    # the menu is used up: a digit is now just text
    assert (await chat.say("1"))[0]["text"] == "echo: 1"


async def test_sensitive_intent_waits_for_verification_then_resumes(tmp_path, gateway_client):
    client, plugin, runtime = await start(tmp_path, gateway_client, gp.Recorder())
    chat = driver(client)
    replies = await chat.say("what is my balance")
    assert [r["text"] for r in replies] == ["Please type your PIN."]
    assert all("€" not in r["text"] for r in replies)
    [conv] = await runtime.store.conversations()
    assert conv.state is ConversationState.AWAITING_VERIFICATION
    assert conv.pending_intent == "balance"
    assert conv.context["auth"]["pin"] == {"tries": 0}

    replies = await chat.say("1111")
    assert [r["text"] for r in replies] == ["Wrong PIN, try again."]
    assert (await runtime.store.conversation(conv.id)).context["auth"]["pin"] == {"tries": 1}

    replies = await chat.say("1234")
    assert [r["text"] for r in replies] == ["Thanks, verified.", "Your balance is 12.50 €"]
    conv = await runtime.store.conversation(conv.id)
    assert conv.state is ConversationState.WITH_BOT and conv.pending_intent is None
    assert conv.verified_until is not None
    resumed = plugin.built["script"].turns[-1]
    assert resumed.resumed_intent == "balance" and resumed.verified is True
    # verified: the next sensitive request is answered at once
    assert [r["text"] for r in await chat.say("balance again")] == ["Your balance is 12.50 €"]


async def test_declined_verification_returns_to_the_bot(tmp_path, gateway_client):
    client, _, runtime = await start(tmp_path, gateway_client)
    chat = driver(client)
    await chat.say("balance")
    assert [r["text"] for r in await chat.say("no")] == ["OK. Ask for an agent any time."]
    [conv] = await runtime.store.conversations()
    assert conv.state is ConversationState.WITH_BOT and conv.verified_until is None
    assert (await chat.say("hi"))[0]["text"] == "echo: hi"


async def test_locked_verification_hands_off_and_agent_conversation_gets_no_bot_reply(tmp_path, gateway_client):
    recorder = gp.Recorder()
    client, _, runtime = await start(tmp_path, gateway_client, recorder, agents=QUEUE_ONLY_TEAM)
    chat = driver(client)
    await chat.say("balance")
    await chat.say("0000")
    replies = await chat.say("9999")
    assert replies[0]["text"] == "Too many wrong PINs."
    assert replies[-1]["text"] == runtime.settings.agents.queued_text
    [conv] = await runtime.store.conversations()
    assert conv.state is ConversationState.WITH_AGENT and conv.assigned_agent is None
    assert await chat.say("hello?") == []
    assert (await runtime.store.history(conv.id))[-1].body["text"] == "hello?"
    await runtime.notifier.drain()
    kinds = [k for k, _ in recorder.events]
    assert "verification" in kinds and "handoff" in kinds
    verification = next(e for k, e in recorder.events if k == "verification")
    assert verification.status.value == "locked" and verification.authenticator == "pin"


@pytest.mark.parametrize("team", [[], [{"id": "luca", "name": "Luca", "token": ""}]], ids=["no team", "locked out"])
async def test_without_a_team_a_handoff_leaves_the_conversation_with_the_bot(tmp_path, gateway_client, team):
    """No agent who can sign in (none configured, or only agents whose token is empty): nobody could answer from
    the queue, so the customer is told at once and the bot goes on answering, instead of waiting forever."""
    recorder = gp.Recorder()
    client, _, runtime = await start(tmp_path, gateway_client, recorder, agents={"team": team})
    chat = driver(client)
    replies = await chat.say("agent please")
    assert replies[-1]["text"] == runtime.settings.agents.unavailable_text
    assert runtime.settings.agents.queued_text not in [r["text"] for r in replies]
    [conv] = await runtime.store.conversations()
    assert conv.state is ConversationState.WITH_BOT and conv.assigned_agent is None
    assert (await chat.say("hi"))[0]["text"] == "echo: hi"  # the bots still answer
    events = await runtime.store.events(conv.id)
    assert [(kind, data["skill"]) for kind, data, _ in events if kind.startswith("handoff")] == [
        ("handoff_unavailable", "billing")
    ]
    await runtime.notifier.drain()
    assert "handoff" not in [kind for kind, _ in recorder.events]


async def test_the_agent_deletes_verification_data_for_a_customer_who_asks_them(tmp_path, gateway_client):
    """While an agent holds the conversation the bots do not hear "forget me"; the agent does it from the desk."""
    team = {"team": [*QUEUE_ONLY_TEAM["team"], {"id": "ugo", "name": "Ugo", "skills": ["tech"], "languages": ["fr"]}]}
    client, plugin, runtime = await start(tmp_path, gateway_client, agents=team)
    chat = driver(client)
    await chat.say("agent please")
    [conv] = await runtime.store.conversations()
    assert conv.assigned_agent == "zoe"
    assert await chat.say("forget me") == []  # stored for the agent; no bot answers now
    path = f"/agents/conversations/{conv.id}/forget-verification"
    refused = await client.post(path, headers={"X-VoiceGate-Agent": "ugo"})
    assert refused.status == 409 and plugin.built["pin"].forgotten == []  # on the team, but not his conversation
    sent_before = len(await runtime.store.history(conv.id))
    plugin.built["pin"].fail_forget = True
    failed = await client.post(path, headers={"X-VoiceGate-Agent": "zoe"})
    assert failed.status == 503 and "could not delete" in (await failed.json())["error"]
    assert len(await runtime.store.history(conv.id)) == sent_before  # nothing told to the customer
    plugin.built["pin"].fail_forget = False
    answer = await client.post(path, headers={"X-VoiceGate-Agent": "zoe"})
    assert answer.status == 200 and await answer.json() == {"deleted": True}
    assert plugin.built["pin"].forgotten == [conv.customer_id]
    history = await runtime.store.history(conv.id)
    assert history[-1].direction == "out" and history[-1].body["text"] == "Done: I deleted the verification data stored for you."
    events = await runtime.store.events(conv.id)
    assert [data for kind, data, _ in events if kind == "verification_forgotten"] == [{"deleted": True, "author": "agent:zoe"}]
    [still] = await runtime.store.conversations()
    assert still.state is ConversationState.WITH_AGENT and still.assigned_agent == "zoe"


async def test_the_gate_answers_in_the_customers_language(tmp_path, gateway_client):
    # The CRM profile says Italian (gw_plugins' table CRM): the gate's own confirmation follows it.
    client, plugin, runtime = await start(tmp_path, gateway_client, crm=True)
    replies = await driver(client).say("forget me")
    assert [r["text"] for r in replies] == ["OK.", "Fatto: ho cancellato i dati di verifica salvati per te."]


async def test_handoff_from_bot_and_forget_and_close(tmp_path, gateway_client):
    recorder = gp.Recorder()
    client, plugin, runtime = await start(tmp_path, gateway_client, recorder, agents=QUEUE_ONLY_TEAM)
    chat = driver(client)
    replies = await chat.say("forget me")
    assert [r["text"] for r in replies] == ["OK.", "Done: I deleted the verification data stored for you."]
    assert plugin.built["pin"].forgotten == [(await runtime.store.conversations())[0].customer_id]

    assert [r["text"] for r in await chat.say("bye")] == ["Bye!"]
    assert await runtime.store.conversations(states=[ConversationState.WITH_BOT]) == []
    # a new message opens a new conversation
    await chat.say("agent please")
    [conv] = await runtime.store.conversations(states=[ConversationState.WITH_AGENT])
    await runtime.notifier.drain()
    handoff = next(e for k, e in recorder.events if k == "handoff")
    assert handoff.skill == "billing" and handoff.conversation_id == conv.id
    closed = next(e for k, e in recorder.events if k == "closed")
    assert closed.reason == "closed by bot 'script'"


async def test_crm_profile_is_cached_with_ttl(tmp_path, gateway_client):
    clock_now = [None]
    from datetime import datetime, timedelta, timezone

    start_time = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)
    clock_now[0] = start_time
    plugin = gp.CorePlugin()
    settings = make_settings(tmp_path, **gp.core_sections(crm=True))
    from aiohttp.test_utils import TestClient, TestServer

    from gateway.app import create_app

    app = create_app(settings, extra_plugins=[plugin], clock=lambda: clock_now[0])
    async with TestClient(TestServer(app)) as client:
        chat = driver(client)
        await chat.say("hello")
        await chat.say("hello again")
        crm = plugin.built["table"]
        assert crm.lookups == 1
        turn = plugin.built["script"].turns[-1]
        assert turn.customer.profile.display_name == "Alice"
        assert turn.customer.profile.attributes == {"tier": "gold"}
        clock_now[0] = start_time + timedelta(seconds=61)
        await chat.say("later")
        assert crm.lookups == 2
        runtime = runtime_of(client)
        [conv] = await runtime.store.conversations()
        customer, identities = await runtime.store.customer(conv.customer_id)
        assert customer.profile["display_name"] == "Alice"
        assert identities == [("testchat", "alice")]


async def test_failing_crm_does_not_stop_the_bot(tmp_path, gateway_client):
    plugin = gp.CorePlugin()
    sections = gp.core_sections(crm=True)
    sections["crm"][0]["settings"]["fail"] = True
    client = await gateway_client(make_settings(tmp_path, **sections), extra_plugins=[plugin])
    assert (await driver(client).say("hi"))[0]["text"] == "echo: hi"


async def test_push_close_and_set_agent(tmp_path, gateway_client):
    recorder = gp.Recorder()
    client, plugin, runtime = await start(tmp_path, gateway_client, recorder, buttons=False)
    await driver(client).say("agent")
    [conv] = await runtime.store.conversations()
    pipeline = runtime.pipeline
    await pipeline.set_agent(conv.id, "anna", author="agent:anna")
    await pipeline.push(conv.id, [OutboundMessage(text="Hi, Anna here", buttons=())], author="agent:anna")
    from gateway.messages import Button

    await pipeline.push(conv.id, [OutboundMessage(text="Pick", buttons=(Button("Yes", "y"), Button("No", "n")))], author="agent:anna")
    chat = plugin.built["testchat"]
    assert [(r, m.text) for r, m in chat.delivered] == [("alice", "Hi, Anna here"), ("alice", "Pick\n1. Yes\n2. No")]
    stored = await runtime.store.conversation(conv.id)
    assert stored.assigned_agent == "anna" and stored.context["offered_options"] == {"1": "y", "2": "n"}
    # the customer's digit answer reaches the agent's conversation as the payload
    assert await driver(client).say("2") == []
    await pipeline.close_conversation(conv.id, reason="solved", author="agent:anna")
    assert (await runtime.store.conversation(conv.id)).state is ConversationState.CLOSED
    await runtime.notifier.drain()
    assert any(k == "closed" and e.reason == "solved" for k, e in recorder.events)
    authors = [m.author for m in await runtime.store.history(conv.id)]
    assert authors.count("agent:anna") == 2


async def test_unknown_conversation_and_failed_delivery(tmp_path, gateway_client):
    from gateway.errors import UnknownConversation

    client, plugin, runtime = await start(tmp_path, gateway_client)
    with pytest.raises(UnknownConversation, match="no conversation with id 'nope'"):
        await runtime.pipeline.push("nope", [OutboundMessage(text="x")], author="agent:anna")
    with pytest.raises(UnknownConversation):
        await runtime.pipeline.close_conversation("nope", reason="x", author="agent:anna")
    await driver(client, "offline").say("agent")
    [conv] = await runtime.store.conversations()
    before = await runtime.store.count_messages()
    await runtime.pipeline.push(conv.id, [OutboundMessage(text="are you there?")], author="agent:anna")
    assert await runtime.store.count_messages() == before + 1  # stored even though not delivered
    assert "delivery_failed" in [t for t, _, _ in await runtime.store.events(conv.id)]


async def test_an_old_duplicate_beyond_the_recent_ids_is_still_answered_once(tmp_path, gateway_client):
    client, plugin, runtime = await start(tmp_path, gateway_client)
    chat = driver(client)
    first = await chat.say("hello", message_id="old-1")
    await chat.say("something else")
    runtime.pipeline.cache._recent.clear()  # as if many newer messages had pushed it out
    assert await chat.say("hello", message_id="old-1") == first
    assert await runtime.store.count_messages() == 4
    assert (await chat.say("and now"))[0]["text"] == "echo: and now"


async def test_a_write_behind_the_cache_is_fenced_and_the_turn_rerun(tmp_path, gateway_client):
    from gateway.db.store import WriteSet

    client, plugin, runtime = await start(tmp_path, gateway_client)
    chat = driver(client)
    await chat.say("hello")
    [conv] = await runtime.store.conversations()
    # another writer (the desk, another process) hands the conversation to an agent directly
    conv.state, conv.assigned_agent = ConversationState.WITH_AGENT, "anna"
    ws = WriteSet()
    ws.add_conversation(conv, conv.updated_at)
    await runtime.store.commit(ws)
    assert await chat.say("anyone?") == []  # the cached WITH_BOT row was stale: no bot answer
    stored = await runtime.store.conversation(conv.id)
    assert stored.state is ConversationState.WITH_AGENT and stored.assigned_agent == "anna"
    assert await runtime.store.count_messages(conv.id) == 3


async def test_inbox_rejects_unknown_channels_and_bad_ids_and_agents_cannot_write_to_closed(tmp_path, gateway_client):
    from gateway.errors import InboundRejected
    from gateway.messages import InboundMessage
    from gateway.pipeline import ClosedConversation

    client, _, runtime = await start(tmp_path, gateway_client)
    inbox = runtime.pipeline
    with pytest.raises(InboundRejected, match="channel 'sms' is not enabled") as info:
        await inbox.receive(InboundMessage("sms", "alice", "m1", text="hi"))
    assert info.value.status == 404
    with pytest.raises(InboundRejected, match="'sender' must be a non-empty string"):
        await inbox.receive(InboundMessage("testchat", "", "m1", text="hi"))
    with pytest.raises(InboundRejected, match="'message_id' must be a non-empty string of at most 255"):
        await inbox.receive(InboundMessage("testchat", "alice", "x" * 300, text="hi"))
    assert await runtime.store.count_messages() == 0

    await driver(client).say("bye")  # the bot closes the conversation
    [conv] = await runtime.store.conversations()
    with pytest.raises(ClosedConversation):
        await inbox.push(conv.id, [OutboundMessage(text="late")], author="agent:anna")
    with pytest.raises(ClosedConversation):
        await inbox.set_agent(conv.id, "anna", author="agent:anna")
    await inbox.close_conversation(conv.id, reason="again", author="agent:anna")  # no-op
    assert await runtime.store.count_messages(conv.id) == 2
