"""Voice workers: a gateway with ``worker_redis_url`` loads no model and queues each note on the real Redis; a
worker (``run_worker``, what ``voicegate voice-worker`` runs) embeds it with the real model. The customer sees the
same conversation as with the gateway's own pool."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from typing import Any

import pytest
import redis.asyncio as aioredis

from gateway.testing import runtime_of
from support.chat import all_text
from support.speech import DigitSpeaker, model_dir, ogg_opus
from voicegate_voice_auth.note_jobs import NoteJob
from voicegate_voice_auth.remote import RemoteNotes
from voicegate_voice_auth.settings import VoiceAuthSettings
from voicegate_voice_auth.worker import run_worker

from test_voice_rest import ENROLLED, EURO, IMPOSTOR, VoiceCustomer

pytestmark = pytest.mark.model

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def redis() -> Any:
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"Redis at {REDIS_URL} is not running ({exc}); .ci/run starts it")
    yield client
    await client.aclose()


@pytest.fixture
def queue() -> str:
    return f"voicegate-test:{uuid.uuid4().hex[:8]}"


class Worker:
    """``run_worker`` on the voice settings of a gateway configuration, as a task of this test."""

    def __init__(self, voice: dict[str, Any], config_dir: str) -> None:
        self.settings = VoiceAuthSettings.model_validate(voice)
        self.config_dir = config_dir
        self.stop = asyncio.Event()
        self.task: asyncio.Task[int] | None = None

    async def start(self) -> "Worker":
        ready = asyncio.Event()
        self.task = asyncio.create_task(run_worker(self.settings, self.config_dir, concurrency=2, stop=self.stop,
                                                   ready=ready.set))
        await asyncio.wait([self.task, asyncio.create_task(ready.wait())], return_when=asyncio.FIRST_COMPLETED)
        if self.task.done():
            self.task.result()  # raises what went wrong
        return self

    async def close(self) -> int:
        self.stop.set()
        assert self.task is not None
        return await asyncio.wait_for(self.task, 10)


def worker_gateway_settings(voice_settings, queue: str, **voice: Any):
    settings = voice_settings(worker_redis_url=REDIS_URL, worker_queue=queue, model_dir="", **voice)
    return settings, dict(settings.authentication.authenticators["voice"])


async def test_a_customer_enrols_and_verifies_through_a_voice_worker(voice_settings, gateway_client, redis,
                                                                    queue, tmp_path) -> None:
    settings, voice = worker_gateway_settings(voice_settings, queue)
    client = await gateway_client(settings)
    auth = runtime_of(client).authenticator
    assert not hasattr(auth.engine.engine.model, "embed")  # the gateway holds no model, only its identity
    worker = await Worker({**voice, "model_dir": str(model_dir())}, str(tmp_path)).start()
    try:
        bob = VoiceCustomer(client)
        theo = DigitSpeaker(ENROLLED, seed=1)
        replies = await bob.ask_balance_and_consent()
        replies = await bob.enrol(theo, replies)
        impostor = await bob.note(replies, DigitSpeaker(IMPOSTOR, seed=2))
        assert "didn't match your voiceprint" in all_text(impostor) and EURO not in all_text(impostor)
        replies = await bob.verify(theo, impostor)
        assert "it's you" in all_text(replies) and EURO in all_text(replies), all_text(replies)
    finally:
        answered = await worker.close()
    assert answered == len(bob.sent)  # every note went to the worker
    assert await redis.keys(f"{queue}*") == []  # nothing left behind: jobs taken, replies read


async def test_remote_notes_equal_local_ones_and_travel_sealed(voice_settings, redis, queue, tmp_path) -> None:
    from voiceprints import AudioRejected, Engine, KeyRing

    from voicegate_voice_auth.plugin import engine_settings, shared_model

    keys = KeyRing.generate()
    (tmp_path / "voiceprint.keys").write_text(keys.export() + "\n")
    (tmp_path / "voiceprint.keys").chmod(0o600)
    _, voice = worker_gateway_settings(voice_settings, queue, key_file=str(tmp_path / "voiceprint.keys"))
    remote = RemoteNotes(aioredis.Redis.from_url(REDIS_URL), keys, queue=queue, queue_limit=4, timeout_s=20)
    note_bytes = ogg_opus(DigitSpeaker(ENROLLED, seed=3).say("4729"))
    job = NoteJob(data=note_bytes, mime="audio/ogg", expected=None, enrolment=False)

    checking = asyncio.create_task(remote.check(job))
    for _ in range(100):  # the job waits in Redis, sealed: no Ogg page, no plain embedding
        if await redis.llen(f"{queue}:jobs"):
            break
        await asyncio.sleep(0.02)
    (raw,) = await redis.lrange(f"{queue}:jobs", 0, -1)
    blob = base64.b64decode(json.loads(raw)["blob"])
    assert b"OggS" not in blob and b"OggS" not in raw and len(blob) > len(note_bytes)

    worker = await Worker({**voice, "model_dir": str(model_dir())}, str(tmp_path)).start()
    try:
        note, words_ok = await asyncio.wait_for(checking, 30)
        local = Engine(shared_model(model_dir()), engine_settings(worker.settings)).check_note(note_bytes, "audio/ogg")
        assert words_ok and float(note.embedding @ local.embedding) > 0.9999
        assert note.audio_sha256 == local.audio_sha256 and note.model_id == local.model_id

        silent = (model_dir().parents[1] / "audio" / "voice-notes" / "silence-3s.ogg").read_bytes()
        with pytest.raises(AudioRejected) as rejected:
            await remote.check(NoteJob(data=silent, mime="audio/ogg", expected=None, enrolment=False))
        assert rejected.value.code == "silent" and str(rejected.value)
    finally:
        await worker.close()
        await remote.close()
    assert await redis.keys(f"{queue}*") == []


async def test_without_workers_notes_are_busy_or_withdrawn(redis, queue) -> None:
    from voiceprints import EngineBusy, EngineTimeout, KeyRing

    keys = KeyRing.generate()
    remote = RemoteNotes(aioredis.Redis.from_url(REDIS_URL), keys, queue=queue, queue_limit=1, timeout_s=0.5)
    job = NoteJob(data=b"not audio", mime=None, expected=None, enrolment=False)
    waiting = asyncio.create_task(remote.check(job))
    await asyncio.sleep(0.2)
    with pytest.raises(EngineBusy):  # the one queue slot is taken: refused at once, nothing queued
        await remote.check(job)
    with pytest.raises(EngineTimeout):
        await waiting
    assert await redis.llen(f"{queue}:jobs") == 0  # the unanswered job was taken back out
    await remote.close()


WORKER_CONFIG = """\
database: {url: "sqlite+aiosqlite:///gateway.db"}
plugins: [rest, demo_bot, voice_auth]
channels:
  rest: {secret: "${VG_REST_SECRET}"}
authentication:
  use: voice
  authenticators:
    voice:
      model_dir: "${VOICEGATE_MODEL_DIR}"
      key_file: voiceprint.keys
      create_key_file: true
      worker_redis_url: "%s"
      worker_queue: "%s"
"""


async def test_the_voice_worker_command_serves_and_stops_on_sigterm(redis, queue, tmp_path) -> None:
    """``voicegate voice-worker`` as an operator runs it: the gateway's YAML, secrets it does not use unset."""
    import os
    import signal
    import sys
    from pathlib import Path

    from voiceprints import KeyRing

    (tmp_path / "voiceprint.keys").write_text(KeyRing.generate().export() + "\n")
    (tmp_path / "voiceprint.keys").chmod(0o600)
    config = tmp_path / "gateway.yaml"
    config.write_text(WORKER_CONFIG % (REDIS_URL, queue))
    script = Path(sys.executable).with_name("voicegate")
    env = {k: v for k, v in os.environ.items() if k != "VG_REST_SECRET"}
    env["VOICEGATE_MODEL_DIR"] = str(model_dir())
    process = await asyncio.create_subprocess_exec(str(script), "voice-worker", "--config", str(config),
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                                                   env=env)
    try:
        output = b""
        while f"serving queue '{queue}'".encode() not in output:
            line = await asyncio.wait_for(process.stdout.readline(), 60)
            assert line, f"voicegate voice-worker exited early:\n{output.decode()}"
            output += line
        process.send_signal(signal.SIGTERM)
        rest = await asyncio.wait_for(process.stdout.read(), 60)
        assert await asyncio.wait_for(process.wait(), 30) == 0, rest
        assert b"stopped after 0 note(s)" in rest and b"Traceback" not in rest
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    config.write_text(WORKER_CONFIG.replace('      worker_redis_url: "%s"\n', "") % queue)
    failed = await asyncio.create_subprocess_exec(str(script), "voice-worker", "--config", str(config),
                                                  stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                                                  env=env)
    _, err = await asyncio.wait_for(failed.communicate(), 60)
    assert failed.returncode == 1 and b"worker_redis_url is not set" in err


async def test_junk_jobs_do_not_stop_a_worker_and_foreign_replies_are_refused(voice_settings, redis, queue,
                                                                            tmp_path) -> None:
    from voiceprints import EngineBusy, KeyRing

    from voicegate_voice_auth.note_jobs import run_note_job
    from voicegate_voice_auth.remote import _JOB, _REPLY, _seal

    keys = KeyRing.generate()
    (tmp_path / "voiceprint.keys").write_text(keys.export() + "\n")
    (tmp_path / "voiceprint.keys").chmod(0o600)
    _, voice = worker_gateway_settings(voice_settings, queue, key_file=str(tmp_path / "voiceprint.keys"))
    for junk in (b"[]", b"7", b"not json", _seal(KeyRing.generate(), _JOB, "x" * 32, {"deadline": 0})):
        await redis.rpush(f"{queue}:jobs", junk)  # garbage, and a job sealed with another deployment's key
    worker = await Worker({**voice, "model_dir": str(model_dir())}, str(tmp_path)).start()
    remote = RemoteNotes(aioredis.Redis.from_url(REDIS_URL), keys, queue=queue, queue_limit=8, timeout_s=20)
    note = ogg_opus(DigitSpeaker(ENROLLED, seed=4).say("4729"))
    try:
        embedded, _ = await remote.check(NoteJob(data=note, mime="audio/ogg", expected=None, enrolment=False))
        assert embedded.speech_s > 1.0  # the worker survived the junk and answered

        # A reply sealed for another job, pushed onto this job's reply key, fails authentication.
        original_rpush = remote.redis.rpush

        async def forge_reply(key, message):  # type: ignore[no-untyped-def]
            await original_rpush(key, message)
            if key.endswith(":jobs"):
                job_id = json.loads(message)["id"]
                forged = _seal(keys, _REPLY, "another-job", {"status": "ok", "words_ok": True}, embedded.to_bytes())
                await redis.rpush(f"{queue}:reply:{job_id}", json.dumps({**json.loads(forged), "id": job_id}))

        remote.redis.rpush = forge_reply  # type: ignore[method-assign]
        await worker.close()  # nobody answers but the forger
        with pytest.raises(EngineBusy, match="authenticated"):
            await remote.check(NoteJob(data=note, mime="audio/ogg", expected=None, enrolment=False))
    finally:
        if not worker.stop.is_set():
            await worker.close()
        await remote.close()
    assert await redis.keys(f"{queue}*") == []

    with pytest.raises(RuntimeError, match="content checker"):  # never "the words are right" without a recogniser
        run_note_job(None, None, NoteJob(data=note, mime="audio/ogg", expected=("4",), enrolment=False))


def test_the_voice_worker_command_reports_bad_voice_settings_with_file_and_line(tmp_path, capsys) -> None:
    from gateway.cli import main

    config = tmp_path / "gateway.yaml"
    config.write_text(WORKER_CONFIG.replace("      create_key_file: true\n", "      create_key_file: true\n"
                                            "      workers: many\n") % (REDIS_URL, "q"))
    assert main(["voice-worker", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert f"{config}:" in err and "authentication.authenticators.voice.workers" in err and "integer" in err
