"""The demo bot on the real config/flows.yaml: intents and language in Italian and English,
the sensitive balance, handoff skills, the forget action, and the euro-sign rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.components import BotReply, BotTurn
from gateway.conversation import ConversationState, ConversationView, CustomerProfile, CustomerView
from gateway.errors import ConfigError
from gateway.messages import Attachment, AttachmentKind, InboundMessage
from voicegate_demo_bot.bot import DemoBot, _euros
from voicegate_demo_bot.flows import EURO, load_flows
from voicegate_demo_bot.text import fold, same_word, tokens

ALICE = CustomerProfile(display_name="Alice Rossi", language="it", attributes={"balance_eur": 1234.56})
BOB = CustomerProfile(display_name="Bob Smith", language="en", attributes={"balance_eur": "87.1"})


@pytest.fixture(scope="module")
def bot(request: pytest.FixtureRequest) -> DemoBot:
    config = Path(request.config.rootpath) / "config" / "flows.yaml"
    return DemoBot(load_flows(config))


def turn(text: str | None = None, *, profile: CustomerProfile = CustomerProfile(), verified: bool = False,
         button: str | None = None, resumed: str | None = None, context: dict[str, Any] | None = None,
         attachments: tuple[Attachment, ...] = ()) -> BotTurn:
    message = InboundMessage(channel="rest", sender="x", message_id="m", text=text, button=button, attachments=attachments)
    conversation = ConversationView(id="c", customer_id="u", channel="rest", state=ConversationState.WITH_BOT,
                                    context=context or {}, verified_until=None)
    return BotTurn(message=message, conversation=conversation,
                   customer=CustomerView(id="u", identities=(("rest", "x"),), profile=profile),
                   verified=verified, resumed_intent=resumed)


async def ask(bot: DemoBot, text: str | None = None, **kwargs: Any) -> BotReply:
    reply = await bot.handle(turn(text, **kwargs))
    assert reply is not None
    return reply


def test_text_folding_and_stems() -> None:
    assert fold("Perché È COSÌ") == "perche e cosi"
    assert tokens("Qual è l'orario d'apertura?") == ["qual", "e", "l", "orario", "d", "apertura"]
    assert same_word("orari", "orario") and same_word("balance", "balances")
    assert not same_word("hour", "house") and not same_word("saldo", "salve")


@pytest.mark.parametrize(
    ("text", "intent", "language"),
    [
        ("Hello!", "greeting", "en"),
        ("good morning", "greeting", "en"),
        ("Ciao", "greeting", "it"),
        ("Buongiorno!", "greeting", "it"),
        ("What are your opening hours?", "hours", "en"),
        ("when are you open on saturday", "hours", "en"),
        ("Quali sono gli orari di apertura?", "hours", "it"),
        ("A che ora chiudete?", "hours", "it"),
        ("What's my balance?", "balance", "en"),
        ("hi, how much money do I have", "balance", "en"),
        ("Qual è il mio saldo?", "balance", "it"),
        ("quanto ho sul conto", "balance", "it"),
        ("I want to talk to a real person", "agent", "en"),
        ("vorrei parlare con un operatore", "agent", "it"),
        ("Please delete my voiceprint", "forget_voiceprint", "en"),
        ("Cancella la mia impronta vocale", "forget_voiceprint", "it"),
    ],
)
async def test_intents_and_language_in_both_languages(bot: DemoBot, text: str, intent: str, language: str) -> None:
    reply = await ask(bot, text)
    assert reply.intent is not None and reply.intent.name == intent
    assert reply.context["language"] == language


async def test_accents_do_not_matter(bot: DemoBot) -> None:
    plain = await ask(bot, "qual e il mio saldo", verified=True, profile=ALICE)
    accented = await ask(bot, "QUAL È IL MIO SALDO", verified=True, profile=ALICE)
    assert plain.messages == accented.messages


async def test_replies_are_short_and_in_the_customers_language(bot: DemoBot) -> None:
    it = await ask(bot, "ciao", profile=ALICE)
    assert it.messages[0].text == "Ciao Alice! Come posso aiutarti?"
    assert [b.payload for b in it.messages[0].buttons] == ["hours", "balance", "agent"]
    assert [b.title for b in it.messages[0].buttons][0] == "Orari"
    en = await ask(bot, "hello")  # no name known: no dangling space
    assert en.messages[0].text == "Hi! How can I help?"
    assert all(len(m.text) <= 160 for m in it.messages + en.messages)


async def test_answers_that_depend_on_nothing_personal_are_built_once(bot: DemoBot) -> None:
    """Opening hours read the same for everyone: one shared, immutable answer per language. A greeting names the
    customer and a verified balance shows theirs, so those are built for each message."""
    first = await ask(bot, "what are your opening hours?", profile=ALICE, context={"language": "en"})
    again = await ask(bot, "what are your opening hours?", profile=BOB)
    assert again is first and first.messages[0].text.startswith("We're open")
    with pytest.raises(TypeError):
        first.context["language"] = "it"  # type: ignore[index]
    italian = await ask(bot, "a che ora aprite?", profile=ALICE)
    assert italian is not first and italian.context == {"language": "it"}
    assert (await ask(bot, "hello", profile=BOB)).messages[0].text == "Hi Bob! How can I help?"
    assert (await ask(bot, "hello", profile=ALICE, context={"language": "en"})).messages[0].text == "Hi Alice! How can I help?"
    gated = await ask(bot, "my balance please", profile=BOB)
    assert gated.messages == () and (await ask(bot, "my balance please", profile=ALICE, context={"language": "en"})) is gated
    shown = [(await ask(bot, "my balance please", profile=p, verified=True, context={"language": "en"})).messages[0].text
             for p in (BOB, ALICE)]
    assert shown == ["Your balance is €87.10.", "Your balance is €1,234.56."]


async def test_language_falls_back_to_conversation_then_profile(bot: DemoBot) -> None:
    # A button press shows no language: the conversation's wins over the profile's.
    reply = await ask(bot, button="hours", profile=ALICE, context={"language": "en"})
    assert reply.messages[0].text.startswith("We're open")
    reply = await ask(bot, button="hours", profile=ALICE)
    assert reply.messages[0].text.startswith("Siamo aperti")
    reply = await ask(bot, button="hours")
    assert reply.messages[0].text.startswith("We're open")  # flows.yaml default_language


async def test_balance_is_sensitive_and_computed_only_when_verified(bot: DemoBot) -> None:
    unverified = await ask(bot, "my balance please", profile=BOB)
    assert unverified.intent is not None and unverified.intent.sensitive
    assert unverified.messages == ()
    verified = await ask(bot, "my balance please", profile=BOB, verified=True)
    assert verified.messages[0].text == "Your balance is €87.10."
    italian = await ask(bot, "il mio saldo", profile=ALICE, verified=True)
    assert italian.messages[0].text == "Il tuo saldo è 1.234,56 €."


async def test_resumed_intent_is_fulfilled_whatever_the_message(bot: DemoBot) -> None:
    note = Attachment(kind=AttachmentKind.AUDIO, mime="audio/ogg", data=b"OggS")
    reply = await ask(bot, None, attachments=(note,), profile=ALICE, verified=True, resumed="balance",
                      context={"language": "it"})
    assert reply.intent is not None and reply.intent.name == "balance"
    assert reply.messages[0].text == "Il tuo saldo è 1.234,56 €."


async def test_missing_balance_offers_an_agent_without_euro(bot: DemoBot) -> None:
    carla = CustomerProfile(display_name="Carla", language="it", attributes={"balance_eur": "n/a"})
    reply = await ask(bot, "saldo", profile=carla, verified=True)
    assert EURO not in reply.messages[0].text
    assert [b.payload for b in reply.messages[0].buttons] == ["agent"]


async def test_agent_handoff_picks_a_skill(bot: DemoBot) -> None:
    general = await ask(bot, "talk to an agent")
    assert general.handoff is not None and general.handoff.skill == "general"
    billing = await ask(bot, "operatore per una fattura sbagliata")
    assert billing.handoff is not None and billing.handoff.skill == "billing"
    assert billing.messages[0].text == "Ti passo a un collega."


async def test_forget_voiceprint_carries_the_core_action(bot: DemoBot) -> None:
    reply = await ask(bot, "forget my voice")
    assert reply.intent is not None and reply.intent.action == "forget_verification"


async def test_fallback_and_attachment_offer_an_agent(bot: DemoBot) -> None:
    fallback = await ask(bot, "purple elephants dancing")
    assert fallback.intent is not None and fallback.intent.name == "fallback"
    assert "agent" in [b.payload for b in fallback.messages[0].buttons]
    note = Attachment(kind=AttachmentKind.AUDIO, mime="audio/ogg", data=b"OggS")
    attachment = await ask(bot, None, attachments=(note,))
    assert [b.payload for b in attachment.messages[0].buttons] == ["agent"]
    quiet = DemoBot(bot.flows, answer_unmatched=False)
    assert await quiet.handle(turn("purple elephants dancing")) is None


async def test_only_the_balance_answer_contains_the_euro_sign(bot: DemoBot) -> None:
    rich = CustomerProfile(display_name="€vil Name", language="en", attributes={"balance_eur": 10})
    said: list[tuple[str, str]] = []
    for intent in bot.flows.intents:
        for language in ("en", "it"):
            reply = await ask(bot, button=intent.name, profile=rich, verified=True, context={"language": language})
            said += [(intent.name, m.text) for m in reply.messages]
            said += [(intent.name, b.title) for m in reply.messages for b in m.buttons]
    for text in ("xyzzy", "ciao"):
        reply = await ask(bot, text, profile=rich)
        said += [("other", m.text) for m in reply.messages]
    with_euro = {name for name, text in said if EURO in text}
    assert with_euro == {"balance"}


def test_euro_formatting() -> None:
    assert _euros(1234.5, "en") == "€1,234.50"
    assert _euros("1234567.891", "it") == "1.234.567,89 €"
    assert _euros(-5, "en") == "-€5.00"
    assert _euros(None, "en") is None and _euros("abc", "en") is None and _euros(True, "en") is None


@pytest.mark.parametrize(
    ("mutation", "expected"),
    [
        (lambda t: t.replace("We're open Mon-Fri", "We're open for 5 € Mon-Fri"), "contains '€'"),
        (lambda t: t.replace("We're open Mon-Fri", "We're open {balance} Mon-Fri"), "not sensitive"),
        (lambda t: t.replace("buttons: [balance, agent]}", "buttons: [balance, nowhere]}", 1), "button 'nowhere'"),
        (lambda t: t.replace("  - name: hours", "  - name: greeting", 1), "repeated: greeting"),
        (lambda t: t.replace("min_score: 0.6", "min_score: 2"), "min_score"),
        (lambda t: t.replace("stopwords:", "stop_words:"), "stop_words"),
    ],
)
def test_flow_mistakes_are_start_up_errors(tmp_path: Path, request: pytest.FixtureRequest, mutation: Any,
                                           expected: str) -> None:
    original = (Path(request.config.rootpath) / "config" / "flows.yaml").read_text(encoding="utf-8")
    changed = mutation(original)
    assert changed != original
    path = tmp_path / "flows.yaml"
    path.write_text(changed, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_flows(path)
    assert expected in str(caught.value)
    assert str(path) in str(caught.value)


def test_missing_flows_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_flows(tmp_path / "nope.yaml")


def test_set_based_matching_agrees_with_comparing_every_word(bot: DemoBot) -> None:
    """The matcher's word and stem index is an optimisation of "any message word is the same_word": same scores,
    same intent; its word -> language table gives the language that counting each language's own words gives."""
    matcher = bot.matcher
    flows = bot.flows
    sentences = [t for i in flows.intents for by in (i.keywords, i.examples) for ts in by.values() for t in ts]
    sentences += ["what are your opening hours?", "ciao, a che ora aprite?", "operatori gentilissimi", "orari",
                  "balances please", "house", "hour", "no", "si grazie", "boh", "I want to speak to someone real"]
    for text in sentences:
        words = tokens(text)
        scores = matcher.phrase_scores(words)  # only the phrases its index points to; the others score 0
        expected_by_intent = []
        number = 0
        for intent, phrases in matcher._phrases:
            intent_best = 0.0
            for phrase in phrases:
                found = sum(1 for w, _ in phrase.words if any(same_word(w, m) for m in words))
                expected = (1.0 if found == len(phrase.words) else 0.0) if phrase.exact else found / len(phrase.words)
                assert scores.get(number, 0.0) == expected, (text, intent.name, phrase)
                intent_best, number = max(intent_best, expected), number + 1
            expected_by_intent.append(intent_best)
        assert number == len(matcher._numbered)
        ranked = [(expected_by_intent[order], intent.priority, -order, intent.name)
                  for order, (intent, phrases) in enumerate(matcher._phrases)]
        best = max((r for r in ranked if r[0] >= flows.min_score), default=None)
        found = matcher.match(text)  # scores only the phrases its word index points to
        assert (found.intent.name, found.score) == (best[3], best[0]) if best else found is None, text
        vocab = matcher._vocabulary
        for lang, own in matcher._own_words.items():
            assert own == {w for w in vocab[lang] if not any(w in v for o, v in vocab.items() if o != lang)}
        counts = sorted(((sum(w in own for w in words), lang) for lang, own in matcher._own_words.items()), reverse=True)
        undecided = counts[0][0] == 0 or (len(counts) > 1 and counts[0][0] == counts[1][0])
        assert matcher.detect_language(text) == (None if undecided else counts[0][1]), text
