"""Registers the ``voice`` authenticator (entry point ``voice_auth``) and builds it at start-up.

Start-up loads the speaker model once (verified against its pinned hashes, offline), opens the encrypted vault
on the gateway's database with keys from the environment or a key file, and creates the plugin's tables. Any
missing piece is a start-up error that says what to do, never a failure at the first customer's voice note.
"""

from __future__ import annotations

import asyncio
import os
import stat
import threading
from pathlib import Path
from typing import Any

from gateway.components import Authenticator, ComponentSpec, GatewayContext, Register
from gateway.errors import GatewayError
from gateway.hookspecs import hookimpl

from voicegate_voice_auth.authenticator import VoiceAuthenticator
from voicegate_voice_auth.content import ContentChecker, phrase_words
from voicegate_voice_auth.settings import VoiceAuthSettings
from voicegate_voice_auth.storage import AuthStore

# Loaded models by folder. The model is read-only and costs seconds and ~100 MB to load: one per process, shared by
# every app built in it (tests build many), instead of one per app.
_models: dict[str, Any] = {}
_models_lock = threading.Lock()


def shared_model(model_dir: str | Path) -> Any:
    """The ECAPA model in ``model_dir``, loaded (hash-verified, offline) once per process and folder.

    Public so that other code in the same process needing the same model (the voiceprints test session) shares
    this copy instead of loading a second one."""
    from voiceprints import load_ecapa

    key = str(Path(model_dir).expanduser().resolve())
    with _models_lock:
        model = _models.get(key)
        if model is None:
            model = load_ecapa(key, threads=min(2, os.cpu_count() or 1))
            _models[key] = model
        return model


def _model_dir(settings: VoiceAuthSettings, context: GatewayContext) -> str:
    if not settings.model_dir:
        raise GatewayError(
            "voice authenticator: no speaker model folder configured. Set authentication.authenticators.voice."
            "model_dir in the YAML or the VOICEGATE_MODEL_DIR environment variable (get the model with "
            "`voicegate voiceprints fetch-model DIR`)."
        )
    path = Path(settings.model_dir).expanduser()
    return str(path if path.is_absolute() else Path(context.config_dir) / path)


def _keyring(settings: VoiceAuthSettings, context: GatewayContext) -> Any:
    from voiceprints import KeyRing

    if os.environ.get(settings.keys_env):
        return KeyRing.from_env(settings.keys_env)
    if settings.key_file is None:
        raise GatewayError(
            f"voice authenticator: no voiceprint encryption key. Set the environment variable {settings.keys_env} "
            "to 'KEY_ID:BASE64KEY' (e.g. the output of `voicegate voiceprints rotate-key --new-key`) or set "
            "authentication.authenticators.voice.key_file."
        )
    path = Path(settings.key_file).expanduser()
    if not path.is_absolute():
        path = Path(context.config_dir) / path
    if not path.exists() and settings.create_key_file:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Created 0600 from the start: the file must never be readable by other users, even for a moment.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
        with os.fdopen(fd, "w") as out:
            out.write("# voiceprint encryption keys (first = active). Keep secret; back it up.\n")
            out.write(KeyRing.generate().export() + "\n")
    return KeyRing.from_file(path)


async def create_voice_authenticator(settings: VoiceAuthSettings, context: GatewayContext) -> VoiceAuthenticator:
    """The component factory: everything heavy happens here, once, off the event loop."""
    from voiceprints import AsyncEngine, Engine, Vault, VoiceprintError

    notes: Any = None
    engine: Any = None
    content: ContentChecker | None = None
    try:
        try:
            keyring = _keyring(settings, context)
            if settings.worker_redis_url:  # voice workers do the audio: no model here, only scoring arithmetic
                from voicegate_voice_auth.remote import ModelCard, RemoteNotes, connect_redis

                redis = await connect_redis(settings.worker_redis_url)
                notes = RemoteNotes(redis, keyring, queue=settings.worker_queue, queue_limit=settings.queue_limit,
                                    timeout_s=settings.timeout_s)
                engine = AsyncEngine(Engine(ModelCard(), engine_settings(settings)), workers=1,
                                     queue_limit=settings.queue_limit, timeout_s=settings.timeout_s)
            else:
                model = await asyncio.get_running_loop().run_in_executor(
                    None, shared_model, _model_dir(settings, context))
                engine = AsyncEngine(Engine(model, engine_settings(settings)), workers=settings.workers,
                                     queue_limit=settings.queue_limit, timeout_s=settings.timeout_s)
            vault = Vault(context.db_engine, keyring, replay_similarity=settings.replay_similarity)
            await vault.create_schema()
        except VoiceprintError as exc:
            raise GatewayError(f"voice authenticator: {exc}") from exc
        store = AuthStore(context.db_engine)
        await store.create_schema()
        content = content_checker(settings)
        if content is not None and settings.mode == "passphrase":
            unknown = await content.missing_words(phrase_words(settings.passphrase or ""))
            if unknown:
                raise GatewayError(
                    f"voice authenticator: the passphrase words {', '.join(unknown)} are not in the recogniser's "
                    "English dictionary; choose another passphrase or set check_content: false"
                )
        authenticator = VoiceAuthenticator(settings, engine=engine, vault=vault, store=store, content=content,
                                           clock=context.now, notes=notes)
        await authenticator.purge_expired()
        return authenticator
    except BaseException:  # a failed start-up leaves no pool, recogniser or Redis connection behind
        if content is not None:
            content.close()
        if engine is not None:
            engine.close()
        if notes is not None:
            await notes.close()
        raise


def content_checker(settings: VoiceAuthSettings) -> ContentChecker | None:
    """The recogniser that checks the spoken words, when these settings check them (the gateway's and the voice
    workers' alike)."""
    if settings.mode == "challenge" or settings.check_content:
        return ContentChecker(decoys=settings.content_decoys, near_misses=settings.content_near_misses)
    return None


def engine_settings(settings: VoiceAuthSettings) -> Any:
    """The ``voiceprints.EngineSettings`` of these plugin settings (the gateway's and the voice workers' alike)."""
    from voiceprints import EngineSettings

    return EngineSettings(min_speech_s=settings.min_speech_s, enrol_notes=settings.enrol_notes,
                          target_far=settings.target_far, threshold=settings.threshold,
                          enrol_min_agreement=settings.enrol_min_agreement)


@hookimpl
def register_authenticators(register: Register[Authenticator]) -> None:
    register(ComponentSpec(name="voice", factory=create_voice_authenticator, settings_model=VoiceAuthSettings,
                           description="verifies customers by voice note in the chat (consent, enrolment, "
                                       "digit challenge or passphrase, lockout with handoff)"))
