"""What check-config catches before start-up: environment values kept out of messages, unterminated ``${VAR``,
Redis and database URLs, YAML wording, the missing-file hint."""

from __future__ import annotations

from pathlib import Path

import gw_plugins as gp
import pytest
from pydantic import field_validator

from gateway.cli import main
from gateway.components import PluginSettings
from gateway.config_loader import load_config, parse_config, plugin_section
from gateway.errors import ConfigError
from test_core_config import problems, write

SECRET = "sh0rt-s3cr3t"  # the value no message may contain


# --------------------------------------------------------------------------- environment values never shown


def test_an_environment_value_in_a_core_key_is_not_shown(tmp_path, monkeypatch):
    monkeypatch.setenv("VG_TEST_LEVEL", SECRET)
    path = write(tmp_path, "logging: {level: '${VG_TEST_LEVEL}'}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, check_plugins=False)
    [message] = problems(info)
    assert message.startswith(f"{path}:1 at 'logging.level': input should be 'DEBUG'")
    assert SECRET not in str(info.value)


def test_an_environment_value_in_a_plugin_section_is_not_shown(tmp_path, monkeypatch):
    monkeypatch.setenv("VG_TEST_SECRET", "short")  # too short for the REST channel (8+ characters)
    path = write(tmp_path, "plugins: [rest]\nchannels:\n  rest:\n    secret: '${VG_TEST_SECRET}'\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert problems(info) == [f"{path}:4 at 'channels.rest.secret': string should have at least 8 characters. Fix the value"]
    assert "short'" not in str(info.value)


def test_the_check_config_command_does_not_print_the_secret(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VG_TEST_SECRET", "sh0rt")
    path = write(tmp_path, "plugins: [rest]\nchannels: {rest: {secret: '${VG_TEST_SECRET}'}}\n")
    assert main(["check-config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "at 'channels.rest.secret': string should have at least 8 characters" in err and "sh0rt" not in err


def test_a_whole_section_or_a_component_name_from_the_environment_is_not_shown(tmp_path, monkeypatch):
    monkeypatch.setenv("VG_TEST_CHAT", SECRET)
    monkeypatch.setenv("VG_TEST_BOT", SECRET)
    path = write(tmp_path, "channels: {testchat: '${VG_TEST_CHAT}'}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, check_plugins=False)
    assert problems(info) == [f"{path}:1 at 'channels.testchat': input should be a mapping (key: value lines). Fix the value"]
    path = write(tmp_path, "bots: [{use: '${VG_TEST_BOT}'}]\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, extra_plugins=[gp.CorePlugin()])
    assert "at 'bots[0].use': no loaded plugin provides a bot named <a value from the environment>" in str(info.value)
    assert SECRET not in str(info.value)


def test_a_plugin_name_from_the_environment_is_not_shown(tmp_path, monkeypatch):
    monkeypatch.setenv("VG_TEST_PLUGIN", SECRET)
    path = write(tmp_path, "plugins: ['${VG_TEST_PLUGIN}']\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert f"{path}:1 at 'plugins': unknown plugin '<a value from the environment>'" in str(info.value)
    assert SECRET not in str(info.value)


class _EchoingSettings(PluginSettings):
    """A plugin whose own validator quotes the value it rejects."""

    token: str

    @field_validator("token")
    @classmethod
    def _no_dashes(cls, token: str) -> str:
        if "-" in token:
            raise ValueError(f"the token {token} contains a dash")
        return token


def test_a_plugin_validator_quoting_the_value_is_hidden(tmp_path, monkeypatch):
    monkeypatch.setenv("VG_TEST_TOKEN", SECRET + "-x")
    settings = parse_config("channels: {echo: {token: 'tok-${VG_TEST_TOKEN}'}}\n", file="g.yaml")
    with pytest.raises(ConfigError) as info:
        plugin_section(settings, _EchoingSettings, ("channels", "echo"))
    assert problems(info) == [
        "g.yaml:1 at 'channels.echo.token': <a value from the environment> is not valid here "
        "(value_error; the details would show it). Fix the value"
    ]
    # the same mistake written in the file itself is shown as usual
    settings = parse_config("channels: {echo: {token: tok-en}}\n", file="g.yaml")
    with pytest.raises(ConfigError, match="the token tok-en contains a dash, found 'tok-en'"):
        plugin_section(settings, _EchoingSettings, ("channels", "echo"))


# --------------------------------------------------------------------------- ${VAR without its closing brace


@pytest.mark.parametrize("value", ["${VG_TEST_SECRET", "x-${VG_TEST_SECRET}-${OTHER", "${1BAD}"])
def test_an_unterminated_or_malformed_reference_is_an_error(tmp_path, monkeypatch, value):
    monkeypatch.setenv("VG_TEST_SECRET", "long-enough-secret")
    path = write(tmp_path, f"plugins: []\nchannels:\n  rest:\n    secret: \"{value}\"\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, check_plugins=False)
    assert problems(info) == [
        f"{path}:4 at 'channels.rest.secret': '${{' does not start a valid environment variable reference "
        "(a missing '}' or a bad name). Write ${NAME} or ${NAME:-default}, NAME made of letters, digits and '_', "
        "with the closing '}'"
    ]


# --------------------------------------------------------------------------- URLs that only failed at start-up


@pytest.mark.parametrize("url", ["localhost:6379", "http://127.0.0.1:6379"])
def test_a_redis_url_without_a_redis_scheme_is_reported(tmp_path, url):
    path = write(tmp_path, f"coordination:\n  redis_url: \"{url}\"\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, check_plugins=False)
    [message] = problems(info)
    assert message.startswith(f"{path}:2 at 'coordination.redis_url': a Redis URL must start with redis://, "
                              f"rediss:// (TLS) or unix://, found '{url}'. Write it as redis://<host>:6379/0")


@pytest.mark.parametrize("url", ["redis://h:6379/0", "rediss://h", "unix:///run/redis.sock", "REDIS://h", None])
def test_redis_urls_redis_py_accepts_pass(url):
    settings = parse_config(f"coordination: {{redis_url: {url or 'null'}}}\n", check_urls=True)
    assert settings.coordination.redis_url == url


def test_an_empty_redis_url_means_a_single_instance(monkeypatch):
    monkeypatch.delenv("VG_TEST_REDIS", raising=False)
    settings = parse_config("coordination: {redis_url: '${VG_TEST_REDIS:-}'}\n")
    assert settings.coordination.redis_url is None


def test_a_password_in_a_bad_url_is_masked(tmp_path):
    path = write(tmp_path, "coordination: {redis_url: 'tcp://:hunter22@h:6379'}\n"
                           "database: {url: 'mysql://app:hunter22@h/db'}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, check_plugins=False)
    assert "hunter22" not in str(info.value)
    assert "found 'mysql://app:***@h/db'" in str(info.value) and "found 'tcp://***@h:6379'" in str(info.value)
    # A password holding '/' or '@' is masked whole too.
    for url in ("tcp://:pa/ss22@h:6379", "tcp://u:p@ss22@h:6379"):
        path = write(tmp_path, f"coordination: {{redis_url: '{url}'}}\n")
        with pytest.raises(ConfigError) as info:
            load_config(path, check_plugins=False)
        assert "ss22" not in str(info.value) and "found 'tcp://***@h:6379'" in str(info.value)


@pytest.mark.parametrize("url, problem", [
    ("mysql://x/y", "the database driver 'mysql' is not supported, found 'mysql://x/y'. Use sqlite+aiosqlite:///"),
    ("sqlite+aiosqlite:///:memory:", "an in-memory SQLite database cannot be shared between the gateway's connections"),
    ("not a url", "not a database URL, found 'not a url'"),
])
def test_a_database_url_the_gateway_cannot_open_is_reported(tmp_path, url, problem):
    path = write(tmp_path, f"database:\n  url: \"{url}\"\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, check_plugins=False)
    [message] = problems(info)
    assert message.startswith(f"{path}:2 at 'database.url': {problem}")


@pytest.mark.parametrize("url", [
    "sqlite+aiosqlite:///var/gw.db", "sqlite:///var/gw.db", "sqlite+pysqlite:////abs/gw.db",
    "postgresql+asyncpg://u:p@h/db", "postgresql://u@h/db", "postgres://h/db", "postgresql+psycopg2://h/db",
])
def test_database_urls_the_gateway_normalises_pass(url):
    assert parse_config(f"database: {{url: '{url}'}}\n", check_urls=True).database.url == url


def test_operator_tools_parse_without_the_url_checks(tmp_path, capsys):
    """``voicegate plugins`` reads a file whose database URL is an unset variable (read as empty)."""
    settings = parse_config("database: {url: placeholder}\ncoordination: {redis_url: placeholder}\n")
    assert settings.database.url == "placeholder" and settings.coordination.redis_url == "placeholder"
    path = write(tmp_path, "database: {url: '${VG_TEST_UNSET_DB}'}\nplugins: [rest]\n")
    assert main(["plugins", "--config", str(path)]) == 0
    assert "enabled #1" in capsys.readouterr().out


# --------------------------------------------------------------------------- wording and hints


def test_lists_and_mappings_are_named_as_in_yaml(tmp_path):
    path = write(tmp_path, """\
        server: 8080
        agents:
          team:
            - {id: anna, name: Anna, skills: billing}
        """)
    with pytest.raises(ConfigError) as info:
        load_config(path, check_plugins=False)
    assert problems(info) == [
        f"{path}:1 at 'server': input should be a mapping (key: value lines), found 8080. Fix the value",
        f"{path}:4 at 'agents.team[0].skills': input should be a list, found 'billing'. Fix the value",
    ]


def test_the_missing_file_hint_fits_every_command(tmp_path, capsys):
    missing = tmp_path / "nope.yaml"
    assert main(["check-config", str(missing)]) == 2
    err = capsys.readouterr().err
    assert f"{missing}: the configuration file does not exist. Create it (copy config/gateway.yaml) or pass the " \
           "right path: voicegate check-config FILE" in err
    assert "--config" not in err  # check-config takes the file as its argument
    assert main(["run", "--config", str(missing)]) == 2
    assert "or pass the right path with --config FILE" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="or give the path of an existing file$"):
        load_config(missing)


# --------------------------------------------------------------------------- enabled but unused plugins


def test_an_enabled_plugin_with_nothing_configured_is_a_warning(tmp_path, caplog):
    path = write(tmp_path, """\
        plugins: [rest, telegram]
        channels:
          rest: {secret: a-long-enough-secret}
    """)
    with caplog.at_level("WARNING", logger="gateway.config_loader"):
        settings = load_config(path)
    assert settings.plugins == ("rest", "telegram")  # a warning, not an error
    [warning] = [r.getMessage() for r in caplog.records if r.name == "gateway.config_loader"]
    assert warning == (f"{path}: plugin 'telegram' is enabled but nothing it provides (channel 'telegram') is "
                       "configured, so it does nothing; add channels.telegram, or remove it from plugins")


def test_the_shipped_configuration_has_no_unused_plugin(monkeypatch, caplog):
    monkeypatch.setenv("VOICEGATE_REST_SECRET", "a-long-enough-secret")
    monkeypatch.setenv("VOICEGATE_AGENT_TOKEN", "a-long-enough-token")
    with caplog.at_level("WARNING", logger="gateway.config_loader"):
        load_config(Path(__file__).resolve().parents[2] / "config" / "gateway.yaml")
    assert [r.getMessage() for r in caplog.records if r.name == "gateway.config_loader"] == []


def test_a_yaml_error_also_names_the_line_where_the_broken_part_starts(tmp_path):
    path = write(tmp_path, """\
        server:
          host: "127.0.0.1
          port: 8080
        plugins: [rest]
    """)
    with pytest.raises(ConfigError) as info:
        load_config(path, check_plugins=False)
    [message] = problems(info)
    assert message.startswith(f"{path}:5: invalid YAML:")  # where the parser noticed, past the unclosed quote
    assert "(while scanning a quoted scalar that starts at line 2)" in message  # where the quote opened
