"""The REST channel's per-sender outbox: cursors, bounds, long polling."""

from __future__ import annotations

import asyncio

from gateway.messages import OutboundMessage
from voicegate_rest.outbox import Outbox


def texts(items: list[tuple[int, OutboundMessage]]) -> list[str]:
    return [m.text for _, m in items]


async def test_cursor_acknowledges_what_was_read() -> None:
    outbox = Outbox(max_per_sender=10, ttl_s=60)
    outbox.put("alice", [OutboundMessage(text="one"), OutboundMessage(text="two")])
    outbox.put("bob", [OutboundMessage(text="for bob")])
    first = await outbox.take("alice")
    assert texts(first) == ["one", "two"]
    # Not acknowledged yet: a poller that lost the answer gets the same messages again.
    assert texts(await outbox.take("alice")) == ["one", "two"]
    outbox.put("alice", [OutboundMessage(text="three")])
    assert texts(await outbox.take("alice", after=first[-1][0])) == ["three"]
    assert outbox.pending("alice") == 1
    assert texts(await outbox.take("bob")) == ["for bob"]


async def test_a_full_outbox_drops_the_oldest() -> None:
    outbox = Outbox(max_per_sender=2, ttl_s=60)
    outbox.put("alice", [OutboundMessage(text=str(i)) for i in range(5)])
    assert texts(await outbox.take("alice")) == ["3", "4"]
    assert outbox.dropped == 3


async def test_long_poll_wakes_on_delivery_and_times_out_empty() -> None:
    outbox = Outbox(max_per_sender=10, ttl_s=60)
    waiting = asyncio.create_task(outbox.take("alice", wait_s=5))
    await asyncio.sleep(0)
    outbox.put("alice", [OutboundMessage(text="agent here")])
    assert texts(await asyncio.wait_for(waiting, 2)) == ["agent here"]
    assert await outbox.take("nobody", wait_s=0.05) == []


async def test_unpolled_outboxes_expire() -> None:
    now = [0.0]
    outbox = Outbox(max_per_sender=10, ttl_s=100, clock=lambda: now[0])
    outbox.put("alice", [OutboundMessage(text="old")])
    now[0] = 500.0
    outbox.put("bob", [OutboundMessage(text="new")])  # triggers the purge
    assert outbox.pending("alice") == 0 and outbox.pending("bob") == 1
