"""Voice workers: note jobs queued on Redis and run by ``voicegate voice-worker`` processes.

Why: decoding and embedding cost ~100 ms of CPU per note, the rest of a chat turn well under a millisecond. With
``worker_redis_url`` set, gateway instances stay light (no model loaded) and voice capacity grows by starting
workers, on this machine or others.

Protocol (one Redis list per deployment, ``<worker_queue>:jobs``): the gateway ``RPUSH``es a job and ``BLPOP``s its
own reply key ``<worker_queue>:reply:<job id>``; a worker ``BLPOP``s a job, runs it and ``RPUSH``es the reply (kept
60 s at most). Job and reply are sealed with AES-256-GCM under the voiceprint keyring (the job id is the associated
data), so no voice audio or embedding crosses Redis in clear; workers need the same key. Admission is explicit: with
``queue_limit`` jobs already waiting the gateway answers "busy" at once. A job whose gateway gave up (``timeout_s``)
is taken back out of the queue, and a worker skips a job past its deadline, so nothing waits in Redis for nobody.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import struct
import time
import uuid
from dataclasses import dataclass
from typing import Any

from voicegate_voice_auth.content import ContentChecker
from voicegate_voice_auth.note_jobs import NoteJob, run_note_job

log = logging.getLogger(__name__)

REPLY_TTL_S = 60


@dataclass(frozen=True)
class ModelCard:
    """What enrolment and scoring need of the speaker model (its identity), on a gateway that loads no model.

    The workers' notes carry the id and revision of the model that embedded them; a mismatch is refused as a
    ``ModelMismatchError``, so embeddings of different models are never compared."""

    model_id: str = ""
    model_revision: str = ""

    def __post_init__(self) -> None:
        from voiceprints import MODEL_ID, MODEL_REVISION

        object.__setattr__(self, "model_id", self.model_id or MODEL_ID)
        object.__setattr__(self, "model_revision", self.model_revision or MODEL_REVISION)


async def connect_redis(url: str) -> Any:
    """A ``redis.asyncio`` client for ``url``, checked with a PING (a clear start-up error, not a failed note)."""
    import redis.asyncio as aioredis
    from redis.exceptions import RedisError

    from gateway.errors import GatewayError

    client = aioredis.Redis.from_url(url)
    try:
        await asyncio.wait_for(client.ping(), 5)
    except (RedisError, OSError, asyncio.TimeoutError) as exc:
        await client.aclose()
        raise GatewayError(f"voice workers: cannot reach Redis at worker_redis_url ({type(exc).__name__}: {exc}); "
                           "start Redis or fix authentication.authenticators.voice.worker_redis_url") from None
    return client


def _keys(queue: str, job_id: str = "") -> tuple[str, str]:
    return f"{queue}:jobs", f"{queue}:reply:{job_id}"


def _seal(keyring: Any, job_id: str, header: dict[str, Any], data: bytes = b"") -> str:
    head = json.dumps(header).encode()
    key_id, blob = keyring.encrypt(struct.pack(">I", len(head)) + head + data, f"voice-job:{job_id}".encode())
    return json.dumps({"id": job_id, "key": key_id, "blob": base64.b64encode(blob).decode("ascii")})


def _open(keyring: Any, message: bytes | str) -> tuple[str, dict[str, Any], bytes]:
    outer = json.loads(message)
    job_id = outer["id"]
    plain = keyring.decrypt(outer["key"], base64.b64decode(outer["blob"]), f"voice-job:{job_id}".encode())
    (size,) = struct.unpack(">I", plain[:4])
    return job_id, json.loads(plain[4 : 4 + size]), plain[4 + size :]


class RemoteNotes:
    """The gateway side: queue a note job, wait for a worker's answer (a :class:`NoteChecker`)."""

    def __init__(self, redis: Any, keyring: Any, *, queue: str, queue_limit: int, timeout_s: float) -> None:
        self.redis = redis  # redis.asyncio.Redis
        self.keyring = keyring
        self.queue, self.queue_limit, self.timeout_s = queue, queue_limit, timeout_s

    async def check(self, job: NoteJob) -> tuple[Any, bool]:
        from voiceprints import AudioRejected, EngineBusy, EngineTimeout, NoteEmbedding

        jobs, _ = _keys(self.queue)
        if await self.redis.llen(jobs) >= self.queue_limit:
            raise EngineBusy(f"{self.queue_limit} voice notes are already waiting for a worker")
        job_id = uuid.uuid4().hex
        _, reply = _keys(self.queue, job_id)
        header = {"deadline": time.time() + self.timeout_s, "mime": job.mime, "enrolment": job.enrolment,
                  "expected": list(job.expected) if job.expected is not None else None}
        message = _seal(self.keyring, job_id, header, job.data)
        await self.redis.rpush(jobs, message)
        answer = await self.redis.blpop([reply], timeout=self.timeout_s)
        if answer is None:
            await self.redis.lrem(jobs, 1, message)  # not taken: nobody should find it later
            raise EngineTimeout(f"no voice worker answered within {self.timeout_s:g} s (are workers running?)")
        _, result, body = _open(self.keyring, answer[1])
        if result["status"] == "ok":
            return NoteEmbedding.from_bytes(body), bool(result["words_ok"])
        if result["status"] == "rejected":
            raise AudioRejected(result["code"], result["message"])
        # The worker logged the failure; the customer is asked to send the note again, as when busy.
        raise EngineBusy(f"the voice worker failed on this note ({result.get('message', 'unknown error')})")

    async def close(self) -> None:
        await self.redis.aclose()


async def serve_worker(redis: Any, keyring: Any, engine: Any, content: ContentChecker | None, *, queue: str,
                       concurrency: int, stop: asyncio.Event) -> int:
    """The worker side: take jobs from ``queue`` until ``stop`` is set; returns how many were answered.

    ``engine`` is a ``voiceprints.Engine`` with the model loaded; jobs run in threads, ``concurrency`` at a time.
    """
    jobs, _ = _keys(queue)
    answered = 0

    async def one_loop() -> None:
        nonlocal answered
        while not stop.is_set():
            got = await redis.blpop([jobs], timeout=1)
            if got is None:
                continue
            if await _answer(redis, keyring, engine, content, queue, got[1]):
                answered += 1

    await asyncio.gather(*(one_loop() for _ in range(concurrency)))
    return answered


async def _answer(redis: Any, keyring: Any, engine: Any, content: ContentChecker | None, queue: str,
                  message: bytes) -> bool:
    from voiceprints import AudioRejected, VaultError

    try:
        job_id, header, data = _open(keyring, message)
    except (VaultError, ValueError, KeyError) as exc:  # another deployment's key, or not a job at all
        log.warning("voice worker: dropped a job it cannot open (%s); do the gateway and the worker share the "
                    "voiceprint key?", type(exc).__name__)
        return False
    if time.time() > header["deadline"]:
        return False  # its gateway has given up on it
    expected = tuple(header["expected"]) if header["expected"] is not None else None
    job = NoteJob(data=data, mime=header["mime"], expected=expected, enrolment=header["enrolment"])
    body = b""
    try:
        note, words_ok = await asyncio.to_thread(run_note_job, engine, content, job)
        result: dict[str, Any] = {"status": "ok", "words_ok": words_ok}
        body = note.to_bytes()
    except AudioRejected as exc:
        result = {"status": "rejected", "code": exc.code, "message": str(exc)}
    except Exception as exc:  # noqa: BLE001 - the gateway gets an answer, the log the details
        log.exception("voice worker: a note job failed")
        result = {"status": "error", "message": type(exc).__name__}
    _, reply = _keys(queue, job_id)
    async with redis.pipeline(transaction=True) as pipe:
        await pipe.rpush(reply, _seal(keyring, job_id, result, body)).expire(reply, REPLY_TTL_S).execute()
    return True
