"""``voicegate voiceprints ...`` and ``voicegate voice-worker``: the gateway's configuration turned into options.

voiceprints/ never imports the gateway, so what needs the gateway's configuration or tables is resolved here and
handed to :mod:`voiceprints.cli` as plain options: the model folder (--model); for rotate-key the database and keys;
for delete the database and customer. Operator tools read the YAML with the environment variables they do not use
(channel secrets, agent tokens) allowed to be unset. Imported by :mod:`gateway.cli` when one of these commands runs.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
from pathlib import Path
from typing import Sequence

from gateway.cli import DEFAULT_CONFIG, EXIT_OK
from gateway.errors import GatewayError

_MODEL_COMMANDS = ("evaluate", "calibrate", "build-cohort")
_PLACEHOLDER = "unset-for-voiceprints-cli"
_MODEL_CONFIG_HELP = (f"gateway YAML: with no --model and no $VOICEGATE_MODEL_DIR, the model folder is its "
                      f"authentication.authenticators.voice.model_dir (default {DEFAULT_CONFIG} when present)")
_CONFIG_HELP = {
    **{command: _MODEL_CONFIG_HELP for command in _MODEL_COMMANDS},
    "rotate-key": f"gateway YAML giving database.url / database.schema and the voice authenticator's keys_env / "
                  f"key_file (default {DEFAULT_CONFIG} when present, unless --database-url is given)",
}


def voiceprints_command(args: list[str]) -> int:
    """``voicegate voiceprints ARGS``: fill in from ``--config`` what the sub-command needs, then run it."""
    from voiceprints.cli import main as voiceprints_main

    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--config")
    options, rest = pre.parse_known_args(args)
    command = rest[0] if rest else None
    if command == "delete":
        return _voiceprints_delete(rest[1:], options.config)
    asks_help = _has_option(rest, "--help") or _has_option(rest, "-h")
    if asks_help:
        pass  # help reads no configuration
    elif command == "rotate-key":
        rest = [*rest, *_rotate_key_options(rest[1:], options.config)]
    elif command in _MODEL_COMMANDS and not _has_option(rest, "--model") \
            and not os.environ.get("VOICEGATE_MODEL_DIR"):
        model = _configured_model_dir(options.config)
        if model:
            rest = [*rest, "--model", model]
    return voiceprints_main(rest, config_help=_CONFIG_HELP)


def _option_value(args: Sequence[str], name: str) -> str | None:
    for index, arg in enumerate(args):
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
        if arg == name and index + 1 < len(args):
            return args[index + 1]
    return None


def _rotate_key_options(args: list[str], config: str | None) -> list[str]:
    """What ``rotate-key`` takes from the configuration and was not given: the database (not for --new-key) and the
    voice authenticator's keys (its ``keys_env`` when that variable is set, else its ``key_file``)."""
    url = _option_value(args, "--database-url")
    path = _config_path(config) if not url else config
    if not path:
        return []
    settings = operator_settings(path)
    extra: list[str] = []
    if not _has_option(args, "--new-key"):
        url, schema = configured_database(path, settings, url, _option_value(args, "--schema"))
        extra += ["--database-url", url] if not _has_option(args, "--database-url") else []
        extra += ["--schema", schema] if schema and not _has_option(args, "--schema") else []
    voice = _voice_settings(settings)
    if voice and not _has_option(args, "--keys-file") and not _has_option(args, "--keys-env"):
        keys_env = voice.get("keys_env") or "VOICEGATE_VOICEPRINT_KEYS"
        key_file = voice.get("key_file")
        if os.environ.get(keys_env) or not key_file:
            extra += ["--keys-env", keys_env]
        elif _PLACEHOLDER in key_file:
            raise GatewayError(f"{path}: authentication.authenticators.voice.key_file uses an environment variable "
                               f"that is not set; set it, set {keys_env}, or pass --keys-file")
        else:
            key_path = Path(key_file).expanduser()
            extra += ["--keys-file", str(key_path if key_path.is_absolute() else Path(path).resolve().parent / key_path)]
    return extra


def configured_database(path: str, settings, url: str | None, schema: str | None) -> tuple[str, str | None]:
    """``--database-url``/``--schema`` if given, else the configuration's ``database.url``/``database.schema``."""
    if url:
        return url, schema
    from gateway.config_loader import resolved_database_url

    url = resolved_database_url(settings)
    if _PLACEHOLDER in url:
        raise GatewayError(f"{path}: database.url uses an environment variable that is not set; set it, "
                           "or pass --database-url")
    schema = schema or settings.database.db_schema
    if schema and _PLACEHOLDER in schema:
        raise GatewayError(f"{path}: database.schema uses an environment variable that is not set; set it, "
                           "or pass --schema")
    return url, schema


def _has_option(args: Sequence[str], name: str) -> bool:
    return any(a == name or a.startswith(name + "=") for a in args)


def _config_path(explicit: str | None) -> str | None:
    """``--config`` if given, else the default configuration when it exists (None: no configuration)."""
    if explicit:
        return explicit
    return DEFAULT_CONFIG if Path(DEFAULT_CONFIG).exists() else None


def operator_settings(path: str):  # -> GatewaySettings
    """The configuration as operator tools need it: environment variables the tool does not use (channel secrets,
    agent tokens) may be unset, they read as a placeholder; an unset one in a value the tool uses is an error there."""
    from gateway.config_loader import parse_config

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise GatewayError(f"cannot read the configuration {path} ({exc}); pass the right file with --config") from None
    unset = {m.group(1) for m in re.finditer(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", text)} - set(os.environ)
    environ = {**os.environ, **{name: _PLACEHOLDER for name in unset}}
    return parse_config(text, file=path, config_dir=str(Path(path).resolve().parent), environ=environ)


def _voice_settings(settings) -> dict:  # settings: GatewaySettings
    auth = settings.authentication
    return dict(auth.authenticators.get("voice") or {}) if auth else {}


def voice_worker_command(options: argparse.Namespace) -> int:
    """``voicegate voice-worker``: the voice authenticator's settings from the YAML, then serve until a signal."""
    from gateway.config_loader import plugin_section
    from voicegate_voice_auth.settings import VoiceAuthSettings
    from voicegate_voice_auth.worker import run_worker

    path = options.config
    voice = plugin_section(operator_settings(path), VoiceAuthSettings, ("authentication", "authenticators", "voice"))
    for key in ("worker_redis_url", "model_dir", "key_file"):
        if _PLACEHOLDER in str(getattr(voice, key) or ""):
            raise GatewayError(f"{path}: authentication.authenticators.voice.{key} uses an environment variable "
                               "that is not set on this machine; set it")
    if options.concurrency is not None and options.concurrency < 1:
        raise GatewayError("--concurrency must be at least 1")
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    print(f"voice worker: loading the model for queue {voice.worker_queue!r} ...", flush=True)
    answered = asyncio.run(run_worker(
        voice, str(Path(path).resolve().parent), concurrency=options.concurrency,
        ready=lambda: print(f"voice worker: serving queue {voice.worker_queue!r}; Ctrl-C to stop", flush=True)))
    print(f"voice worker stopped after {answered} note(s)", flush=True)
    return EXIT_OK


def _configured_model_dir(config: str | None) -> str | None:
    """``authentication.authenticators.voice.model_dir`` of the configuration, made absolute."""
    path = _config_path(config)
    if path is None:
        return None
    model = _voice_settings(operator_settings(path)).get("model_dir")
    if not model:
        return None
    if _PLACEHOLDER in model:
        raise GatewayError(f"{path}: authentication.authenticators.voice.model_dir uses an environment variable "
                           "that is not set; set it, or pass --model DIR")
    model_path = Path(model).expanduser()
    return str(model_path if model_path.is_absolute() else Path(path).resolve().parent / model_path)


def _voiceprints_delete(args: list[str], config: str | None) -> int:
    """``voiceprints delete [CUSTOMER | --channel CH --sender ID] [--config FILE] [--database-url URL] ...``:
    the database (and key file) from the configuration unless given; the customer looked up by channel identity."""
    from datetime import datetime, timezone

    from voiceprints.cli import main as voiceprints_main

    parser = argparse.ArgumentParser(
        prog="voicegate voiceprints delete", allow_abbrev=False,
        description="Erase a customer's voiceprint, pending notes, replay memory and kept audio. --config FILE "
                    f"(default {DEFAULT_CONFIG} when present) gives the database; an active lockout is kept.")
    parser.add_argument("customer", nargs="?", help="the internal customer id (or use --channel and --sender)")
    parser.add_argument("--channel", help="channel of the customer's identity, e.g. rest, webchat, whatsapp")
    parser.add_argument("--sender", help="the customer's id on that channel (phone number, chat id ...)")
    parser.add_argument("--database-url", help="database URL (default: database.url of --config)")
    parser.add_argument("--schema", help="PostgreSQL schema (default: database.schema of --config)")
    parser.add_argument("--keys-file", help="voiceprint key file (not needed to delete)")
    parser.add_argument("--config", metavar="FILE", help=f"gateway YAML giving database.url / database.schema "
                        f"(default {DEFAULT_CONFIG} when present, unless --database-url is given)")
    try:
        options = parser.parse_args(args)
    except SystemExit as exc:  # --help or bad usage; only main() decides about exiting
        return int(exc.code or 0)
    if bool(options.channel) != bool(options.sender):
        raise GatewayError("give both --channel and --sender (e.g. --channel whatsapp --sender 393471234567)")
    if options.customer and options.channel:
        raise GatewayError("give either a customer id or --channel/--sender, not both")
    if not options.customer and not options.channel:
        raise GatewayError("say whose data to delete: a customer id, or --channel CH --sender ID")

    url, schema = options.database_url, options.schema
    path = _config_path(config) if not url else config
    if path:
        url, schema = configured_database(path, operator_settings(path), url, schema)
    url = url or os.environ.get("VOICEGATE_DATABASE_URL")
    if not url:
        raise GatewayError(f"no database: pass --config FILE (no {DEFAULT_CONFIG} here) or --database-url URL")

    customer = options.customer or asyncio.run(_customer_for(url, schema, options.channel, options.sender))
    forwarded = ["delete", customer, "--database-url", url]
    if schema:
        forwarded += ["--schema", schema]
    if options.keys_file:
        forwarded += ["--keys-file", options.keys_file]
    code = voiceprints_main(forwarded)
    if code == 0:
        audited = asyncio.run(_audit_deletion(url, schema, customer, options.channel or "-",
                                              datetime.now(timezone.utc)))
        if audited:
            print("Recorded in the voice audit trail (operator deletion).")
    return code


def _async_engine(url: str, schema: str | None):
    from sqlalchemy.ext.asyncio import create_async_engine

    connect_args = {"server_settings": {"search_path": schema}} if schema and url.startswith("postgresql") else {}
    return create_async_engine(url, connect_args=connect_args)


async def _customer_for(url: str, schema: str | None, channel: str, sender: str) -> str:
    import sqlalchemy as sa

    from gateway.db.models import identities

    engine = _async_engine(url, schema)
    try:
        async with engine.connect() as conn:
            if not await conn.run_sync(lambda sync: sa.inspect(sync).has_table(identities.name)):
                raise GatewayError(f"the database has no gateway tables (no {identities.name} table): check "
                                   "--config / --database-url")
            customer = await conn.scalar(sa.select(identities.c.customer_id).where(
                identities.c.channel == channel, identities.c.external_id == sender))
    finally:
        await engine.dispose()
    if customer is None:
        raise GatewayError(f"no customer has written from {channel}:{sender} (ids are exact, e.g. a phone number "
                           "without '+' on WhatsApp); nothing was deleted")
    return str(customer)


async def _audit_deletion(url: str, schema: str | None, customer: str, channel: str, at) -> bool:
    try:
        from voicegate_voice_auth.storage import audit_operator_deletion
    except ImportError:  # the voice plugin is not installed: there is no audit trail to write
        return False
    engine = _async_engine(url, schema)
    try:
        return await audit_operator_deletion(engine, customer, channel=channel, at=at)
    finally:
        await engine.dispose()
