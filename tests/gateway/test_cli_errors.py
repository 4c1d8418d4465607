"""Operator mistakes on the ``voicegate`` command line: one clear line on stderr and an exit status, no traceback."""

from __future__ import annotations

import socket
import subprocess

import pytest

from gateway.cli import main
from test_core_cli_run import voicegate_command


def test_db_upgrade_to_an_unknown_revision_names_the_known_ones(tmp_path, capsys):
    database = tmp_path / "x.db"
    code = main(["db", "upgrade", "--url", f"sqlite+aiosqlite:///{database}", "--revision", "9999"])
    err = capsys.readouterr().err
    assert code == 2
    assert err == ("error: unknown revision '9999'; the migrations know 0001, 0002, 0003 (or 'head' for the newest, "
                   "the default)\n")
    assert not database.exists()  # refused before connecting
    assert main(["db", "upgrade", "--url", f"sqlite+aiosqlite:///{database}", "--revision", "0002"]) == 0
    assert "database schema at revision 0002" in capsys.readouterr().out
    assert main(["db", "upgrade", "--url", f"sqlite+aiosqlite:///{database}", "--revision", "+5"]) == 2
    assert "error: cannot migrate to revision '+5'" in capsys.readouterr().err


def test_db_upgrade_from_a_config_needs_only_the_database_settings(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("VG_TEST_UNSET_SECRET", raising=False)
    monkeypatch.delenv("VG_TEST_UNSET_DB", raising=False)
    config = tmp_path / "gateway.yaml"
    config.write_text('database: {url: "sqlite+aiosqlite:///gateway.db"}\nplugins: [rest]\n'
                      'channels:\n  rest: {secret: "${VG_TEST_UNSET_SECRET}"}\n')
    assert main(["db", "upgrade", "--config", str(config)]) == 0  # the unset channel secret does not matter here
    assert "database schema at revision 0003" in capsys.readouterr().out
    assert (tmp_path / "gateway.db").exists()  # relative to the YAML's folder
    config.write_text('database: {url: "${VG_TEST_UNSET_DB}"}\n')
    assert main(["db", "upgrade", "--config", str(config)]) == 1
    assert "database.url uses an environment variable that is not set" in capsys.readouterr().err
    assert main(["db", "upgrade", "--config", str(tmp_path / "nope.yaml")]) == 2
    assert "the configuration file does not exist" in capsys.readouterr().err
    monkeypatch.delenv("VG_TEST_UNSET_SCHEMA", raising=False)
    config.write_text('database: {url: "sqlite+aiosqlite:///gateway.db", schema: "${VG_TEST_UNSET_SCHEMA}"}\n')
    assert main(["db", "upgrade", "--config", str(config)]) == 1
    assert "database.schema uses an environment variable that is not set" in capsys.readouterr().err


def test_plugins_with_a_folder_as_config_is_an_error(tmp_path, capsys):
    assert main(["plugins", "--config", str(tmp_path)]) == 2
    assert "this is a folder, not a configuration file" in capsys.readouterr().err


def test_run_on_a_port_in_use_says_so_before_starting_up(tmp_path):
    config = tmp_path / "gateway.yaml"
    config.write_text('server: {host: 127.0.0.1, port: 0}\ndatabase: {url: "sqlite+aiosqlite:///gateway.db"}\n'
                      'plugins: [rest]\nchannels:\n  rest: {secret: "a-long-enough-secret"}\n')
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run([*voicegate_command(), "run", "--config", str(config), "--port", str(port)],
                                capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr == (f"error: port {port} on 127.0.0.1 is already in use: stop the other program or pass "
                             "--port (or change server.port)\n")
    assert not (tmp_path / "gateway.db").exists()  # no start-up work (migrations, models) was done


def test_a_bind_that_fails_after_the_check_is_reported_too():
    import errno

    from gateway.cli import _listen_error

    error = _listen_error("127.0.0.1", 8080, OSError(errno.EADDRINUSE, "Address already in use"))
    assert str(error) == ("port 8080 on 127.0.0.1 is already in use: stop the other program or pass --port "
                          "(or change server.port)")
    assert "cannot listen on 10.9.9.9 port 8080 (Cannot assign requested address)" in str(
        _listen_error("10.9.9.9", 8080, OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address")))


def test_plugins_with_a_missing_explicit_config_is_an_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no config/gateway.yaml here
    assert main(["plugins", "--config", "nope.yaml"]) == 2
    err = capsys.readouterr().err
    assert "nope.yaml: the configuration file does not exist" in err
    assert main(["plugins"]) == 0  # the implicit default may be missing: installed plugins only
    assert "config/gateway.yaml not found; showing installed plugins only" in capsys.readouterr().out


@pytest.mark.parametrize("argv, expected", [
    (["check-config"], "file the gateway YAML to check"),
    (["plugins"], "--config CONFIG gateway YAML whose plugins: list to show"),
    (["db", "upgrade"], "--revision REVISION Alembic revision to migrate to"),
    (["db", "upgrade"], "--config CONFIG gateway YAML giving database.url and database.schema"),
])
def test_every_option_has_help(argv, expected, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--help"])
    assert exit_.value.code == 0
    assert expected in " ".join(capsys.readouterr().out.split())
