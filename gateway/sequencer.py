"""Per-key ordering of work: the messages of one conversation are handled one at a time, in order.

The pipeline wraps each turn in ``async with sequencer.hold(key)``; different keys run
concurrently. :class:`LocalSequencer` orders work inside one process. :class:`RedisSequencer`
adds a Redis lock per key so several gateway instances (``coordination.redis_url``) keep
the same guarantee.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from types import TracebackType
from typing import Any, Protocol

from gateway.errors import GatewayError

log = logging.getLogger(__name__)


class SequencerTimeout(GatewayError):
    """A key stayed held by someone else for longer than the acquire timeout."""


class Hold(Protocol):
    async def __aenter__(self) -> None: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class Sequencer(Protocol):
    """Serialises work per key; the pipeline's only ordering primitive."""

    def hold(self, key: str) -> Hold:
        """An async context manager: entered when every earlier holder of ``key`` has left."""
        ...

    async def close(self) -> None:
        """Release connections (Redis) at shut-down."""
        ...


class _Entry:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()  # FIFO: a newcomer never overtakes a waiter
        self.users = 0


class _LocalHold:
    __slots__ = ("_owner", "_key", "_entry")

    def __init__(self, owner: "LocalSequencer", key: str) -> None:
        self._owner, self._key = owner, key
        self._entry: _Entry | None = None

    async def __aenter__(self) -> None:
        entries = self._owner._entries
        entry = entries.get(self._key)
        if entry is None:
            entry = entries[self._key] = _Entry()
        entry.users += 1
        self._entry = entry
        try:
            await entry.lock.acquire()
        except BaseException:  # cancelled while waiting: give the slot back
            self._release_slot()
            raise

    async def __aexit__(self, *exc: Any) -> None:
        assert self._entry is not None
        self._entry.lock.release()
        self._release_slot()

    def _release_slot(self) -> None:
        entry = self._entry
        assert entry is not None
        entry.users -= 1
        if entry.users == 0:  # nobody holds or waits: forget the key, so idle keys cost nothing
            del self._owner._entries[self._key]


class LocalSequencer:
    """In-process ordering with one FIFO ``asyncio.Lock`` per key, dropped as soon as the key is idle."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}

    def hold(self, key: str) -> _LocalHold:
        """Enter after every earlier holder of ``key`` in this process has left."""
        return _LocalHold(self, key)

    @property
    def active_keys(self) -> int:
        """Keys currently held or waited for (0 when idle: nothing leaks)."""
        return len(self._entries)

    async def close(self) -> None:
        """Nothing to release."""


class RedisSequencer:
    """Ordering across gateway instances: a local FIFO lock, then a Redis lock per key.

    The local lock first means one process sends at most one contender per key to Redis,
    and keeps strict arrival order among that process's messages; across processes the
    order is the order in which they win the Redis lock.

    Each Redis lock has a TTL (``ttl_s``) so a crashed instance cannot block a conversation
    for ever; a background task renews every held lock every ``ttl_s / 3`` while its turn
    runs. If an instance stalls for longer than the TTL (event loop blocked, machine paused)
    another one may take the key. The lock alone cannot stop the stalled writer, so the
    database fences it: every conversation update is conditioned on the ``version`` it read
    (see :mod:`gateway.db.store`), the stale write matches no row, and its transaction is
    rolled back instead of overwriting the newer state.
    """

    def __init__(
        self,
        redis: Any,
        *,
        prefix: str = "voicegate:seq:",
        ttl_s: float = 30.0,
        poll_s: float = 0.005,
        acquire_timeout_s: float = 60.0,
        owns_client: bool = False,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._ttl_s = ttl_s
        self._poll_s = poll_s
        self._acquire_timeout_s = acquire_timeout_s
        self._owns_client = owns_client
        self._local = LocalSequencer()
        self._held: dict[str, Any] = {}  # token -> redis Lock
        self._renewer: asyncio.Task[None] | None = None

    @classmethod
    def from_url(cls, url: str, **options: Any) -> "RedisSequencer":
        """Connect to Redis at ``url`` (``redis://host:port/db``)."""
        import redis.asyncio as aioredis

        return cls(aioredis.from_url(url), owns_client=True, **options)

    def hold(self, key: str) -> "_RedisHold":
        """Enter once this process's earlier holders left and the Redis lock for ``key`` is ours."""
        return _RedisHold(self, key)

    @property
    def active_keys(self) -> int:
        return self._local.active_keys

    async def _acquire(self, key: str) -> tuple[str, Any]:
        lock = self._redis.lock(
            self._prefix + key,
            timeout=self._ttl_s,
            sleep=self._poll_s,
            blocking_timeout=self._acquire_timeout_s,
            thread_local=False,  # many locks live in one thread (the event loop)
        )
        if not await lock.acquire():
            raise SequencerTimeout(
                f"conversation key '{key}' stayed locked for {self._acquire_timeout_s:.0f} s by another "
                "gateway instance; check that instance, or raise the acquire timeout"
            )
        token = uuid.uuid4().hex
        self._held[token] = lock
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.create_task(self._renew_forever(), name="voicegate-redis-lock-renewal")
        return token, lock

    async def _release(self, token: str) -> None:
        lock = self._held.pop(token)
        try:
            await lock.release()
        except Exception as exc:  # noqa: BLE001 - the lock expired and maybe moved on; nothing to undo
            log.warning("sequencer lock %s was lost before release: %s", lock.name, exc)

    async def _renew_forever(self) -> None:
        interval = self._ttl_s / 3
        while self._held:
            await asyncio.sleep(interval)
            for token, lock in list(self._held.items()):
                if token not in self._held:
                    continue
                try:
                    await lock.reacquire()  # resets the TTL if the lock is still ours
                except Exception as exc:  # noqa: BLE001 - fencing in the database protects the data
                    log.error("could not renew sequencer lock %s: %s", lock.name, exc)

    async def close(self) -> None:
        """Stop renewals and close the Redis client if this sequencer created it."""
        if self._renewer is not None:
            self._renewer.cancel()
            await asyncio.gather(self._renewer, return_exceptions=True)
        if self._owns_client:
            await self._redis.aclose()


class _RedisHold:
    __slots__ = ("_owner", "_key", "_local", "_token")

    def __init__(self, owner: RedisSequencer, key: str) -> None:
        self._owner, self._key = owner, key
        self._local = owner._local.hold(key)
        self._token: str | None = None

    async def __aenter__(self) -> None:
        await self._local.__aenter__()
        try:
            self._token, _ = await self._owner._acquire(self._key)
        except BaseException:
            await self._local.__aexit__(None, None, None)
            raise

    async def __aexit__(self, *exc: Any) -> None:
        try:
            if self._token is not None:
                await self._owner._release(self._token)
        finally:
            await self._local.__aexit__(None, None, None)


def make_sequencer(redis_url: str | None) -> Sequencer:
    """A :class:`RedisSequencer` when ``coordination.redis_url`` is set, else a :class:`LocalSequencer`."""
    return RedisSequencer.from_url(redis_url) if redis_url else LocalSequencer()
