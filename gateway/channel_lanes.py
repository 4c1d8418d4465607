"""Background processing of webhook deliveries: one lane per customer, owned tasks.

Shared by the channels whose vendor calls a webhook and takes replies through its own API
(WhatsApp, Messenger, Telegram). Vendors want a fast 200 and retry a webhook that is slow to answer, so the channel answers
at once and processes the messages here. Messages of one customer run one after the other
in arrival order (a voice note must not overtake the text before it); different customers
run concurrently. Every task is tracked and drained at shut-down, never left orphaned.
Because one customer's deliveries run in order, a vendor's retry is processed after the
first attempt has committed, and :meth:`gateway.components.Inbox.receive_turn` reports it
as a duplicate (whose replies the channel does not send again).
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Awaitable, Callable, Sequence

from gateway.errors import InboundRejected
from gateway.messages import InboundMessage, OutboundMessage

if TYPE_CHECKING:
    from gateway.components import GatewayContext

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[None]]


class SenderLanes:
    """Runs jobs sequentially per sender and concurrently across senders."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._tails: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, sender: str, job: Job) -> None:
        """Queue ``job`` after the sender's previous one; failures are logged, not raised."""
        previous = self._tails.get(sender)
        task = asyncio.create_task(self._run(previous, job), name=f"{self._name}:{sender[-4:]}")
        self._tails[sender] = task
        self._tasks.add(task)
        task.add_done_callback(lambda done: self._done(sender, done))

    def _done(self, sender: str, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self._tails.get(sender) is task:
            del self._tails[sender]

    async def _run(self, previous: asyncio.Task[None] | None, job: Job) -> None:
        if previous is not None:
            await asyncio.wait([previous])  # waits without inheriting its exception
        try:
            await job()
        except Exception:  # noqa: BLE001 - one failed message must not stop the lane
            log.exception("%s: processing an inbound message failed", self._name)

    async def idle(self) -> None:
        """Wait until every queued job has finished (tests, shut-down)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def drain(self, timeout_s: float) -> None:
        """Let running jobs finish for up to ``timeout_s``, then cancel the rest."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout_s)
        for task in pending:
            task.cancel()
        if pending:
            log.warning("%s: %d inbound message(s) abandoned at shut-down", self._name, len(pending))
            await asyncio.wait(pending)


class LanedWebhookChannel(ABC):
    """What WhatsApp- and Telegram-style channels share: their lanes, ``deliver``/``idle``/``close``, and the hand-in
    of one parsed message to the pipeline with its replies sent back through the vendor's API.

    A subclass parses its vendor's webhook, submits each message to ``self._lanes`` and, in that job, builds an
    :class:`InboundMessage` and awaits :meth:`_hand_in`; it implements :meth:`_send` with the vendor's API.
    """

    #: The vendor's name in log lines ("WhatsApp").
    vendor: str = "webhook"

    def __init__(self, name: str, context: GatewayContext) -> None:
        self.name = name
        self._context = context
        self._lanes = SenderLanes(f"channel {name}")

    async def deliver(self, recipient: str, messages: Sequence[OutboundMessage]) -> None:
        """Messages produced outside a webhook call (agent replies, acknowledgements) go out the same way."""
        await self._send(recipient, messages)

    async def idle(self) -> None:
        """Wait until every delivery received so far is processed (for tests)."""
        await self._lanes.idle()

    async def close(self) -> None:
        await self._lanes.drain(timeout_s=10.0)

    @abstractmethod
    async def _send(self, recipient: str, messages: Sequence[OutboundMessage]) -> None:
        """Send ``messages`` to ``recipient`` through the vendor's API, in order."""

    async def _hand_in(self, inbound: InboundMessage) -> None:
        """Run the turn and send its replies, unless the vendor redelivered a message answered before.

        The duplicate check is durable (the pipeline's, on the channel's message id), so a retry that reaches another
        instance, or arrives after a restart, is not answered twice."""
        try:
            received = await self._context.inbox.receive_turn(inbound)
        except InboundRejected as exc:
            log.warning("%s message %s refused by the pipeline: %s", self.vendor, inbound.message_id, exc)
            return
        if received.duplicate:
            log.info("%s message %s is a redelivery; already answered", self.vendor, inbound.message_id)
            return
        await self._send(inbound.sender, received.replies)
