"""YAML configuration: file:line errors, key paths, ${VAR} secrets, plugin settings, check-config."""

from __future__ import annotations

import textwrap

import gw_plugins as gp
import pytest

from gateway.cli import main
from gateway.config_loader import load_config, resolved_database_url
from gateway.errors import ConfigError

GOOD = """\
server: {host: 127.0.0.1, port: 8089, max_body_bytes: 65536}
database: {url: "sqlite+aiosqlite:///var/gw.db"}
plugins: []
channels:
  testchat: {secret: "${VG_TEST_SECRET}", buttons: false}
bots:
  - use: script
  - use: fallback
crm:
  - use: table
    settings: {name: "${VG_TEST_NAME:-Bianca}"}
    cache_ttl_s: 30
authentication:
  use: pin
  verified_ttl_s: 120
agents:
  ack_after_s: 30
  team:
    - {id: anna, name: Anna, skills: [billing], languages: [it, en]}
"""


def write(tmp_path, text, name="gateway.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def problems(excinfo) -> list[str]:
    return [str(p) for p in excinfo.value.problems]


def test_a_good_file_loads_with_secrets_defaults_and_relative_paths(tmp_path, monkeypatch):
    monkeypatch.setenv("VG_TEST_SECRET", "s3cret")
    path = write(tmp_path, GOOD)
    settings = load_config(path, extra_plugins=[gp.CorePlugin()])
    assert settings.channels["testchat"] == {"secret": "s3cret", "buttons": False}
    assert settings.crm[0].settings == {"name": "Bianca"} and settings.crm[0].cache_ttl_s == 30
    assert settings.server.port == 8089 and settings.authentication.verified_ttl_s == 120
    assert settings.agents.team[0].languages == ("it", "en")
    assert resolved_database_url(settings) == f"sqlite+aiosqlite:///{tmp_path}/var/gw.db"
    assert settings.config_dir == str(tmp_path)
    with pytest.raises(Exception):  # frozen
        settings.server.port = 1  # type: ignore[misc]


def test_unknown_keys_wrong_types_and_unset_variables_name_file_line_and_path(tmp_path, monkeypatch):
    monkeypatch.delenv("VG_TEST_SECRET", raising=False)
    path = write(tmp_path, GOOD)
    with pytest.raises(ConfigError) as info:
        load_config(path, check_plugins=False)
    assert problems(info) == [
        f"{path}:5 at 'channels.testchat.secret': environment variable VG_TEST_SECRET is not set. "
        "Export it (export VG_TEST_SECRET=...) or give a default with ${VG_TEST_SECRET:-value}"
    ]
    monkeypatch.setenv("VG_TEST_SECRET", "x")
    bad = GOOD.replace("max_body_bytes: 65536", "max_body_bytes: lots").replace("  verified_ttl_s: 120", "  verifed_ttl_s: 120")
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, bad), check_plugins=False)
    found = problems(info)
    assert found[0].startswith(f"{path}:1 at 'server.max_body_bytes': input should be a valid integer")
    assert "found 'lots'" in found[0]
    assert found[1] == (
        f"{path}:15 at 'authentication.verifed_ttl_s': unknown key. Remove it or fix the spelling; "
        "allowed keys here: use, verified_ttl_s, authenticators"
    )


def test_secret_values_are_never_echoed_in_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("VG_TEST_PORT", "not-a-port-but-secret")
    path = write(tmp_path, "server: {port: '${VG_TEST_PORT}'}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, check_plugins=False)
    assert "server.port" in str(info.value) and "not-a-port-but-secret" not in str(info.value)


def test_plugin_settings_errors_point_at_their_lines(tmp_path, monkeypatch):
    monkeypatch.setenv("VG_TEST_SECRET", "x")
    bad = GOOD.replace('settings: {name: "${VG_TEST_NAME:-Bianca}"}', "settings: {name: B, colour: red}").replace(
        "  - use: fallback", "  - use: fallbak"
    )
    path = write(tmp_path, bad)
    with pytest.raises(ConfigError) as info:
        load_config(path, extra_plugins=[gp.CorePlugin()])
    assert problems(info) == [
        f"{path}:8 at 'bots[1].use': no loaded plugin provides a bot named 'fallbak'. Registered bots: fallback, "
        "script. Add the plugin that provides it to 'plugins' or fix the name",
        f"{path}:11 at 'crm[0].settings.colour': unknown key. Remove it or fix the spelling; allowed keys here: "
        "name, language, fail",
    ]


def test_unknown_plugin_is_reported_at_the_plugins_line(tmp_path, monkeypatch):
    monkeypatch.setenv("VG_TEST_SECRET", "x")
    path = write(tmp_path, GOOD.replace("plugins: []", "plugins: [no_such_plugin]"))
    with pytest.raises(ConfigError, match=rf"{path}:3 at 'plugins': unknown plugin 'no_such_plugin'.*Installed plugins: .*rest"):
        load_config(path)


def test_syntax_errors_duplicates_and_missing_files(tmp_path):
    path = write(tmp_path, "server:\n  host: [1, 2\nplugins: []\n")
    with pytest.raises(ConfigError, match=rf"{path}:3: invalid YAML"):
        load_config(path)
    path = write(tmp_path, "plugins: []\nserver: {port: 1}\nplugins: [rest]\n")
    with pytest.raises(ConfigError, match=rf"{path}:3 at 'plugins': the key appears twice"):
        load_config(path)
    with pytest.raises(ConfigError, match=r"nope.yaml: the configuration file does not exist. Create it"):
        load_config(tmp_path / "nope.yaml")
    path = write(tmp_path, "- just\n- a list\n")
    with pytest.raises(ConfigError, match="expected a mapping of sections"):
        load_config(path)


def test_check_config_command(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VG_TEST_SECRET", "long-enough-secret")
    bad = write(tmp_path, "server: {prot: 1}\nplugins: [rest]\nchannels: {rest: {secret: long-enough-secret}}\n", name="bad.yaml")
    assert main(["check-config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:1 at 'server.prot': unknown key" in err
    good = write(tmp_path, "plugins: [rest]\nchannels: {rest: {secret: '${VG_TEST_SECRET}'}}\n", name="good.yaml")
    assert main(["check-config", str(good)]) == 0
    assert "OK" in capsys.readouterr().out


def test_plugins_command_lists_installed_and_enabled(tmp_path, capsys):
    config = write(tmp_path, "plugins: [rest, not_installed]\n")
    assert main(["plugins", "--config", str(config)]) == 1  # an enabled plugin is missing
    out = capsys.readouterr().out
    assert "rest" in out and "enabled #1" in out and "voicegate_rest.plugin" in out
    assert "not_installed" in out and "NOT INSTALLED" in out
