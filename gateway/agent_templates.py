"""Agent reply templates filled with the customer's CRM profile.

Operators write templates in YAML (``agents.templates``) with ``{variable}`` placeholders,
e.g. ``"Hello {first_name}, I'm {agent_name}."``. Variables come from the customer's stored
profile (``display_name``, ``first_name``, ``last_name``, ``language`` and every scalar
attribute the CRM returned) plus ``agent_name``. Only plain names are allowed: format
specs, attribute access (``{x.y}``) and indexing (``{x[0]}``) are refused, because the
values come from outside systems and must never reach Python's formatting machinery.
"""

from __future__ import annotations

import string
from typing import Any, Mapping

from gateway.agent_settings import AgentTemplate
from gateway.errors import GatewayError

_FORMATTER = string.Formatter()


class TemplateError(GatewayError):
    """A template cannot be filled: unknown name, a variable the profile lacks, or bad syntax."""


def template_variables(text: str) -> tuple[str, ...]:
    """The placeholder names in ``text``, in order of first use.

    >>> template_variables("Hi {first_name}, {agent_name} here. Bye {first_name}")
    ('first_name', 'agent_name')
    """
    names: list[str] = []
    try:
        parsed = list(_FORMATTER.parse(text))
    except ValueError as exc:  # unbalanced braces
        raise TemplateError(f"template text {text!r} is malformed: {exc}; use {{name}} placeholders") from exc
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if not field.isidentifier() or spec or conversion:
            raise TemplateError(
                f"template placeholder {{{field}{'!' + conversion if conversion else ''}{':' + spec if spec else ''}}} "
                "is not allowed: use plain names such as {first_name}"
            )
        if field not in names:
            names.append(field)
    return tuple(names)


def profile_variables(profile: Mapping[str, Any] | None) -> dict[str, str]:
    """Template variables from a stored CRM profile (the shape of :class:`gateway.conversation.CustomerProfile`).

    >>> profile_variables({"display_name": "Anna Rossi", "attributes": {"tier": "gold"}})["first_name"]
    'Anna'
    """
    variables: dict[str, str] = {}
    if not profile:
        return variables
    attributes = profile.get("attributes") or {}
    if isinstance(attributes, Mapping):
        for key, value in attributes.items():
            # Scalars only: a nested dict rendered into a customer message is never what was meant.
            if isinstance(key, str) and isinstance(value, (str, int, float)) and not isinstance(value, bool):
                variables[key] = str(value)
    name = profile.get("display_name")
    if isinstance(name, str) and name.strip():
        parts = name.split()
        variables["display_name"] = name.strip()
        variables.setdefault("first_name", parts[0])
        if len(parts) > 1:
            variables.setdefault("last_name", parts[-1])
    language = profile.get("language")
    if isinstance(language, str) and language:
        variables["language"] = language
    return variables


def fill_template(template: AgentTemplate, variables: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """The template's text with every placeholder replaced, and the variables used.

    Raises :class:`TemplateError` naming the first variable ``variables`` lacks.

    >>> from gateway.agent_settings import AgentTemplate
    >>> fill_template(AgentTemplate(name="hi", text="Hi {first_name}"), {"first_name": "Anna"})
    ('Hi Anna', {'first_name': 'Anna'})
    """
    names = template_variables(template.text)
    missing = [n for n in names if n not in variables]
    if missing:
        raise TemplateError(
            f"template '{template.name}' needs the variable '{missing[0]}', which this customer's profile "
            f"does not have (known: {', '.join(sorted(variables)) or 'none'}); write the message as text instead"
        )
    used = {n: variables[n] for n in names}
    out: list[str] = []
    for literal, field, _, _ in _FORMATTER.parse(template.text):
        out.append(literal)
        if field is not None:
            out.append(used[field])
    return "".join(out), used
