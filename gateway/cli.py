"""The ``voicegate`` command: run the gateway, check a configuration, list plugins, migrate the database.

The only place that exits the process: library code raises :class:`gateway.errors.GatewayError`
subclasses and this module turns them into a message on stderr and an exit code
(0 ok, 1 failure, 2 invalid configuration).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Sequence

from gateway.errors import ConfigError, GatewayError

DEFAULT_CONFIG = "config/gateway.yaml"
EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``voicegate`` console script; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["voiceprints"]:  # delegated whole, with its own options
        from voiceprints.cli import main as voiceprints_main

        return voiceprints_main(args[1:])
    parser = _parser()
    options = parser.parse_args(args)
    if options.command is None:
        parser.print_help()
        return EXIT_FAILURE
    try:
        return options.handler(options)
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
    check.add_argument("file")
    check.set_defaults(handler=_check_config)

    plugins = sub.add_parser("plugins", help="list installed plugins and which the configuration enables")
    plugins.add_argument("--config", default=DEFAULT_CONFIG)
    plugins.set_defaults(handler=_plugins)

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_sub.add_parser("upgrade", help="migrate the database schema to the newest revision (Alembic)")
    upgrade.add_argument("--config", default=DEFAULT_CONFIG)
    upgrade.add_argument("--url", help="database URL (overrides database.url from the configuration)")
    upgrade.add_argument("--schema", help="PostgreSQL schema to migrate (overrides database.schema)")
    upgrade.add_argument("--revision", default="head")
    upgrade.set_defaults(handler=_db_upgrade)

    sub.add_parser("voiceprints", help="voiceprint tools: fetch-model, evaluate, calibrate, rotate-key, delete")
    return parser


def _load(path: str, **kwargs: object):  # -> GatewaySettings
    from gateway.config_loader import load_config

    return load_config(path, **kwargs)  # type: ignore[arg-type]


def _check_config(options: argparse.Namespace) -> int:
    settings = _load(options.file)
    print(
        f"{options.file}: OK — plugins: {', '.join(settings.plugins) or 'none'}; "
        f"channels: {', '.join(settings.channels) or 'none'}; bots: {', '.join(b.use for b in settings.bots) or 'none'}; "
        f"authentication: {settings.authentication.use if settings.authentication else 'none'}"
    )
    return EXIT_OK


def _plugins(options: argparse.Namespace) -> int:
    from gateway.plugin_manager import installed_plugins

    enabled: tuple[str, ...] = ()
    if Path(options.config).exists():
        enabled = _enabled_plugins(options.config)
        print(f"configuration: {options.config}")
    else:
        print(f"configuration: {options.config} not found; showing installed plugins only")
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
    from gateway.config_loader import resolved_database_url
    from gateway.db.migrate import upgrade

    schema = options.schema
    if options.url:
        url = options.url
    else:
        settings = _load(options.config, check_plugins=False)
        url, schema = resolved_database_url(settings), schema or settings.database.db_schema
    revision = upgrade(url, options.revision, **({"schema": schema} if schema else {}))
    print(f"database schema at revision {revision}")
    return EXIT_OK


def _run(options: argparse.Namespace) -> int:
    settings = _load(options.config)
    server = settings.server.model_copy(
        update={k: v for k, v in (("host", options.host), ("port", options.port)) if v is not None}
    )
    settings = settings.model_copy(update={"server": server})
    logging.basicConfig(level=settings.logging.level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if settings.logging.level != "DEBUG":
        logging.getLogger("alembic").setLevel(logging.WARNING)  # its start-up chatter hides the URL
    return asyncio.run(_serve(settings))


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
        await site.start()
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
