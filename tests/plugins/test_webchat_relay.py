"""The web chat's relay between instances, on a real SQLite database: a page that went away
while its messages were being handed over gets them at the next visit, in order."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Sequence

from gateway.db.database import Database
from gateway.db.migrate import upgrade_async
from gateway.db.outbox import OutboxStore
from gateway.messages import OutboundMessage
from voicegate_webchat.relay import PendingRelay


async def test_a_hand_over_to_a_page_that_went_away_keeps_the_messages(tmp_path, redis_url) -> None:
    database = await Database.connect(f"sqlite+aiosqlite:///{tmp_path / 'relay.db'}")
    try:
        await upgrade_async(database)
        store = OutboxStore(database.engine, "webchat", max_per_recipient=10, ttl_s=3600,
                            clock=lambda: datetime.now(timezone.utc))
        pushed: list[list[str]] = []
        page_open = [False]

        async def push(session: str, messages: Sequence[OutboundMessage]) -> bool:
            if page_open[0]:
                pushed.append([m.text for m in messages])
            return page_open[0]

        relay = PendingRelay(store, "test:webchat", redis_url, push=push, connected=lambda s: page_open[0])
        await relay.hold("s1", [OutboundMessage(text="one"), OutboundMessage(text="two")])
        assert await relay.hand_over("s1") == 0  # claimed, but the page had gone: stored again
        assert await store.pending("s1") == 2
        page_open[0] = True
        assert await relay.hand_over("s1") == 2
        assert pushed == [["one", "two"]] and await store.pending("s1") == 0
        assert await relay.hand_over("s1") == 0 and pushed == [["one", "two"]]  # each message once
        await relay.close()
    finally:
        await database.close()
