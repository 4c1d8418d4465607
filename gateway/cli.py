"""The ``voicegate`` command: run the gateway, check a configuration, list plugins, migrate the database.

The only place that exits the process: library code raises :class:`gateway.errors.GatewayError`
subclasses and this module turns them into a message on stderr and an exit code
(0 ok, 1 failure, 2 invalid configuration or usage).
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import re
import signal
import socket
import sys
from pathlib import Path
from typing import Callable, Sequence

from gateway.errors import ConfigError, ConfigProblem, GatewayError

DEFAULT_CONFIG = "config/gateway.yaml"
EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``voicegate`` console script; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["voiceprints"]:  # delegated to voiceprints.cli, with what only the gateway knows filled in
        from gateway.cli_voiceprints import voiceprints_command

        return _reporting_errors(lambda: voiceprints_command(args[1:]))
    parser = _parser()
    options = parser.parse_args(args)
    if options.command is None:
        parser.print_help()
        return EXIT_FAILURE
    return _reporting_errors(lambda: options.handler(options))


def _reporting_errors(command: Callable[[], int]) -> int:
    """Run a command; configuration and gateway errors become a message on stderr and their exit code."""
    try:
        return command()
    except ConfigError as exc:
        print(f"invalid configuration:\n{exc}", file=sys.stderr)
        return EXIT_CONFIG
    except GatewayError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voicegate", description="VoiceGate customer-service chat gateway")
    sub = parser.add_subparsers(dest="command")

    run = sub.add_parser("run", help="start the gateway and serve until Ctrl-C / SIGTERM")
    run.add_argument("--config", default=DEFAULT_CONFIG, help=f"gateway YAML (default {DEFAULT_CONFIG})")
    run.add_argument("--host", help="listen address (overrides server.host)")
    run.add_argument("--port", type=int, help="listen port (overrides server.port; 0 = any free port)")
    run.set_defaults(handler=_run)

    check = sub.add_parser("check-config", help="validate a gateway YAML (and its plugins' settings) without starting")
    check.add_argument("file", help="the gateway YAML to check")
    check.set_defaults(handler=_check_config)

    plugins = sub.add_parser("plugins", help="list installed plugins and which the configuration enables")
    plugins.add_argument("--config", help=f"gateway YAML whose plugins: list to show (default {DEFAULT_CONFIG} when "
                                          "present, else installed plugins only)")
    plugins.set_defaults(handler=_plugins)

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_sub.add_parser("upgrade", help="migrate the database schema to the newest revision (Alembic)")
    upgrade.add_argument("--config", default=DEFAULT_CONFIG, help=f"gateway YAML giving database.url and "
                         f"database.schema (default {DEFAULT_CONFIG}; not read when --url is given)")
    upgrade.add_argument("--url", help="database URL (overrides database.url from the configuration)")
    upgrade.add_argument("--schema", help="PostgreSQL schema to migrate (overrides database.schema)")
    upgrade.add_argument("--revision", default="head", help="Alembic revision to migrate to (default head, the "
                         "newest; e.g. 0002)")
    upgrade.set_defaults(handler=_db_upgrade)

    sub.add_parser("voiceprints", help="voiceprint tools: fetch-model, evaluate, calibrate, build-cohort, rotate-key, "
                                        "delete")

    worker = sub.add_parser("voice-worker", help="run the voice note jobs gateways queue on Redis "
                                                 "(authentication.authenticators.voice.worker_redis_url)")
    worker.add_argument("--config", default=DEFAULT_CONFIG, help=f"gateway YAML (default {DEFAULT_CONFIG})")
    worker.add_argument("--concurrency", type=int, help="notes processed in parallel (default: the voice "
                                                        "authenticator's 'workers')")
    worker.set_defaults(handler=_voice_worker)
    return parser


def _voice_worker(options: argparse.Namespace) -> int:
    from gateway.cli_voiceprints import voice_worker_command

    return voice_worker_command(options)


def _load(path: str, **kwargs: object):  # -> GatewaySettings
    from gateway.config_loader import load_config

    return load_config(path, **kwargs)  # type: ignore[arg-type]


def _check_config(options: argparse.Namespace) -> int:
    settings = _load(options.file, path_hint="pass the right path: voicegate check-config FILE")
    print(
        f"{options.file}: OK — plugins: {', '.join(settings.plugins) or 'none'}; "
        f"channels: {', '.join(settings.channels) or 'none'}; bots: {', '.join(b.use for b in settings.bots) or 'none'}; "
        f"authentication: {settings.authentication.use if settings.authentication else 'none'}"
    )
    return EXIT_OK


def _plugins(options: argparse.Namespace) -> int:
    from gateway.plugin_manager import installed_plugins

    enabled: tuple[str, ...] = ()
    path = options.config or DEFAULT_CONFIG
    if Path(path).is_dir():
        raise ConfigError([ConfigProblem(path, None, "", "this is a folder, not a configuration file",
                                         "Pass the gateway YAML, e.g. --config config/gateway.yaml")])
    if Path(path).exists():
        enabled = _enabled_plugins(path)
        print(f"configuration: {path}")
    elif options.config:  # a file the operator named must exist; only the implicit default may be absent
        raise ConfigError([ConfigProblem(path, None, "", "the configuration file does not exist",
                                         "Pass the right path with --config, or leave --config out to list the "
                                         "installed plugins only")])
    else:
        print(f"configuration: {path} not found; showing installed plugins only")
    installed = installed_plugins()
    width = max([len(p.name) for p in installed] + [4])
    for plugin in installed:
        mark = f"enabled #{enabled.index(plugin.name) + 1}" if plugin.name in enabled else "-"
        origin = f"{plugin.distribution} {plugin.version}" if plugin.distribution else "unknown distribution"
        print(f"  {plugin.name:<{width}}  {mark:<11}  {plugin.module}  ({origin})")
    missing = [name for name in enabled if name not in {p.name for p in installed}]
    for name in missing:
        print(f"  {name:<{width}}  enabled but NOT INSTALLED")
    return EXIT_FAILURE if missing else EXIT_OK


def _enabled_plugins(path: str) -> tuple[str, ...]:
    """The ``plugins:`` list of a configuration, without needing its secrets in the environment."""
    from gateway.config_loader import parse_config

    settings = parse_config(Path(path).read_text(encoding="utf-8"), file=path, environ=_Blank())
    return settings.plugins


class _Blank(dict):  # type: ignore[type-arg]
    """An environment in which every variable is set (to an empty string)."""

    def __contains__(self, key: object) -> bool:
        return True

    def __getitem__(self, key: str) -> str:
        return ""


def _db_upgrade(options: argparse.Namespace) -> int:
    from gateway.db.migrate import upgrade

    schema = options.schema
    if options.url:
        url = options.url
    else:  # only database.* matters here: channel secrets and agent tokens may be unset
        if not Path(options.config).is_file():
            _load(options.config, path_hint="pass the right path with --config FILE, or --url URL")  # says it is missing
        from gateway.cli_voiceprints import configured_database, operator_settings

        url, schema = configured_database(options.config, operator_settings(options.config), None, schema)
    known = _known_revisions(options.revision)
    if known:
        print(f"error: unknown revision {options.revision!r}; the migrations know {known} (or 'head' for the newest, "
              "the default)", file=sys.stderr)
        return EXIT_CONFIG
    from alembic.util import CommandError

    try:
        revision = upgrade(url, options.revision, **({"schema": schema} if schema else {}))
    except CommandError as exc:  # e.g. a relative revision ("+2") beyond the newest
        print(f"error: cannot migrate to revision {options.revision!r}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    print(f"database schema at revision {revision}")
    return EXIT_OK


def _known_revisions(revision: str) -> str | None:
    """None when the packaged migrations know ``revision``; else the revisions they do know, oldest first."""
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    from gateway.db.migrate import alembic_config

    script = ScriptDirectory.from_config(alembic_config())
    if re.fullmatch(r"\w*[+-]\d+", revision):  # relative ("+1", "0001+1"): only resolvable against the database
        return None
    try:
        script.get_revisions(revision)
    except CommandError:
        return ", ".join(reversed([r.revision for r in script.walk_revisions()]))
    return None


def _run(options: argparse.Namespace) -> int:
    settings = _load(options.config, path_hint="pass the right path with --config FILE")
    server = settings.server.model_copy(
        update={k: v for k, v in (("host", options.host), ("port", options.port)) if v is not None}
    )
    settings = settings.model_copy(update={"server": server})
    logging.basicConfig(level=settings.logging.level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if settings.logging.level != "DEBUG":
        logging.getLogger("alembic").setLevel(logging.WARNING)  # its start-up chatter hides the URL
    _check_listen_address(settings.server.host, settings.server.port)  # before the slow start-up (model, migrations)
    return asyncio.run(_serve(settings))


def _check_listen_address(host: str, port: int) -> None:
    """Fail fast when the server could not listen: bind and close a socket as asyncio's server does (SO_REUSEADDR,
    so a port left in TIME_WAIT by a stopped gateway does not count as taken). The real bind can still lose a race."""
    if port == 0:
        return
    try:
        addresses = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise GatewayError(f"cannot listen on {host!r}: {exc.strerror}; check server.host or pass --host") from None
    for family, kind, proto, _name, address in addresses:
        try:
            probe = socket.socket(family, kind, proto)
        except OSError:
            continue  # e.g. no IPv6 on this host: asyncio's server skips such a family too
        with probe:
            try:
                if os.name == "posix":
                    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                    probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                probe.bind(address)
            except OSError as exc:
                raise _listen_error(host, port, exc) from None


def _listen_error(host: str, port: int, exc: OSError) -> GatewayError:
    if exc.errno == errno.EADDRINUSE:
        return GatewayError(f"port {port} on {host} is already in use: stop the other program or pass --port "
                            "(or change server.port)")
    if exc.errno == errno.EACCES:
        return GatewayError(f"not allowed to listen on port {port} on {host} (ports below 1024 need privileges): "
                            "pass --port")
    return GatewayError(f"cannot listen on {host} port {port} ({exc.strerror or exc}): check server.host / --host")


async def _serve(settings) -> int:  # settings: GatewaySettings
    from aiohttp import web

    from gateway.app import create_app
    from gateway.serving import tune_for_serving

    app = create_app(settings)
    tune_for_serving(app)
    # One access-log line per chat message is noise at INFO and costs a measurable share of a
    # turn; DEBUG turns it on.
    access_log = logging.getLogger("aiohttp.access") if settings.logging.level == "DEBUG" else None
    runner = web.AppRunner(app, handle_signals=False, access_log=access_log)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.server.host, settings.server.port)
        try:
            await site.start()
        except OSError as exc:  # taken since _check_listen_address looked
            raise _listen_error(settings.server.host, settings.server.port, exc) from None
        host, port = _bound_address(site, settings.server.host, settings.server.port)
        base = f"http://{host}:{port}"
        if "webchat" in settings.channels:
            print(f"VoiceGate is running. Open the web chat: {base}/channels/webchat/", flush=True)
        else:
            print(f"VoiceGate is running at {base}/ (health: {base}/healthz)", flush=True)
        print("Press Ctrl-C to stop.", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        print("stopping ...", flush=True)
    finally:
        await runner.cleanup()
    return EXIT_OK


def _bound_address(site, host: str, port: int) -> tuple[str, int]:
    server = getattr(site, "_server", None)
    sockets = getattr(server, "sockets", None) or []
    if sockets:
        port = sockets[0].getsockname()[1]
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    return (f"[{shown}]" if ":" in shown else shown), port


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
