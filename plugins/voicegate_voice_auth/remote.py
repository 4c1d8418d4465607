"""Voice workers: note jobs queued on Redis and run by ``voicegate voice-worker`` processes.

Why: decoding and embedding cost ~100 ms of CPU per note, the rest of a chat turn well under a millisecond. With
``worker_redis_url`` set, gateway instances stay light (no model loaded) and voice capacity grows by starting
workers, on this machine or others.

Protocol (one Redis list per deployment, ``<worker_queue>:jobs``): the gateway ``RPUSH``es a job and ``BLPOP``s its
own reply key ``<worker_queue>:reply:<job id>``; a worker ``BLPOP``s a job, runs it and ``RPUSH``es the reply (kept
60 s at most). Job and reply are sealed with AES-256-GCM under the voiceprint keyring (the job id is the associated
data, one per direction, and a reply must carry its own job's id), so no voice audio or embedding crosses Redis in
clear and no reply can be passed off as another's; workers need the same key. Deadlines are on Redis's clock. Admission is explicit: with
``queue_limit`` jobs already waiting the gateway answers "busy" at once. A job whose gateway gave up (``timeout_s``)
is taken back out of the queue, and a worker skips a job past its deadline, so nothing waits in Redis for nobody.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import struct
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


# Associated data per direction: a sealed job cannot be passed off as a reply, nor a reply as another job's.
_JOB, _REPLY = "voice-job", "voice-reply"


def _seal(keyring: Any, direction: str, job_id: str, header: dict[str, Any], data: bytes = b"") -> str:
    head = json.dumps(header).encode()
    key_id, blob = keyring.encrypt(struct.pack(">I", len(head)) + head + data, f"{direction}:{job_id}".encode())
    return json.dumps({"id": job_id, "key": key_id, "blob": base64.b64encode(blob).decode("ascii")})


def _open(keyring: Any, direction: str, message: bytes | str,
          job_id: str | None = None) -> tuple[str, dict[str, Any], bytes]:
    """Decrypt a sealed job or reply. ``job_id``: the id it must belong to (a reply to *our* job); the id is the
    associated data, so a message sealed for another job fails authentication. Raises ``VaultError`` or
    ``ValueError``."""
    outer = json.loads(message)
    if not isinstance(outer, dict) or not isinstance(outer.get("id"), str):
        raise ValueError("not a sealed voice job")
    job_id = job_id if job_id is not None else outer["id"]
    plain = keyring.decrypt(str(outer.get("key")), base64.b64decode(str(outer.get("blob"))),
                            f"{direction}:{job_id}".encode())
    (size,) = struct.unpack(">I", plain[:4])
    return job_id, json.loads(plain[4 : 4 + size]), plain[4 + size :]


async def _redis_now(redis: Any) -> float:
    """Redis's clock: gateways and workers on different machines compare deadlines on one clock."""
    seconds, micros = await redis.time()
    return seconds + micros / 1e6


class RemoteNotes:
    """The gateway side: queue a note job, wait for a worker's answer (a :class:`NoteChecker`)."""

    def __init__(self, redis: Any, keyring: Any, *, queue: str, queue_limit: int, timeout_s: float) -> None:
        self.redis = redis  # redis.asyncio.Redis
        self.keyring = keyring
        self.queue, self.queue_limit, self.timeout_s = queue, queue_limit, timeout_s

    async def check(self, job: NoteJob) -> tuple[Any, bool]:
        from redis.exceptions import RedisError
        from voiceprints import AudioRejected, EngineBusy, EngineTimeout, NoteEmbedding, VaultError

        jobs, _ = _keys(self.queue)
        job_id = uuid.uuid4().hex
        _, reply = _keys(self.queue, job_id)
        message: str | None = None
        answered = False
        try:
            # Bounded here too: a half-open connection must not hold the customer's turn forever.
            async with asyncio.timeout(self.timeout_s + 5):
                if await self.redis.llen(jobs) >= self.queue_limit:
                    raise EngineBusy(f"{self.queue_limit} voice notes are already waiting for a worker")
                header = {"deadline": await _redis_now(self.redis) + self.timeout_s, "mime": job.mime,
                          "enrolment": job.enrolment,
                          "expected": list(job.expected) if job.expected is not None else None}
                message = _seal(self.keyring, _JOB, job_id, header, job.data)
                await self.redis.rpush(jobs, message)
                answer = await self.redis.blpop([reply], timeout=self.timeout_s)
            if answer is None:
                raise EngineTimeout(f"no voice worker answered within {self.timeout_s:g} s (are workers running?)")
            try:
                _, result, body = _open(self.keyring, _REPLY, answer[1], job_id)
            except (VaultError, ValueError):
                log.error("voice workers: a reply to job %s failed authentication; it was ignored", job_id)
                raise EngineBusy("the voice worker's reply could not be authenticated") from None
            answered = True
        except (RedisError, OSError, TimeoutError) as exc:
            raise EngineBusy(f"the voice workers' Redis failed ({type(exc).__name__})") from None
        finally:
            if not answered and message is not None:  # not answered: nobody should find the job or a reply later
                await self._withdraw(jobs, message, reply)
        if result["status"] == "ok":
            return NoteEmbedding.from_bytes(body), bool(result["words_ok"])
        if result["status"] == "rejected":
            raise AudioRejected(result["code"], result["message"])
        # The worker logged the failure; the customer is asked to send the note again, as when busy.
        raise EngineBusy(f"the voice worker failed on this note ({result.get('message', 'unknown error')})")

    async def _withdraw(self, jobs: str, message: str, reply: str) -> None:
        try:
            async with asyncio.timeout(5):
                await self.redis.lrem(jobs, 1, message)
                await self.redis.delete(reply)
        except Exception as exc:  # noqa: BLE001 - best effort: the reply expires by itself, the worker skips the job
            log.warning("voice workers: could not withdraw an unanswered job (%s)", type(exc).__name__)

    async def close(self) -> None:
        await self.redis.aclose()


async def serve_worker(redis: Any, keyring: Any, engine: Any, content: ContentChecker | None, *, queue: str,
                       concurrency: int, stop: asyncio.Event) -> int:
    """The worker side: take jobs from ``queue`` until ``stop`` is set; returns how many were answered.

    ``engine`` is a ``voiceprints.Engine`` with the model loaded; jobs run in threads, ``concurrency`` at a time.
    A job that cannot be opened is dropped and logged; a Redis failure is logged and retried after a pause, so
    neither stops the worker.
    """
    from redis.exceptions import RedisError

    jobs, _ = _keys(queue)
    answered = 0

    async def one_loop() -> None:
        nonlocal answered
        while not stop.is_set():
            try:
                got = await redis.blpop([jobs], timeout=1)
                if got is not None and await _answer(redis, keyring, engine, content, queue, got[1]):
                    answered += 1
            except (RedisError, OSError) as exc:
                log.warning("voice worker: Redis failed (%s); retrying in 1 s", type(exc).__name__)
                await asyncio.sleep(1.0)

    await asyncio.gather(*(one_loop() for _ in range(concurrency)))
    return answered


async def _answer(redis: Any, keyring: Any, engine: Any, content: ContentChecker | None, queue: str,
                  message: bytes) -> bool:
    from voiceprints import AudioRejected

    try:
        job_id, header, data = _open(keyring, _JOB, message)
        deadline = float(header["deadline"])
        expected = tuple(header["expected"]) if header["expected"] is not None else None
        job = NoteJob(data=data, mime=header["mime"], expected=expected, enrolment=bool(header["enrolment"]))
    except Exception as exc:  # noqa: BLE001 - another deployment's key, or not a job at all: never the worker's end
        log.warning("voice worker: dropped a job it cannot open (%s); do the gateway and the worker share the "
                    "voiceprint key?", type(exc).__name__)
        return False
    if await _redis_now(redis) > deadline:
        return False  # its gateway has given up on it
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
        await pipe.rpush(reply, _seal(keyring, _REPLY, job_id, result, body)).expire(reply, REPLY_TTL_S).execute()
    return True
