"""Agent templates: filled from the CRM profile, missing variables named, unsafe placeholders refused."""

from __future__ import annotations

import pytest

from gateway.agent_settings import AgentTemplate
from gateway.agent_templates import TemplateError, fill_template, profile_variables, template_variables


def test_profile_variables_from_the_stored_profile_shape():
    variables = profile_variables(
        {
            "display_name": "Anna Maria Rossi",
            "language": "it",
            "attributes": {"tier": "gold", "account_number": 1234, "flags": {"vip": True}, "active": True},
            "source": "demo",
        }
    )
    assert variables == {
        "display_name": "Anna Maria Rossi",
        "first_name": "Anna",
        "last_name": "Rossi",
        "language": "it",
        "tier": "gold",
        "account_number": "1234",
    }
    assert profile_variables(None) == {}


def test_crm_first_name_attribute_wins_over_the_split_display_name():
    assert profile_variables({"display_name": "Dr. Who", "attributes": {"first_name": "John"}})["first_name"] == "John"


def test_fill_replaces_every_placeholder():
    text, used = fill_template(
        AgentTemplate(name="greet", text="Hi {first_name}! {agent_name} here, {first_name}."),
        {"first_name": "Anna", "agent_name": "Bob", "tier": "gold"},
    )
    assert text == "Hi Anna! Bob here, Anna."
    assert used == {"first_name": "Anna", "agent_name": "Bob"}


def test_missing_variable_is_named():
    with pytest.raises(TemplateError) as caught:
        fill_template(AgentTemplate(name="balance", text="Your {tier} account"), {"first_name": "Anna"})
    message = str(caught.value)
    assert "'tier'" in message and "'balance'" in message and "first_name" in message


@pytest.mark.parametrize("text", ["{user.__class__}", "{x[0]}", "{amount:>10}", "{name!r}", "{0}", "oops {"])
def test_unsafe_or_malformed_placeholders_are_refused(text):
    with pytest.raises(TemplateError):
        template_variables(text)


def test_values_are_not_reformatted():
    # A CRM value containing braces is inserted literally, never formatted again.
    text, _ = fill_template(AgentTemplate(name="t", text="Dear {first_name}"), {"first_name": "{agent_name}"})
    assert text == "Dear {agent_name}"
