"""``voicegate voice-worker``: a process that runs voice note jobs queued by gateways (see :mod:`.remote`).

It reads the same YAML as the gateway (the voice authenticator's settings: model, keys, Redis URL, queue), loads the
model once and answers jobs until SIGINT/SIGTERM. Start as many as the notes need, on any machine that reaches Redis
and has the model and the voiceprint key.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from types import SimpleNamespace
from typing import Callable

from gateway.errors import GatewayError

from voicegate_voice_auth.settings import VoiceAuthSettings

log = logging.getLogger(__name__)


async def run_worker(settings: VoiceAuthSettings, config_dir: str, *, concurrency: int | None = None,
                     stop: asyncio.Event | None = None, ready: Callable[[], None] | None = None) -> int:
    """Serve jobs until ``stop`` is set or SIGINT/SIGTERM arrives (also while loading); returns how many notes
    were answered. ``ready`` is called once the model is loaded and Redis reached."""
    from voiceprints import Engine, VoiceprintError

    from voicegate_voice_auth.plugin import _keyring, _model_dir, content_checker, engine_settings, shared_model
    from voicegate_voice_auth.remote import connect_redis, serve_worker

    if not settings.worker_redis_url:
        raise GatewayError("voice worker: authentication.authenticators.voice.worker_redis_url is not set; the "
                           "gateways and the workers meet on that Redis")
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
        except (RuntimeError, ValueError):  # not the main thread (tests): the caller sets `stop`
            pass
    content = None
    try:
        context = SimpleNamespace(config_dir=config_dir)
        try:
            keyring = _keyring(settings, context)  # type: ignore[arg-type]
            model = await asyncio.to_thread(shared_model, _model_dir(settings, context))  # type: ignore[arg-type]
        except VoiceprintError as exc:
            raise GatewayError(f"voice worker: {exc}") from exc
        engine = Engine(model, engine_settings(settings))
        content = content_checker(settings)
        redis = await connect_redis(settings.worker_redis_url)
        jobs = concurrency or settings.workers
        log.info("voice worker: %d parallel job(s) from queue %r", jobs, settings.worker_queue)
        if ready is not None:
            ready()
        try:
            return await serve_worker(redis, keyring, engine, content, queue=settings.worker_queue,
                                      concurrency=jobs, stop=stop)
        finally:
            await redis.aclose()
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
        if content is not None:
            content.close()
