"""Running the engine from asyncio without blocking the event loop.

Decoding and inference run in a bounded thread pool (PyTorch, libsndfile and FFmpeg release the GIL while they
work). Admission is explicit: at most ``queue_limit`` requests may be in flight (running or waiting); the next one
gets :class:`EngineBusy` at once instead of queueing without bound and timing out later. A request that exceeds
``timeout_s`` raises :class:`EngineTimeout`; a thread cannot be killed, so its slot stays taken until the work really
ends, which keeps the admission count honest under overload.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from voiceprints.engine import Engine
from voiceprints.errors import EngineBusy, EngineTimeout
from voiceprints.records import Decision, NoteEmbedding, Voiceprint

T = TypeVar("T")


class AsyncEngine:
    """Coroutine façade over :class:`Engine` with a bounded worker pool.

    ``workers`` threads do the work (2 suits a 2-core machine); ``queue_limit`` caps requests in flight;
    ``timeout_s`` bounds each call. Call :meth:`close` (or use ``async with``) to shut the pool down.
    """

    def __init__(self, engine: Engine, *, workers: int = 2, queue_limit: int = 16, timeout_s: float = 15.0) -> None:
        if workers < 1 or queue_limit < workers:
            raise ValueError("need workers >= 1 and queue_limit >= workers")
        self.engine = engine
        self.workers = workers
        self.queue_limit = queue_limit
        self.timeout_s = timeout_s
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="voiceprints")
        self._in_flight = 0
        self._lock = threading.Lock()

    @property
    def in_flight(self) -> int:
        """Requests admitted and not yet finished (running or waiting for a worker)."""
        return self._in_flight

    def _release(self, _future: Future) -> None:
        with self._lock:
            self._in_flight -= 1

    async def run(self, func: Callable[..., T], *args: object) -> T:
        """Run ``func(*args)`` as one admitted job in this pool: the same queue limit and timeout as the methods below.

        For callers that combine engine work with their own CPU-bound step on the same decoded audio (the gateway's
        voice plugin checks the spoken words there) and want one admission, not two. Raises :class:`EngineBusy` at
        once when ``queue_limit`` jobs are in flight and :class:`EngineTimeout` after ``timeout_s``.
        """
        with self._lock:
            if self._in_flight >= self.queue_limit:
                raise EngineBusy(
                    f"The voice engine is busy ({self.queue_limit} requests in progress). Please try again in a moment."
                )
            self._in_flight += 1
        try:
            future = self._pool.submit(func, *args)
        except BaseException:
            with self._lock:
                self._in_flight -= 1
            raise
        future.add_done_callback(self._release)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self.timeout_s)
        except asyncio.TimeoutError:
            future.cancel()  # only helps if it has not started; otherwise the slot frees when it ends
            raise EngineTimeout(
                f"Checking the voice note took longer than {self.timeout_s:.0f} s. Please try again."
            ) from None

    async def check_note(self, data: bytes, mime: str | None = None) -> NoteEmbedding:
        """:meth:`Engine.check_note` in the pool."""
        return await self.run(self.engine.check_note, data, mime)

    async def check_enrolment_note(self, data: bytes, mime: str | None = None) -> NoteEmbedding:
        """:meth:`Engine.check_enrolment_note` in the pool."""
        return await self.run(self.engine.check_enrolment_note, data, mime)

    async def enrol(self, notes: Sequence[NoteEmbedding]) -> Voiceprint:
        """:meth:`Engine.enrol` in the pool."""
        return await self.run(self.engine.enrol, list(notes))

    async def verify(self, voiceprint: Voiceprint, data: bytes, mime: str | None = None) -> Decision:
        """:meth:`Engine.verify` in the pool."""
        return await self.run(self.engine.verify, voiceprint, data, mime)

    async def verify_note(self, voiceprint: Voiceprint, note: NoteEmbedding) -> Decision:
        """:meth:`Engine.verify_note` in the pool."""
        return await self.run(self.engine.verify_note, voiceprint, note)

    def close(self) -> None:
        """Stop accepting work and let running requests finish in the background."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def __aenter__(self) -> "AsyncEngine":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
