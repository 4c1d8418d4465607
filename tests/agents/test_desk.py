"""The desk against a real Store on SQLite: routing from database load, claims, and the
acknowledgement sweeper (driven with a hand-moved clock, never by sleeping)."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from gateway.agent_settings import AgentProfile, AgentTemplate
from gateway.agents import AgentDesk, BadAgentRequest, DeskConflict
from gateway.conversation import ConversationState
from gateway.db.agent_queries import ACK_AUTHOR, ACK_EVENT
from gateway.db.store import WriteSet
from gateway.errors import UnknownConversation

from .support import TEAM, TEMPLATES, Clock, RecordingOutbox, Seeder, make_settings

WITH_BOT = ConversationState.WITH_BOT
WITH_AGENT = ConversationState.WITH_AGENT


# --------------------------------------------------------------------------- routing


async def test_assign_uses_open_conversations_in_the_database(desk: AgentDesk, seed: Seeder):
    # Anna already holds one open conversation, Bob none: an English general handoff goes to Bob.
    await seed.conversation(agent="anna")
    agent = await desk.assign("c-new", skill=None, language="en")
    assert agent is not None and agent.id == "bob"


async def test_closed_and_bot_conversations_do_not_count_as_load(desk: AgentDesk, seed: Seeder):
    await seed.conversation(agent="anna", state=ConversationState.CLOSED)
    await seed.conversation(agent="anna", state=WITH_BOT)
    await seed.conversation(agent="bob")
    agent = await desk.assign("c-new", skill="general", language="en")
    assert agent is not None and agent.id == "anna"


async def test_ties_broken_by_least_recent_assignment_event(desk: AgentDesk, seed: Seeder):
    # Equal load (one each); Anna's assignment is the more recent one, so Bob is next.
    await seed.conversation(agent="bob")
    await seed.conversation(agent="anna")
    agent = await desk.assign("c-new", skill=None, language="en")
    assert agent is not None and agent.id == "bob"


async def test_burst_of_handoffs_is_spread_before_the_turns_commit(desk: AgentDesk):
    # Nothing is committed between these calls (the pipeline commits after assign returns),
    # yet the desk must not give all four to the same agent, nor exceed max_concurrent (2 each).
    picks = [await desk.assign(f"c{i}", skill=None, language="en") for i in range(5)]
    assert [p.id if p else None for p in picks] == ["anna", "bob", "anna", "bob", None]


async def test_full_team_queues_and_italian_tech_goes_to_carla(desk: AgentDesk, seed: Seeder):
    assert (await desk.assign("c1", skill="tech", language="it")).id == "carla"
    await seed.conversation(agent="carla")
    # Carla's max_concurrent is 1; the pending decision for c1 plus the committed one fill her,
    # and the general fallback has Anna (Italian speaker).
    assert (await desk.assign("c2", skill="tech", language="it")).id == "anna"


async def test_an_agent_who_cannot_sign_in_gets_no_conversations(store, outbox, clock):
    # "${VOICEGATE_AGENT_TOKEN_LUCA:-}" unset: Luca is on the team but locked out, so routing passes him over.
    luca = AgentProfile(id="luca", name="Luca", skills=("general",), languages=("it", "en"), token="")
    bob = AgentProfile(id="bob", name="Bob", skills=("general",), languages=("it",))
    desk = AgentDesk(make_settings(team=(luca, bob)), store, outbox, clock)
    assert (await desk.assign("c1", skill=None, language="it")).id == "bob"  # not Luca, listed first
    desk = AgentDesk(make_settings(team=(luca,)), store, outbox, clock)
    assert await desk.assign("c2", skill=None, language="it") is None


async def test_no_team_means_queue(store, outbox, clock):
    desk = AgentDesk(make_settings(team=()), store, outbox, clock)
    assert await desk.assign("c1", skill=None, language=None) is None


def test_duplicate_agent_ids_and_template_names_and_unsafe_placeholders_are_refused_by_the_settings():
    with pytest.raises(ValidationError, match="the same agent id is listed twice: anna"):
        make_settings(team=(TEAM[0], TEAM[0]))
    with pytest.raises(ValidationError, match="the same template name is listed twice"):
        make_settings(templates=(TEMPLATES[0], TEMPLATES[0]))
    with pytest.raises(ValidationError, match=r"placeholder \{a.b\} is not allowed"):
        AgentTemplate(name="x", text="{a.b}")


# --------------------------------------------------------------------------- agent actions


async def test_claim_takes_a_queued_conversation_once(desk: AgentDesk, seed: Seeder, outbox: RecordingOutbox):
    cid = await seed.conversation(agent=None)
    anna, bob = desk.agents["anna"], desk.agents["bob"]
    after = await desk.claim(anna, cid)
    assert after.assigned_agent == "anna" and after.state is WITH_AGENT
    assert (await desk.claim(anna, cid)).assigned_agent == "anna"  # idempotent
    with pytest.raises(DeskConflict, match="is assigned to agent 'anna'"):
        await desk.claim(bob, cid)
    assigned = [d for t, d, _ in await desk.store.events(cid) if t == "agent_assigned"]
    assert assigned == [{"agent_id": "anna", "author": "agent:anna"}]
    # The claim counts for the least-recently-assigned tie-break like any assignment.
    assert (await desk.queries.last_assignments(["anna"]))["anna"] > 0


async def test_simultaneous_claims_have_one_winner(store, seed: Seeder, outbox, clock):
    # Two desks, as on two instances, claim the same queued conversation at the same moment.
    desks = [AgentDesk(make_settings(), store, outbox, clock) for _ in range(2)]
    cid = await seed.conversation(agent=None)
    results = await asyncio.gather(
        desks[0].claim(desks[0].agents["anna"], cid), desks[1].claim(desks[1].agents["bob"], cid), return_exceptions=True
    )
    winners = [r for r in results if not isinstance(r, Exception)]
    losers = [r for r in results if isinstance(r, Exception)]
    assert len(winners) == 1 and len(losers) == 1 and isinstance(losers[0], DeskConflict)
    winner = winners[0].assigned_agent
    assert f"assigned to agent '{winner}'" in str(losers[0])
    assert (await store.conversation(cid)).assigned_agent == winner


async def test_conversations_of_an_agent_who_left_the_team_can_be_claimed(desk: AgentDesk, seed: Seeder):
    orphan = await seed.conversation(agent="zed")  # zed is no longer in agents.team
    assert (await desk.claim(desk.agents["bob"], orphan)).assigned_agent == "bob"


async def test_conversations_of_an_agent_whose_token_is_empty_can_be_claimed(store, outbox, clock, seed: Seeder):
    luca = AgentProfile(id="luca", name="Luca", token="")  # assigned before his token was emptied
    desk = AgentDesk(make_settings(team=(*TEAM, luca)), store, outbox, clock)
    stuck = await seed.conversation(agent="luca")
    assert (await desk.claim(desk.agents["bob"], stuck)).assigned_agent == "bob"
    taken = await seed.conversation(agent="anna")
    with pytest.raises(DeskConflict, match="assigned to agent 'anna'"):
        await desk.claim(desk.agents["bob"], taken)


async def test_claim_respects_max_concurrent(desk: AgentDesk, seed: Seeder):
    await seed.conversation(agent="carla")
    queued = await seed.conversation(agent=None)
    with pytest.raises(DeskConflict, match="max_concurrent is 1"):
        await desk.claim(desk.agents["carla"], queued)


async def test_only_the_assigned_agent_may_write(desk: AgentDesk, seed: Seeder):
    cid = await seed.conversation(agent="anna")
    queued = await seed.conversation(agent=None)
    with pytest.raises(DeskConflict, match="assigned to agent 'anna', not to you"):
        await desk.send(desk.agents["bob"], cid, text="hello")
    with pytest.raises(DeskConflict, match="claim it first"):
        await desk.send(desk.agents["bob"], queued, text="hello")
    with pytest.raises(UnknownConversation, match="no conversation with id 'nope'"):
        await desk.send(desk.agents["bob"], "nope", text="hello")


async def test_template_is_filled_from_the_crm_profile(desk: AgentDesk, seed: Seeder, outbox: RecordingOutbox):
    cid = await seed.conversation(
        agent="anna", profile={"display_name": "Maria Verdi", "attributes": {"tier": "gold"}}
    )
    sent = await desk.send(desk.agents["anna"], cid, template="greet")
    assert sent.text == "Hi Maria, I'm Anna Bianchi. How can I help?"
    (conv, messages, author), = outbox.pushes()
    assert conv == cid and author == "agent:anna"
    assert messages[0].template is not None and messages[0].template.name == "greet"
    with pytest.raises(BadAgentRequest, match="'account_number'"):
        await desk.send(desk.agents["anna"], cid, template="balance")
    with pytest.raises(BadAgentRequest, match="unknown template 'nope'.*balance, greet"):
        await desk.send(desk.agents["anna"], cid, template="nope")


async def test_release_requeue_and_close(desk: AgentDesk, seed: Seeder, outbox: RecordingOutbox):
    queued = await seed.conversation(agent="anna")
    after = await desk.requeue(desk.agents["anna"], queued)
    assert after.state is WITH_AGENT and after.assigned_agent is None
    cid = await seed.conversation(agent="anna")
    after = await desk.release(desk.agents["anna"], cid)
    assert after.state is WITH_BOT and after.assigned_agent is None
    assert ("agent_released", "anna") in [(t, d.get("agent_id")) for t, d, _ in await desk.store.events(cid)]
    with pytest.raises(DeskConflict, match="is with_bot"):
        await desk.close(desk.agents["anna"], cid)
    other = await seed.conversation(agent="anna")
    closed = await desk.close(desk.agents["anna"], other, reason="solved")
    assert closed.state is ConversationState.CLOSED
    assert ("close", other, "solved", "agent:anna") in outbox.calls


async def test_detail_shows_profile_identities_context_history_events(desk: AgentDesk, seed: Seeder, clock: Clock):
    cid = await seed.conversation(
        agent="anna", profile={"display_name": "Maria Verdi"}, context={"topic": "card"}, sender="+3912345"
    )
    await seed.inbound(cid, "my card is blocked")
    clock.advance(5)
    await seed.outbound(cid, "Looking into it", "agent:anna")
    detail = await desk.conversation_detail(cid)
    assert detail["customer"]["profile"]["display_name"] == "Maria Verdi"
    assert detail["customer"]["identities"] == [{"channel": "rest", "sender": "+3912345"}]
    assert detail["context"] == {"topic": "card"}
    assert [(m["direction"], m["body"]["text"]) for m in detail["messages"]] == [
        ("in", "my card is blocked"),
        ("out", "Looking into it"),
    ]
    assert detail["events"][0]["type"] == "handoff"
    assert detail["message_count"] == 2
    assert detail["conversation"]["assigned_agent"] == "anna"


async def test_desk_lists_mine_and_the_queue(desk: AgentDesk, seed: Seeder, clock: Clock):
    mine = await seed.conversation(agent="anna", profile={"display_name": "Maria"})
    await seed.inbound(mine, "hello?")
    queued = await seed.conversation(agent=None)
    await seed.conversation(agent="bob")
    assigned, queue = await desk.desk(desk.agents["anna"])
    assert [s.id for s in assigned] == [mine] and [s.id for s in queue] == [queued]
    assert assigned[0].customer_name == "Maria" and assigned[0].waiting and assigned[0].message_count == 1
    clock.advance(1)
    await seed.outbound(mine, "hi!", "agent:anna")
    assigned, _ = await desk.desk(desk.agents["anna"])
    assert not assigned[0].waiting


# --------------------------------------------------------------------------- acknowledgements


async def test_one_ack_after_ack_after_s_and_not_before(desk: AgentDesk, seed: Seeder, clock: Clock, outbox):
    cid = await seed.conversation(agent="anna")
    await seed.inbound(cid, "is anyone there?")
    clock.advance(44)
    assert await desk.sweep_once() == 0
    clock.advance(2)
    assert await desk.sweep_once() == 1
    assert outbox.pushes() == [(cid, outbox.pushes()[0][1], ACK_AUTHOR)]
    assert outbox.pushes()[0][1][0].text == desk.settings.ack_text
    # Time passes, the customer writes again, still no agent: same waiting stretch, no second ack.
    clock.advance(120)
    await seed.inbound(cid, "hello???")
    clock.advance(120)
    assert await desk.sweep_once() == 0
    assert len(outbox.pushes()) == 1
    assert [t for t, _, _ in await desk.store.events(cid)].count(ACK_EVENT) == 1


async def test_queued_customer_gets_the_queued_text(desk: AgentDesk, seed: Seeder, clock: Clock, outbox):
    cid = await seed.conversation(agent=None)
    await seed.inbound(cid, "I want a human")
    await seed.outbound(cid, "Passing you to an agent", "bot:demo")  # the handoff message is not an answer
    clock.advance(46)
    assert await desk.sweep_once() == 1
    assert outbox.pushes()[0][1][0].text == desk.settings.queued_text


async def test_queue_message_is_not_repeated_verbatim(desk: AgentDesk, seed: Seeder, clock: Clock, outbox):
    # The pipeline's handoff already told the customer they are queued: the ack thanks them instead.
    cid = await seed.conversation(agent=None)
    await seed.inbound(cid, "I want a human")
    await seed.outbound(cid, desk.settings.queued_text, "system")
    clock.advance(46)
    assert await desk.sweep_once() == 1
    assert outbox.pushes()[0][1][0].text == desk.settings.ack_text


async def test_release_loses_no_concurrent_write(desk: AgentDesk, seed: Seeder, store, clock: Clock):
    # A turn committing between the desk's read and write makes the desk's write stale; the
    # desk re-reads and releases on top of the turn's state rather than overwriting it.
    cid = await seed.conversation(agent="anna", context={"topic": "card"})
    real_conversation = store.conversation
    raced = False

    async def conversation_then_turn(conversation_id):
        nonlocal raced
        row = await real_conversation(conversation_id)
        if not raced:
            raced = True
            other = await real_conversation(conversation_id)
            other.context["note"] = "written by a customer turn"
            ws = WriteSet()
            ws.add_conversation(other, clock())
            await store.commit(ws)
        return row

    store.conversation = conversation_then_turn
    try:
        after = await desk.release(desk.agents["anna"], cid)
    finally:
        del store.conversation
    assert after.state is WITH_BOT
    assert after.context == {"topic": "card", "note": "written by a customer turn"}


async def test_never_nag_a_customer_whose_turn_it_is(desk: AgentDesk, seed: Seeder, clock: Clock, outbox):
    cid = await seed.conversation(agent="anna")
    await seed.inbound(cid, "question")
    clock.advance(10)
    await seed.outbound(cid, "Here is the answer. Anything else?", "agent:anna")
    clock.advance(3600)  # the customer is slow: nothing is sent
    assert await desk.sweep_once() == 0
    assert outbox.pushes() == []


async def test_a_new_stretch_after_the_agent_answered_gets_its_own_ack(desk, seed: Seeder, clock: Clock, outbox):
    cid = await seed.conversation(agent="anna")
    await seed.inbound(cid, "first")
    clock.advance(50)
    assert await desk.sweep_once() == 1
    clock.advance(5)
    await seed.outbound(cid, "answer", "agent:anna")
    clock.advance(5)
    await seed.inbound(cid, "follow-up")
    clock.advance(30)
    assert await desk.sweep_once() == 0  # not yet 45 s since the follow-up
    clock.advance(20)
    assert await desk.sweep_once() == 1
    assert len(outbox.pushes()) == 2


async def test_bot_held_and_closed_conversations_are_never_acked(desk, seed: Seeder, clock: Clock, outbox):
    for state in (WITH_BOT, ConversationState.CLOSED, ConversationState.AWAITING_VERIFICATION):
        cid = await seed.conversation(state=state)
        await seed.inbound(cid, "hi")
    clock.advance(1000)
    assert await desk.sweep_once() == 0


async def test_conversation_without_customer_messages_is_not_acked(desk, seed: Seeder, clock: Clock):
    await seed.conversation(agent="anna")
    clock.advance(1000)
    assert await desk.sweep_once() == 0


async def test_failed_delivery_is_not_retried(desk: AgentDesk, seed: Seeder, clock: Clock, outbox):
    # At most once: the ack is recorded before it is sent, so a failing channel never causes a
    # burst of acknowledgements on later sweeps.
    cid = await seed.conversation(agent="anna")
    await seed.inbound(cid, "hi")
    clock.advance(60)
    outbox.fail_push = ConnectionError("channel unreachable")
    assert await desk.sweep_once() == 0
    outbox.fail_push = None
    assert await desk.sweep_once() == 0
    assert len(outbox.pushes()) == 1


async def test_concurrent_sweepers_send_one_ack(store, seed: Seeder, clock: Clock, outbox):
    # Two desks (as on two gateway instances) share one database and sweep at the same moment.
    desks = [AgentDesk(make_settings(), store, outbox, clock) for _ in range(3)]
    cids = [await seed.conversation(agent="anna") for _ in range(3)]
    for cid in cids:
        await seed.inbound(cid, "hello")
    answered = await seed.conversation(agent="bob")  # other conversations' messages must not leak in
    await seed.inbound(answered, "question")
    await seed.outbound(answered, "answer", "agent:bob")
    clock.advance(60)
    results = await asyncio.gather(*(d.sweep_once() for d in desks))
    assert sum(results) == 3
    assert sorted(c for c, _, _ in outbox.pushes()) == sorted(cids)
    clock.advance(600)
    assert sum(await asyncio.gather(*(d.sweep_once() for d in desks))) == 0


async def test_run_sweeps_until_stopped(store, seed: Seeder, clock: Clock, outbox):
    desk = AgentDesk(make_settings(sweep_interval_s=0.01), store, outbox, clock)
    cid = await seed.conversation(agent="anna")
    await seed.inbound(cid, "hello")
    clock.advance(60)
    stop = asyncio.Event()
    task = asyncio.create_task(desk.run(stop))
    for _ in range(500):  # wait for the outcome, not for a duration
        if outbox.pushes():
            break
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert [c for c, _, _ in outbox.pushes()] == [cid]


# --------------------------------------------------------------------------- the queue


async def test_queued_conversation_goes_to_the_agent_who_frees_up(desk: AgentDesk, seed: Seeder, clock, outbox):
    busy = [await seed.conversation(agent=a) for a in ("anna", "anna", "bob", "bob")]
    clock.advance(1)
    first = await seed.conversation(agent=None, profile={"language": "en"})
    clock.advance(1)
    second = await seed.conversation(agent=None, profile={"language": "en"})
    assert await desk.assign_queued_once() == 0  # everyone is at max_concurrent
    await desk.close(desk.agents["bob"], busy[2])
    assert await desk.assign_queued_once() == 1
    # The longest waiting customer gets the free agent and is told who takes over.
    assert (await desk.store.conversation(first)).assigned_agent == "bob"
    assert (await desk.store.conversation(second)).assigned_agent is None
    assert outbox.pushes() == [(first, outbox.pushes()[0][1], "system")]
    assert outbox.pushes()[0][1][0].text == "I'm passing you to Bob, who can see our conversation so far."
    assert await desk.assign_queued_once() == 0


async def test_queue_respects_skill_and_language(desk: AgentDesk, seed: Seeder):
    german = await seed.conversation(agent=None, profile={"language": "de"})
    tech_it = await seed.conversation(agent=None, profile={"language": "it"}, skill="tech")
    assert await desk.assign_queued_once() == 1
    assert (await desk.store.conversation(german)).assigned_agent is None  # nobody speaks German: manual claim
    assert (await desk.store.conversation(tech_it)).assigned_agent == "carla"


async def test_concurrent_queue_drains_assign_and_announce_once(store, seed: Seeder, clock, outbox):
    desks = [AgentDesk(make_settings(), store, outbox, clock) for _ in range(3)]
    cid = await seed.conversation(agent=None, profile={"language": "en"})
    results = await asyncio.gather(*(d.assign_queued_once() for d in desks))
    assert sum(results) == 1
    assert [c for c, _, _ in outbox.pushes()] == [cid]


async def test_no_ack_when_the_agent_answers_between_record_and_send(desk: AgentDesk, seed: Seeder, clock, outbox):
    cid = await seed.conversation(agent="anna")
    await seed.inbound(cid, "hello")
    clock.advance(60)
    record = desk.queries.record_ack

    async def record_then_agent_answers(*args, **kwargs):
        due = await record(*args, **kwargs)
        await seed.outbound(cid, "Sorry for the wait!", "agent:anna")
        return due

    desk.queries.record_ack = record_then_agent_answers
    assert await desk.sweep_once() == 0
    assert outbox.pushes() == []



async def test_an_agent_fresh_from_the_queue_gets_ack_after_s_before_any_ack(desk: AgentDesk, seed: Seeder, clock, outbox):
    cid = await seed.conversation(agent=None, profile={"language": "en"})
    await seed.inbound(cid, "hello?")
    clock.advance(600)  # the customer waited in the queue (and was acknowledged) ...
    assert await desk.sweep_once() == 1
    assert await desk.assign_queued_once() == 1  # ... then an agent frees up and is announced
    clock.advance(10)
    assert await desk.sweep_once() == 0  # the new agent has ack_after_s to greet
    clock.advance(40)
    assert await desk.sweep_once() == 1
    assert [m[0].text for _, m, _ in outbox.pushes()] == [
        desk.settings.queued_text,
        "I'm passing you to Anna Bianchi, who can see our conversation so far.",
        desk.settings.ack_text,
    ]


def test_customer_texts_are_non_empty_one_or_per_language_and_handoffs_name_only_the_agent():
    assert make_settings(queued_text={"it": "Sei in coda."}).text("queued_text", "de") == "Sei in coda."  # the first
    assert make_settings(queued_text={"en": "Queued.", "IT": "In coda."}).text("queued_text", "it-IT") == "In coda."
    for bad in ({}, {"it": ""}, "", ["a"]):
        with pytest.raises(ValidationError) as info:
            make_settings(queued_text=bad)
        [error] = info.value.errors()  # one error, at the key itself (no union member tags in the path)
        assert error["loc"] == ("queued_text",) and error["type"] == "local_text"
    assert make_settings(handoff_text={"it": "Ti passo a {agent_name}."}).text("handoff_text", "it")
    with pytest.raises(ValidationError, match=r"can only use the placeholder \{agent_name\}"):
        make_settings(handoff_text={"en": "Passing you to {agent}."})
