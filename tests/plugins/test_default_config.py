"""config/gateway.yaml (the embedded defaults) is valid, and a gateway started from it works."""

from __future__ import annotations

from pathlib import Path

from gateway.config_loader import load_config, resolved_database_url
from gateway.settings import AuthenticationSettings, DatabaseSettings
from gateway.testing import RestDriver

ENV = {"VOICEGATE_REST_SECRET": "a-rest-secret-for-tests", "VOICEGATE_AGENT_TOKEN": "an-agent-token"}


def test_defaults_validate_with_every_plugin_setting(config_dir: Path) -> None:
    settings = load_config(config_dir / "gateway.yaml", environ=ENV)  # loads the plugins, checks their settings
    assert settings.channels["rest"]["secret"] == ENV["VOICEGATE_REST_SECRET"]
    assert {"rest", "webchat", "demo_bot", "demo_crm", "deny_auth"} <= set(settings.plugins)
    assert [b.use for b in settings.bots] == ["demo"] and [c.use for c in settings.crm] == ["demo"]
    assert settings.authentication is not None and settings.authentication.use == "voice"
    voice = settings.authentication.authenticators["voice"]
    assert voice["mode"] == "challenge" and voice["keep_audio"] is False
    assert {a.id for a in settings.agents.team} >= {"anna"}
    # `make run` runs from the repository root: the SQLite file and plugin data land in <repo>/var.
    repo = config_dir.parent.resolve()
    assert resolved_database_url(settings) == f"sqlite+aiosqlite:///{Path(settings.config_dir).resolve() / '../var/voicegate.db'}"
    assert (Path(settings.config_dir) / "../var/voicegate.db").resolve() == repo / "var" / "voicegate.db"
    assert Path(settings.data_path).resolve() == repo / "var"


async def test_a_gateway_from_the_defaults_answers_on_both_channels(config_dir: Path, tmp_path: Path,
                                                                    gateway_client) -> None:
    loaded = load_config(config_dir / "gateway.yaml", environ=ENV)
    # Same file, but the database and data folder under tmp_path so the test leaves <repo>/var alone, and
    # the deny authenticator so this test needs no speaker model (tests/e2e drive the voice one).
    assert loaded.authentication is not None
    settings = loaded.model_copy(update={
        "database": DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}"),
        "data_dir": str(tmp_path / "data"),
        "authentication": AuthenticationSettings(use="deny", authenticators={"deny": loaded.authentication.authenticators["deny"]}),
    }).with_source(config_path=loaded.config_path, config_dir=loaded.config_dir)
    client = await gateway_client(settings)
    replies = await RestDriver(client, secret=ENV["VOICEGATE_REST_SECRET"], sender="alice").say("ciao")
    assert replies[0]["text"] == "Ciao Alice! Come posso aiutarti?"
    page = await client.get("/channels/webchat/")
    assert page.status == 200 and 'id="record-button"' in await page.text()
