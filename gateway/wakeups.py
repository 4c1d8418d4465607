"""Wake-ups by key (a recipient) in this process and, with Redis, in every gateway instance.

A long poll waiting for a customer's messages, or a web chat socket that should pick up
messages queued by another instance, registers interest in a key; :meth:`Wakeups.notify`
wakes every waiter of that key here at once and publishes the key on a Redis pub/sub
channel so the other instances wake theirs. The data itself stays in the database: a
wake-up only says "look again", so a lost one (Redis reconnecting) costs latency, never a
message, as long as waiters also look again now and then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit

from gateway.errors import GatewayError

log = logging.getLogger(__name__)

_RETRY_S = 1.0  # back-off before resubscribing after Redis failed
_PUBLISH_TIMEOUT_S = 2.0  # a wake-up is only a hint: give up on it rather than wait for a stuck Redis


class Wakeups:
    """Waiters per key, fanned out over Redis pub/sub channel ``topic`` when ``redis_url`` is set.

    ``on_remote(key)`` (optional, synchronous) runs for every key another instance (or this
    one, through Redis) announced. Call :meth:`start` before relying on remote wake-ups and
    :meth:`close` at shut-down.
    """

    def __init__(self, topic: str, redis_url: str | None = None, *,
                 on_remote: Callable[[str], None] | None = None) -> None:
        self.topic = topic
        self.redis_url = redis_url
        self.on_remote = on_remote
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._redis: Any = None
        self._listener: asyncio.Task[None] | None = None

    @property
    def shared(self) -> bool:
        """True when wake-ups reach the other instances (Redis configured)."""
        return self.redis_url is not None

    async def start(self) -> None:
        """Subscribe to ``topic`` (Redis only); returns once the subscription is active."""
        if self.redis_url is None or self._listener is not None:
            return
        import redis.asyncio as aioredis

        self._redis = aioredis.from_url(self.redis_url)
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.topic)  # sent and confirmed before a waiter checks the database
        except Exception as exc:  # noqa: BLE001 - start-up fails with where and what to do
            await self.close()
            raise GatewayError(
                f"cannot subscribe to Redis at {_safe(self.redis_url)} for {self.topic!r}: {str(exc).rstrip('.')}. "
                "Check coordination.redis_url and that Redis runs."
            ) from exc
        self._listener = asyncio.create_task(self._listen(pubsub), name=f"voicegate-wakeups-{self.topic}")

    async def close(self) -> None:
        """Stop listening and close the Redis connections."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await listener
        redis, self._redis = self._redis, None
        if redis is not None:
            with contextlib.suppress(Exception):
                await redis.aclose()

    @contextlib.contextmanager
    def waiting(self, key: str) -> Iterator[asyncio.Event]:
        """An event set on the next wake-up of ``key``; register it *before* checking the data."""
        event = asyncio.Event()
        self._waiters.setdefault(key, set()).add(event)
        try:
            yield event
        finally:
            waiters = self._waiters.get(key)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiters[key]

    def waiters(self, key: str) -> int:
        """How many coroutines wait for ``key`` in this process (diagnostics, tests)."""
        return len(self._waiters.get(key, ()))

    async def notify(self, key: str) -> None:
        """Wake the waiters of ``key`` here, then in the other instances (best effort)."""
        self._wake(key)
        if self._redis is not None:
            try:
                # Bounded: a Redis that stopped answering must not hold up the delivery that called us.
                await asyncio.wait_for(self._redis.publish(self.topic, key.encode("utf-8")), _PUBLISH_TIMEOUT_S)
            except Exception:  # noqa: BLE001 - waiters look again on their own; say why it was slower
                log.warning("could not publish a wake-up on Redis channel %r", self.topic, exc_info=True)

    def _wake(self, key: str) -> None:
        for event in self._waiters.get(key, ()):
            event.set()

    async def _listen(self, pubsub: Any) -> None:
        while True:
            try:
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    key = message["data"].decode("utf-8", "replace")
                    self._wake(key)
                    if self.on_remote is not None:
                        try:
                            self.on_remote(key)
                        except Exception:  # noqa: BLE001 - one bad handler must not stop the listener
                            log.exception("wake-up handler for %r failed", self.topic)
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                raise
            except Exception:  # noqa: BLE001 - Redis went away: resubscribe after a pause
                log.warning("Redis wake-ups on %r interrupted; resubscribing", self.topic, exc_info=True)
            await asyncio.sleep(_RETRY_S)
            with contextlib.suppress(Exception):
                await pubsub.subscribe(self.topic)


def _safe(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")).geturl()
