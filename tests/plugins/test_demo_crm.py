"""The demo CRM: profiles from customers.yaml by channel identity, wildcards and a default."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.conversation import CustomerView
from gateway.errors import ConfigError
from gateway.testing import RestDriver
from voicegate_demo_crm.directory import load_directory
from voicegate_demo_crm.plugin import DemoCrm


def customer(*identities: tuple[str, str]) -> CustomerView:
    return CustomerView(id="u", identities=identities)


async def test_profiles_come_from_the_real_customers_file(config_dir: Path) -> None:
    crm = DemoCrm(load_directory(config_dir / "customers.yaml"))
    alice = await crm.lookup(customer(("rest", "alice")))
    assert alice is not None
    assert (alice.display_name, alice.language, alice.source) == ("Alice Rossi", "it", "demo")
    assert alice.attributes["balance_eur"] == 1234.56 and alice.attributes["tier"] == "gold"
    visitor = await crm.lookup(customer(("webchat", "any-browser-session-id")))
    assert visitor is not None and visitor.attributes["balance_eur"] == 250.0 and visitor.display_name is None
    stranger = await crm.lookup(customer(("rest", "zed")))
    assert stranger is not None and stranger.attributes == {"tier": "standard"}


async def test_first_matching_entry_wins_over_identities(tmp_path: Path) -> None:
    path = tmp_path / "customers.yaml"
    path.write_text(
        'customers:\n'
        '  "sms:+39*": {display_name: Italian mobile, language: it}\n'
        '  "rest:alice": {display_name: Alice}\n',
        encoding="utf-8",
    )
    crm = DemoCrm(load_directory(path))
    found = await crm.lookup(customer(("rest", "alice"), ("sms", "+39333")))
    assert found is not None and found.display_name == "Italian mobile"
    assert await crm.lookup(customer(("rest", "ALICE"))) is None  # ids are case-sensitive; no default


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("customers:\n  alice: {display_name: A}\n", "'<channel>:<sender>'"),
        ("customers:\n  'rest:a': {language: fr}\n", "customers.rest:a.language"),
        ("customers:\n  'rest:a': {nick: A}\n", "nick"),
        ("customers: [\n", "invalid YAML"),
    ],
)
def test_bad_customer_files_are_clear_errors(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "customers.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_directory(path)
    assert expected in str(caught.value) and str(path) in str(caught.value)


async def test_the_bot_greets_by_the_crm_name_through_the_app(demo_settings, gateway_client) -> None:
    client = await gateway_client(demo_settings())
    assert (await RestDriver(client, sender="bob").say("hello"))[0]["text"] == "Hi Bob! How can I help?"
    # Alice's profile says Italian: a button press (no text to detect) is answered in Italian.
    assert (await RestDriver(client, sender="alice").press("hours"))[0]["text"].startswith("Siamo aperti")
