"""Ordering across gateway instances with the real Redis (``coordination.redis_url``)."""

from __future__ import annotations

import asyncio
import uuid

import gw_plugins as gp
import pytest
import redis.asyncio as aioredis

from gateway.components import BotReply, ComponentSpec
from gateway.hookspecs import hookimpl
from gateway.messages import OutboundMessage
from gateway.sequencer import LocalSequencer, RedisSequencer, make_sequencer
from gateway.testing import RestDriver, make_settings, runtime_of


async def test_two_redis_sequencers_never_overlap_on_one_key(redis_url):
    prefix = f"voicegate:test:{uuid.uuid4().hex}:"
    first = RedisSequencer.from_url(redis_url, prefix=prefix, poll_s=0.001)
    second = RedisSequencer.from_url(redis_url, prefix=prefix, poll_s=0.001)
    inside = 0
    most_inside = 0
    order: dict[str, list[int]] = {"first": [], "second": []}

    async def work(name: str, sequencer: RedisSequencer, n: int) -> None:
        nonlocal inside, most_inside
        async with sequencer.hold("conversation-1"):
            inside += 1
            most_inside = max(most_inside, inside)
            order[name].append(n)
            await asyncio.sleep(0.002)
            inside -= 1

    try:
        tasks = []
        for n in range(15):
            tasks.append(asyncio.create_task(work("first", first, n)))
            tasks.append(asyncio.create_task(work("second", second, n)))
        await asyncio.gather(*tasks)
        assert most_inside == 1
        assert order["first"] == list(range(15)) and order["second"] == list(range(15))  # FIFO per instance
        assert first.active_keys == 0 and second.active_keys == 0
    finally:
        await first.close()
        await second.close()


def test_make_sequencer_picks_redis_only_when_configured(redis_url):
    assert isinstance(make_sequencer(None), LocalSequencer)
    assert isinstance(make_sequencer(redis_url), RedisSequencer)


class LockWitness:
    """A bot that checks, while it answers, that the Redis lock of the conversation is held."""

    __name__ = "lock_witness"

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self.seen: list[bool] = []

    @hookimpl
    def register_bots(self, register):
        witness = self

        class Witness:
            name = "witness"

            def __init__(self, settings, context):
                self.redis = aioredis.from_url(witness.redis_url)

            async def handle(self, turn):
                witness.seen.append(bool(await self.redis.exists(f"voicegate:seq:{turn.customer.id}")))
                return BotReply(messages=(OutboundMessage(text=f"echo: {turn.message.text}"),))

            async def close(self):
                await self.redis.aclose()

        register(ComponentSpec("witness", Witness))


@pytest.mark.postgres
async def test_two_gateway_instances_share_ordering_through_redis(tmp_path, redis_url, pg_url, pg_schema, gateway_client):
    sections = gp.core_sections(
        bots=[{"use": "witness"}],
        coordination={"redis_url": redis_url},
        database={"url": pg_url, "schema": pg_schema},
    )
    witness = LockWitness(redis_url)
    a = await gateway_client(make_settings(tmp_path, **sections), extra_plugins=[gp.CorePlugin(), witness])
    b = await gateway_client(make_settings(tmp_path, **sections), extra_plugins=[gp.CorePlugin(), witness])
    assert isinstance(runtime_of(a).sequencer, RedisSequencer)
    first = RestDriver(a, path=gp.CHAT_PATH)
    await first.say("hello")  # creates the customer, so later turns lock its key in Redis
    drivers = [RestDriver(a, path=gp.CHAT_PATH), RestDriver(b, path=gp.CHAT_PATH)]
    replies = await asyncio.gather(*(drivers[n % 2].say(f"m{n}") for n in range(12)))
    assert sorted(r[0]["text"] for r in replies) == sorted(f"echo: m{n}" for n in range(12))
    assert witness.seen[1:] == [True] * 12
    store = runtime_of(a).store
    [conv] = await store.conversations()
    history = await store.history(conv.id)
    assert len(history) == 26
    for inbound, outbound in zip(history[::2], history[1::2]):  # never interleaved
        assert outbound.in_reply_to == inbound.id
