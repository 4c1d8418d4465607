"""The ``agents:`` section of the gateway YAML: the live-agent team, routing and acknowledgements.

Shared by the configuration loader (:mod:`gateway.settings`) and the agent desk
(:mod:`gateway.agents`), so it lives in its own small module that imports neither.
"""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, field_validator, model_validator
from pydantic_core import PydanticCustomError

from gateway.languages import primary_language


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AgentProfile(_Frozen):
    """One live agent. The router picks, among agents with the handoff's skill who speak the
    customer's language, the one with the fewest open conversations below ``max_concurrent``."""

    id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")
    name: str = Field(min_length=1)
    skills: tuple[str, ...] = ("general",)
    languages: tuple[str, ...] = ("en",)
    max_concurrent: int = Field(default=5, ge=1, le=100)
    token: str | None = None  # bearer token for the agent API; ``${VAR}`` from the environment


class AgentTemplate(_Frozen):
    """A reply template agents can send; ``{first_name}``-style variables come from the CRM profile."""

    name: str = Field(min_length=1)
    text: str = Field(min_length=1)

    @field_validator("text")
    @classmethod
    def _plain_placeholders(cls, text: str) -> str:
        # Here, not only in the desk, so `voicegate check-config` reports a bad placeholder with its file and line.
        from gateway.agent_templates import TemplateError, template_variables  # that module imports this one

        try:
            template_variables(text)
        except TemplateError as exc:
            raise PydanticCustomError("template_text", "{problem}", {
                "problem": str(exc), "hint": "Fix the placeholder", "found": text,
            }) from None
        return text


def _local_text(value: Any) -> str | dict[str, str]:
    """One non-empty string, or a mapping of language codes to non-empty strings (at least one)."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, dict) and value and all(isinstance(k, str) and isinstance(v, str) and v
                                                 for k, v in value.items()):
        return {k.lower(): v for k, v in value.items()}
    raise PydanticCustomError("local_text", "expected a non-empty text, or one per language", {
        "hint": 'Write one text, or one per language code, e.g. {en: "Thanks", it: "Grazie"}',
    })


# A text for customers: one string, or language code -> string. Validated by one function so that a mistake is
# reported once, at the key's own path (a Union would report it per member, with pydantic's tags in the path).
LocalText = Annotated[Union[str, dict[str, str]], PlainValidator(_local_text)]


class AgentsSettings(_Frozen):
    """Live agents and how the gateway treats a customer waiting for one."""

    # Acknowledge a customer who wrote to a conversation held by (or queued for) an agent once,
    # when no agent answered within this many seconds. Never repeated while the customer is
    # silent: a slow customer is never nagged.
    ack_after_s: float = Field(default=45.0, gt=0)
    # Each text is one string, or one per language ({en: ..., it: ...}): the customer's language (the
    # conversation's, else the CRM profile's) picks it, else English, else the first given.
    ack_text: LocalText = "Thanks for waiting — an agent will be with you shortly."
    queued_text: LocalText = "All our agents are busy; you are in the queue and will be answered here."
    handoff_text: LocalText = "I'm passing you to {agent_name}, who can see our conversation so far."
    # Said instead of a handoff when ``team`` is empty: no one could ever answer a queued
    # conversation, so the bot keeps it rather than leave the customer waiting in limbo.
    unavailable_text: LocalText = "Sorry, no live agent can take this chat. I can still help you with other questions here."
    sweep_interval_s: float = Field(default=5.0, gt=0)
    team: tuple[AgentProfile, ...] = ()
    templates: tuple[AgentTemplate, ...] = ()

    def text(self, name: str, language: str | None) -> str:
        """The text ``name`` (e.g. ``"queued_text"``) in ``language`` (``it-IT`` counts as ``it``)."""
        value = getattr(self, name)
        if isinstance(value, str):
            return value
        primary = primary_language(language)
        return (primary and value.get(primary)) or value.get("en") or next(iter(value.values()))

    def all_texts(self, name: str) -> frozenset[str]:
        """Every language's version of the text ``name``."""
        value = getattr(self, name)
        return frozenset([value] if isinstance(value, str) else value.values())

    @property
    def reachable_team(self) -> tuple[AgentProfile, ...]:
        """The agents who can sign in to the agent API: an empty token (``"${VAR:-}"`` with VAR unset) locks an
        agent out until it is set, so routing must not hand them conversations."""
        return tuple(agent for agent in self.team if agent.token != "")

    @field_validator("handoff_text")
    @classmethod
    def _agent_name_only(cls, value: str | dict[str, str]) -> str | dict[str, str]:
        # Filled with str.format on every handoff: any other placeholder would fail in the customer's turn.
        for text in ([value] if isinstance(value, str) else value.values()):
            try:
                text.format(agent_name="")
            except (KeyError, IndexError, ValueError, AttributeError) as exc:
                raise PydanticCustomError("handoff_text", "the text can only use the placeholder {allowed} ({problem})",
                                          {"allowed": "{agent_name}", "problem": f"{type(exc).__name__}: {exc}",
                                           "hint": "Use {agent_name}, or no placeholder", "found": text})
        return value

    @model_validator(mode="after")
    def _unique_names(self) -> "AgentsSettings":
        for what, names in (("agent id", [a.id for a in self.team]), ("template name", [t.name for t in self.templates])):
            repeated = sorted({n for n in names if names.count(n) > 1})
            if repeated:
                raise PydanticCustomError("duplicate_name", "the same {what} is listed twice: {names}", {
                    "what": what, "names": ", ".join(repeated), "hint": f"Give every {what.split()[0]} a unique {what.split()[1]}",
                    "found": repeated,
                })
        return self
