"""``flows.yaml``: the demo bot's intents, replies and buttons, parsed and checked at start-up.

Rules checked here rather than discovered by a customer:

* every reply has a text in ``default_language``; buttons name entries of ``buttons``, and
  each button's payload (its key) is the name of an intent, so pressing it runs that intent;
* the ``€`` sign appears nowhere in the file: only the sensitive balance answer shows money,
  through the ``{balance}`` placeholder, and ``{balance}`` is allowed in sensitive intents only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gateway.errors import ConfigError, ConfigProblem

EURO = "€"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Reply(_Model):
    """A text (``{name}`` = the customer's first name, ``{balance}`` = the amount) and button keys."""

    text: str = Field(min_length=1, max_length=600)
    buttons: tuple[str, ...] = ()


class HandoffFlow(_Model):
    """Hand the conversation to an agent with ``skill``, or the first skill whose keywords match."""

    skill: str = "general"
    skills: dict[str, tuple[str, ...]] = Field(default_factory=dict)


class IntentFlow(_Model):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    # Higher wins a tie: "hello, my balance?" is about the balance, not a greeting.
    priority: int = 1
    sensitive: bool = False
    action: Literal["forget_verification"] | None = None
    # Phrases that must all appear (any order, stems allowed) to match with full confidence.
    keywords: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    # Sentences scored by the share of their words found in the message.
    examples: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    reply: dict[str, Reply] = Field(default_factory=dict)
    # For the balance: what to say when the CRM knows no amount.
    missing: dict[str, Reply] = Field(default_factory=dict)
    handoff: HandoffFlow | None = None


class Flows(_Model):
    default_language: str = "en"
    # An intent matching below this score is not recognised (the fallback answers).
    min_score: float = Field(default=0.6, gt=0, le=1)
    stopwords: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    buttons: dict[str, dict[str, str]] = Field(default_factory=dict)
    intents: tuple[IntentFlow, ...]
    fallback: dict[str, Reply]
    attachment: dict[str, Reply]

    @property
    def languages(self) -> tuple[str, ...]:
        found = {self.default_language}
        for intent in self.intents:
            found.update(intent.keywords, intent.examples, intent.reply)
        found.update(self.stopwords)
        return tuple(sorted(found))

    def intent(self, name: str) -> IntentFlow | None:
        return next((i for i in self.intents if i.name == name), None)

    @model_validator(mode="after")
    def _consistent(self) -> "Flows":
        names = [i.name for i in self.intents]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"intent names must be unique; repeated: {', '.join(duplicates)}")
        for key, titles in self.buttons.items():
            if key not in names:
                raise ValueError(f"button '{key}' is not the name of an intent (its payload runs that intent)")
            if self.default_language not in titles:
                raise ValueError(f"button '{key}' has no title in the default language '{self.default_language}'")
        replies: list[tuple[str, dict[str, Reply], bool]] = [("fallback", self.fallback, False),
                                                             ("attachment", self.attachment, False)]
        for intent in self.intents:
            if not intent.reply:
                raise ValueError(f"intent '{intent.name}' has no reply")
            replies.append((f"intents.{intent.name}.reply", intent.reply, intent.sensitive))
            if intent.missing:
                replies.append((f"intents.{intent.name}.missing", intent.missing, False))
        for where, by_language, sensitive in replies:
            if self.default_language not in by_language:
                raise ValueError(f"{where} has no text in the default language '{self.default_language}'")
            for language, reply in by_language.items():
                if "{balance}" in reply.text and not sensitive:
                    raise ValueError(f"{where}.{language} uses {{balance}} but the intent is not sensitive")
                for button in reply.buttons:
                    if button not in self.buttons:
                        raise ValueError(f"{where}.{language} names button '{button}', which 'buttons' does not define")
        return self


def load_flows(path: str | Path) -> Flows:
    """Read and check ``flows.yaml``; problems raise :class:`ConfigError` naming the file."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([ConfigProblem(file, None, "", "the flows file does not exist",
                                         "Create it (see config/flows.yaml) or fix bots[].settings.flows")]) from None
    if EURO in text:
        line = next(i for i, row in enumerate(text.splitlines(), start=1) if EURO in row)
        raise ConfigError([ConfigProblem(file, line, "", f"the file contains '{EURO}'",
                                         "Only the balance answer shows money, through {balance}; remove the sign")])
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError([ConfigProblem(file, mark.line + 1 if mark else None, "", f"invalid YAML: {exc}",
                                         "Fix the syntax")]) from None
    try:
        return Flows.model_validate(data or {})
    except ValidationError as exc:
        raise ConfigError([
            ConfigProblem(file, None, ".".join(str(p) for p in e["loc"]), e["msg"], "Fix the flows file")
            for e in exc.errors()
        ]) from None
