"""The demo bot: answers greetings, opening hours, the balance (sensitive), agent requests
and voiceprint deletion, in the customer's language (Italian or English)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any, Mapping

from gateway.components import BotReply, BotTurn, Handoff, Intent
from gateway.messages import Button, OutboundMessage

from voicegate_demo_bot.flows import EURO, Flows, IntentFlow, Reply
from voicegate_demo_bot.matcher import Matcher
from voicegate_demo_bot.text import same_word, tokens

LANGUAGE_KEY = "language"  # conversation.context key: the language of the conversation so far


class DemoBot:
    """A :class:`gateway.components.Bot` driven by :class:`Flows`."""

    def __init__(self, flows: Flows, *, name: str = "demo", answer_unmatched: bool = True) -> None:
        self.name = name
        self.flows = flows
        self.matcher = Matcher(flows)
        self.answer_unmatched = answer_unmatched
        self._languages = frozenset(flows.languages)  # a computed property: not on every message
        self._buttons: dict[tuple[tuple[str, ...], str], tuple[Button, ...]] = {}  # static per reply and language
        self._shows_balance = frozenset(i.name for i in flows.intents if "{balance}" in _any_text(i.reply))
        # Answers that depend only on the intent, its score and the language (no {name}, no amount, no skill
        # picked from the text) are immutable: built once, then shared.
        self._fixed_answers: dict[tuple[str, float, str, bool], BotReply] = {}
        self._contexts: dict[str, Mapping[str, Any]] = {}

    async def handle(self, turn: BotTurn) -> BotReply | None:
        message = turn.message
        text = message.text or ""
        words = tokens(text)  # once per message: matching and language detection share them
        language = self.language_of(turn, text, words)
        context = self._contexts.get(language)
        if context is None:  # read-only, as it is shared by every answer in this language
            context = self._contexts[language] = MappingProxyType({LANGUAGE_KEY: language})
        if turn.resumed_intent:
            intent = self.flows.intent(turn.resumed_intent)
            if intent is not None:
                return self._answer(intent, 1.0, turn, language, context, text)
        if message.button:
            intent = self.flows.intent(message.button)
            if intent is not None:
                return self._answer(intent, 1.0, turn, language, context, text)
        match = self.matcher.match(text, words) if words else None
        if match is not None:
            return self._answer(match.intent, match.score, turn, language, context, text)
        if not self.answer_unmatched:
            return None
        if message.attachments and not text.strip():
            return BotReply(messages=(self._render(self.flows.attachment, language, {}),), context=context)
        return BotReply(messages=(self._render(self.flows.fallback, language, {}),),
                        intent=Intent("fallback", confidence=0.0), context=context)

    def language_of(self, turn: BotTurn, text: str, words: list[str] | None = None) -> str:
        """The message's language if it shows one, else the conversation's, the profile's, the default.

        ``words``: ``tokens(text)`` if the caller has them already."""
        known = self._languages
        for candidate in (
            self.matcher.detect_language(text, words) if text else None,
            turn.conversation.context.get(LANGUAGE_KEY),
            turn.customer.profile.language,
        ):
            if candidate in known:
                return str(candidate)
        return self.flows.default_language

    # ----------------------------------------------------------------- answers

    def _answer(self, intent: IntentFlow, score: float, turn: BotTurn, language: str,
                context: Mapping[str, Any], text: str) -> BotReply:
        gated = intent.sensitive and not turn.verified
        if gated or (intent.handoff is None and intent.name not in self._shows_balance
                     and "{name}" not in (intent.reply.get(language) or intent.reply[self.flows.default_language]).text):
            key = (intent.name, score, language, gated)
            answer = self._fixed_answers.get(key)
            if answer is None:
                answer = self._fixed_answers[key] = self._compose(intent, score, turn, language, context, text)
            return answer
        return self._compose(intent, score, turn, language, context, text)

    def _compose(self, intent: IntentFlow, score: float, turn: BotTurn, language: str,
                 context: Mapping[str, Any], text: str) -> BotReply:
        recognised = Intent(intent.name, sensitive=intent.sensitive, confidence=score, action=intent.action)
        if intent.sensitive and not turn.verified:
            # The core asks the authenticator and replays the intent once verified; nothing
            # sensitive is even computed for an unverified customer.
            return BotReply(intent=recognised, context=context)
        variables = {"name": _first_name(turn.customer.profile.display_name)}
        reply = intent.reply
        if intent.name in self._shows_balance:
            amount = _euros(turn.customer.profile.attributes.get("balance_eur"), language)
            if amount is None:
                reply = intent.missing or self.flows.fallback
            else:
                variables["balance"] = amount
        message = self._render(reply, language, variables)
        handoff = None
        if intent.handoff is not None:
            handoff = Handoff(reason=f"customer asked: {intent.name}", skill=_skill(intent, text))
        return BotReply(messages=(message,), intent=recognised, handoff=handoff, context=context)

    def _render(self, by_language: Mapping[str, Reply], language: str, variables: Mapping[str, str]) -> OutboundMessage:
        reply = by_language.get(language) or by_language[self.flows.default_language]
        name = variables.get("name", "")
        text = reply.text.replace(" {name}", f" {name}" if name else "").replace("{name}", name)
        if "balance" in variables:
            text = text.replace("{balance}", variables["balance"])
        buttons = self._buttons.get((reply.buttons, language))
        if buttons is None:
            buttons = tuple(Button(title=self._title(key, language), payload=key) for key in reply.buttons)
            self._buttons[(reply.buttons, language)] = buttons
        return OutboundMessage(text=text, buttons=buttons)

    def _title(self, key: str, language: str) -> str:
        titles = self.flows.buttons[key]
        return titles.get(language) or titles[self.flows.default_language]


def _any_text(by_language: Mapping[str, Reply]) -> str:
    return " ".join(r.text for r in by_language.values())


def _first_name(display_name: str | None) -> str:
    # Names come from the CRM: keep the euro sign out of anything but the balance answer.
    parts = (display_name or "").replace(EURO, "").split()
    return parts[0] if parts else ""


def _skill(intent: IntentFlow, text: str) -> str:
    assert intent.handoff is not None
    words = tokens(text)
    for skill, keywords in intent.handoff.skills.items():
        for keyword in keywords:
            if all(any(same_word(k, w) for w in words) for k in tokens(keyword)):
                return skill
    return intent.handoff.skill


def _euros(value: Any, language: str) -> str | None:
    """``value`` as euros for ``language`` ("€1,234.50" / "1.234,50 €"), or ``None`` if not a number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        return None
    if not amount.is_finite():
        return None
    sign = "-" if amount < 0 else ""
    digits = f"{abs(amount):,.2f}"  # 1,234.50
    if language == "it":
        digits = digits.replace(",", " ").replace(".", ",").replace(" ", ".")
        return f"{sign}{digits} {EURO}"
    return f"{sign}{EURO}{digits}"
