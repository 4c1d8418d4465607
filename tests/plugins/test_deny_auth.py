"""The deny authenticator: a sensitive step is refused politely, with a live agent on offer."""

from __future__ import annotations

from gateway.components import AuthSession, AuthStatus
from gateway.testing import RestDriver, runtime_of
from voicegate_deny_auth.plugin import DenyAuthenticator, DenySettings

EURO = "€"


def session(language: str | None) -> AuthSession:
    return AuthSession(customer_id="u", conversation_id="c", channel="rest", intent="balance", language=language, state={})


async def test_refuses_in_the_customers_language_and_offers_an_agent() -> None:
    deny = DenyAuthenticator(DenySettings())
    step = await deny.start(session("it"))
    assert step.status is AuthStatus.DECLINED and not step.handoff
    assert "operatore" in step.messages[0].text
    assert [(b.title, b.payload) for b in step.messages[0].buttons] == [("Parla con un operatore", "agent")]
    english = await deny.start(session(None))
    assert english.messages[0].buttons[0].title == "Talk to an agent"
    assert await deny.forget("u") is False


async def test_handoff_setting_passes_to_an_agent_at_once() -> None:
    step = await DenyAuthenticator(DenySettings(handoff=True)).start(session("en"))
    assert step.status is AuthStatus.FAILED and step.handoff and not step.messages[0].buttons


async def test_balance_is_never_shown_and_the_agent_button_hands_off(demo_settings, gateway_client) -> None:
    settings = demo_settings(agents={"team": [{"id": "anna", "name": "Anna", "skills": ["general"], "languages": ["it", "en"]}]})
    client = await gateway_client(settings)
    bob = RestDriver(client, sender="bob")
    replies = await bob.say("what's my balance?")
    assert all(EURO not in r["text"] for r in replies)
    assert replies[-1]["buttons"] == [{"title": "Talk to an agent", "payload": "agent"}]
    handed = await bob.press("agent")
    assert handed[0]["text"] == "I'm passing you to a colleague."
    assert "Anna" in " ".join(r["text"] for r in handed)
    store = runtime_of(client).store
    customer_id = await store.customer_for("rest", "bob")
    (conversation,) = await store.conversations(customer_id=customer_id)
    assert conversation.state.value == "with_agent" and conversation.assigned_agent == "anna"


async def test_forget_request_is_confirmed(demo_settings, gateway_client) -> None:
    client = await gateway_client(demo_settings())
    replies = await RestDriver(client, sender="bob").say("please delete my voiceprint")
    assert replies[0]["text"] == "OK, deleting your voice data."
    assert len(replies) == 2  # the gateway's own confirmation follows (nothing was stored)
