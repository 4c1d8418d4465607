"""The voice authenticator's conversation through the real app (REST channel, demo bot, real model and speech):
the paths around the happy one — reminders, unusable notes, an inconsistent enrolment, the agent button,
passphrase mode — and start-up errors. The main journeys are in tests/e2e/."""

from __future__ import annotations

import pytest

from gateway.conversation import ConversationState
from gateway.errors import GatewayError
from gateway.testing import RestDriver, runtime_of
from support.chat import all_text, buttons, prompted_digits
from support.speech import DigitSpeaker, ogg_opus, shared_dir
from support.voice import seed_challenges

pytestmark = pytest.mark.model


async def _consented(client, sender: str = "bob") -> tuple[RestDriver, list[dict]]:
    seed_challenges(client, f"flow:{sender}")
    driver = RestDriver(client, sender=sender)
    await driver.say("What is my balance?")
    return driver, await driver.press("voice_consent_accept")


async def _customer(client, sender: str = "bob") -> str:
    return await runtime_of(client).store.customer_for("rest", sender)


async def test_text_while_a_note_is_expected_gets_a_reminder_and_costs_nothing(voice_settings, gateway_client) -> None:
    client = await gateway_client(voice_settings())
    driver, replies = await _consented(client)
    challenge = prompted_digits(replies)
    reminder = await driver.say("hello?")
    assert "Please send a voice note" in all_text(reminder)
    assert "To stop, write cancel." in all_text(reminder)  # the way out, where typing is all a customer can do
    assert prompted_digits(reminder) == challenge  # a reminder repeats the prompt, it does not draw a new one

    silent = (shared_dir() / "audio" / "voice-notes" / "silence-3s.ogg").read_bytes()
    replies = await driver.send_audio(silent, "audio/ogg")
    text = all_text(replies)
    assert "say:" in text.lower() and prompted_digits(replies) != challenge, text
    audit = await runtime_of(client).authenticator.store.audit_rows(await _customer(client))
    assert audit[-1]["decision"] == "unusable" and audit[-1]["reason"] == "silent"
    assert audit[-1]["score_band"] is None
    state = await runtime_of(client).authenticator.store.state(await _customer(client), runtime_of(client).authenticator.clock())
    assert state.failures == 0


async def test_an_inconsistent_enrolment_says_which_note_to_record_again(voice_settings, gateway_client) -> None:
    client = await gateway_client(voice_settings())
    driver, replies = await _consented(client)
    theo, other = DigitSpeaker("theo", seed=21), DigitSpeaker("nicolas", seed=21)
    voices = [theo, theo, other]
    accepted = 0
    while accepted < 3:
        replies = await driver.send_audio(ogg_opus(voices[accepted].say(prompted_digits(replies))))
        text = all_text(replies)
        if "didn't hear" in text:
            continue
        accepted += 1
    # The engine blames the note that agrees least with the others (usually the other speaker's): the message names
    # it and asks for exactly that note again.
    import re

    blamed = re.search(r"Voice note (\d) does not sound like the others", text)
    assert blamed and f"Note {blamed.group(1)} — say:" in text, text
    for _ in range(8):  # the customer records that note again, in their own voice
        replies = await driver.send_audio(ogg_opus(theo.say(prompted_digits(replies))))
        if "voiceprint is saved" in all_text(replies):
            break
    assert "voiceprint is saved" in all_text(replies), all_text(replies)
    vault = runtime_of(client).authenticator.vault
    customer = await _customer(client)
    assert (await vault.load(customer)).notes == 3 and await vault.enrolment_notes(customer) == []


async def test_the_agent_button_while_verifying_hands_over_at_once(voice_settings, gateway_client) -> None:
    client = await gateway_client(voice_settings())
    driver, replies = await _consented(client)
    assert ("Talk to an agent", "agent") in buttons(replies)
    replies = await driver.press("agent")
    assert "passing you to an agent" in all_text(replies)
    (conversation,) = await runtime_of(client).store.conversations(customer_id=await _customer(client))
    assert conversation.state is ConversationState.WITH_AGENT


@pytest.mark.parametrize("typed", ["talk to an agent", "Parla con un operatore, per favore!"])
async def test_asking_for_an_agent_in_words_while_verifying_hands_over(voice_settings, gateway_client, typed) -> None:
    # A channel without buttons (SMS) leaves only typing; the button's own title must work as typed text too.
    client = await gateway_client(voice_settings())
    driver, _ = await _consented(client)
    replies = await driver.say(typed)
    assert "passing you to an agent" in all_text(replies), all_text(replies)
    (conversation,) = await runtime_of(client).store.conversations(customer_id=await _customer(client))
    assert conversation.state is ConversationState.WITH_AGENT


async def test_deleting_wins_over_a_mention_of_an_agent(voice_settings, gateway_client) -> None:
    client = await gateway_client(voice_settings())
    driver, _ = await _consented(client)
    replies = await driver.say("Delete my voiceprint, I don't need an agent")
    assert "no voiceprint or voice data is kept" in all_text(replies), all_text(replies)
    assert "passing you to an agent" not in all_text(replies)
    (conversation,) = await runtime_of(client).store.conversations(customer_id=await _customer(client))
    assert conversation.state is ConversationState.WITH_BOT
    replies = await driver.say("What is my balance?")  # asks again: "persona" in a sentence is not a request
    replies = await driver.say("sono la stessa persona di prima")
    (conversation,) = await runtime_of(client).store.conversations(customer_id=await _customer(client))
    assert conversation.state is not ConversationState.WITH_AGENT, all_text(replies)


async def test_passphrase_mode_enrols_and_verifies_the_same_phrase(voice_settings, gateway_client) -> None:
    client = await gateway_client(voice_settings(mode="passphrase", passphrase="4 7 2 9"))
    driver, replies = await _consented(client)
    assert 'say: "4 7 2 9"' in all_text(replies)
    theo = DigitSpeaker("theo", seed=22)
    for _ in range(8):
        replies = await driver.send_audio(ogg_opus(theo.say("4729")))
        if "€" in all_text(replies):
            break
        assert 'say: "4 7 2 9"' in all_text(replies) and "didn't match" not in all_text(replies), all_text(replies)
    assert "it's you" in all_text(replies) and "€" in all_text(replies)


async def test_start_up_fails_clearly_without_keys_or_model(voice_settings, gateway_client, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("VOICEGATE_VOICEPRINT_KEYS", raising=False)
    with pytest.raises(GatewayError, match="VOICEGATE_VOICEPRINT_KEYS"):
        await gateway_client(voice_settings(key_file=None, create_key_file=False))
    with pytest.raises(GatewayError, match="voice authenticator: .*model"):
        await gateway_client(voice_settings(model_dir=str(tmp_path / "no-model-here")))
    with pytest.raises(GatewayError, match="not in the recogniser's English dictionary"):
        await gateway_client(voice_settings(mode="passphrase", passphrase="open xqzzyv sesame"))


async def test_cancel_or_delete_while_a_note_is_expected(voice_settings, gateway_client) -> None:
    client = await gateway_client(voice_settings())
    driver, replies = await _consented(client)
    theo = DigitSpeaker("theo", seed=23)
    replies = await driver.send_audio(ogg_opus(theo.say(prompted_digits(replies))))
    assert "say:" in all_text(replies).lower()
    vault = runtime_of(client).authenticator.vault
    customer = await _customer(client)

    replies = await driver.say("Cancella la mia impronta vocale!")
    assert "Fatto: non conservo più" in all_text(replies) or "no voiceprint or voice data is kept" in all_text(replies)
    assert await vault.enrolment_notes(customer) == []
    (conversation,) = await runtime_of(client).store.conversations(customer_id=customer)
    assert conversation.state is ConversationState.WITH_BOT

    driver, replies = await _consented(client)
    replies = await driver.say("cancel")
    assert "cancelled" in all_text(replies) or "annullato" in all_text(replies)
    (conversation,) = await runtime_of(client).store.conversations(customer_id=customer)
    assert conversation.state is ConversationState.WITH_BOT


async def test_an_italian_customer_is_asked_in_italian(voice_settings, gateway_client) -> None:
    client = await gateway_client(voice_settings())
    driver = RestDriver(client, sender="alice")  # config/customers.yaml: language it
    replies = await driver.say("Qual è il mio saldo?")
    assert "impronta vocale" in all_text(replies) and "365 giorni" in all_text(replies)
    assert [t for t, _ in buttons(replies)] == ["Accept / Accetto", "Decline / Rifiuto"]
    replies = await driver.press("voice_consent_accept")
    assert "Messaggio 1 — di':" in all_text(replies) and len(prompted_digits(replies)) == 4
    assert ("Parla con un operatore", "agent") in buttons(replies)
    # She says the digits in Italian, which the English recogniser cannot check: only voice and replay count.
    # (FSDD has English recordings only, so "other digits" stand in for words the recogniser would not match.)
    challenge = prompted_digits(replies)
    other = "".join(str((int(c) + 5) % 10) for c in challenge)
    replies = await driver.send_audio(ogg_opus(DigitSpeaker("theo", seed=24).say(other)))
    assert "Ricevuto, ancora 2" in all_text(replies), all_text(replies)
    # A note that cannot be used is explained in Italian too, not in the engine's English.
    silent = (shared_dir() / "audio" / "voice-notes" / "silence-3s.ogg").read_bytes()
    replies = await driver.send_audio(silent, "audio/ogg")
    assert all_text(replies).startswith("Non abbiamo sentito nulla."), all_text(replies)
    assert "We could not" not in all_text(replies) and "Di':" in all_text(replies)


async def test_a_locked_customer_goes_straight_to_an_agent(voice_settings, gateway_client) -> None:
    from gateway.components import AuthSession, AuthStatus

    client = await gateway_client(voice_settings(max_attempts=1, lockout_s=600))
    auth = runtime_of(client).authenticator
    await auth.store.record_failure("cust-1", auth.clock(), max_attempts=1, lockout_s=600)
    step = await auth.start(AuthSession(customer_id="cust-1", conversation_id="c", channel="rest",
                                        intent="balance", language="en", state={}))
    assert step.status is AuthStatus.LOCKED and step.handoff
    assert "passing you to an agent here in the chat" in step.messages[0].text
    assert "(up to 10 minutes)" in step.messages[0].text  # lockout_s=600: how long, not "for a while"
    assert (await auth.store.audit_rows("cust-1"))[-1]["decision"] == "locked"


async def test_voiceprints_past_the_retention_period_are_deleted(voice_settings, gateway_client) -> None:
    import time

    import numpy as np
    from voiceprints import Vault, Voiceprint

    client = await gateway_client(voice_settings(retention_days=30))
    auth = runtime_of(client).authenticator
    model = auth.engine.engine.model
    template = np.ones(192, dtype=np.float32) / np.sqrt(192)  # plumbing only: no voice is compared here

    def voiceprint() -> Voiceprint:
        return Voiceprint(template=template, model_id=model.model_id, model_revision=model.model_revision, notes=3)

    old_vault = Vault(auth.vault.engine, auth.vault.keyring, clock=lambda: time.time() - 31 * 86400)
    await old_vault.save("old-customer", voiceprint())
    await auth.vault.save("recent-customer", voiceprint())
    assert await auth.purge_expired() == 1
    assert await auth.vault.load("old-customer") is None
    assert await auth.vault.load("recent-customer") is not None
    assert (await auth.store.audit_rows("old-customer"))[-1]["reason"] == "retention"


async def test_an_overloaded_gateway_answers_busy_at_once_and_then_checks_the_note(voice_settings, gateway_client) -> None:
    """The speaker and the content check run as one admitted job: with the pool's only slot taken, a note gets "busy"
    (audited as unusable/busy, not counted) instead of waiting in a queue; once the slot is free it is checked."""
    import asyncio
    import threading

    client = await gateway_client(voice_settings(workers=1, queue_limit=1))
    driver, replies = await _consented(client)
    auth = runtime_of(client).authenticator
    release = threading.Event()
    blocker = asyncio.ensure_future(auth.engine.run(release.wait, 30))
    await asyncio.sleep(0.05)
    assert auth.engine.in_flight == 1
    theo = DigitSpeaker("theo", seed=31)
    try:
        busy = await driver.send_audio(ogg_opus(theo.say(prompted_digits(replies))))
    finally:
        release.set()
        await blocker
    assert "couldn't check that note right now" in all_text(busy), all_text(busy)
    audit = await auth.store.audit_rows(await _customer(client))
    assert (audit[-1]["decision"], audit[-1]["reason"]) == ("unusable", "busy")

    # The slot is free: the note is decoded, embedded and its words checked. Whether the recogniser hears the
    # digits right (about 9 notes in 10) is not this test's business: a checked note is "Got it" or "didn't hear".
    replies = await driver.send_audio(ogg_opus(theo.say(prompted_digits(busy))))
    assert "couldn't check that note right now" not in all_text(replies), all_text(replies)
    assert "Got it" in all_text(replies) or "didn't hear the requested words" in all_text(replies), all_text(replies)
    audit = await auth.store.audit_rows(await _customer(client))
    assert audit[-1]["reason"] != "busy", audit[-1]
    assert auth.engine.in_flight == 0


async def test_every_gateway_in_the_process_shares_one_loaded_model(voice_settings, gateway_client) -> None:
    """The model is loaded once per process and folder (however the folder is spelt): every app, and the voiceprints
    test session (tests/voiceprints/conftest.py), use the same copy."""
    from support.speech import model_dir
    from voicegate_voice_auth.plugin import shared_model

    client = await gateway_client(voice_settings())
    model = runtime_of(client).authenticator.engine.engine.model
    assert model is shared_model(model_dir())
    assert model is shared_model(f"{model_dir()}/../{model_dir().name}/")
