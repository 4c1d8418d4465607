"""The web chat channel component: serves the page and speaks the WebSocket protocol."""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import time
from collections import deque
from importlib import resources
from string import Template
from typing import Any, Sequence

from aiohttp import WSMsgType, web

from gateway.components import ChannelCapabilities, GatewayContext
from gateway.db.outbox import OutboxStore
from gateway.errors import InboundRejected
from gateway.messages import OutboundMessage

from voicegate_webchat.protocol import FrameProblem, Limits, inbound_message, messages_json, parse_frame, session_from_hello
from voicegate_webchat.relay import PendingRelay
from voicegate_webchat.settings import WebChatSettings

log = logging.getLogger(__name__)

_ASSETS = {"chat.js": "text/javascript", "chat.css": "text/css"}
RELAY_SWEEP_S = 10.0  # several instances: how often to look for stored messages of this instance's pages
# The page loads nothing from elsewhere and runs no inline script.
_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        "media-src 'self' blob: data:; connect-src 'self' ws: wss:; frame-ancestors 'self'")


class _Socket:
    """One open page: its WebSocket and a lock so replies and pushes never interleave."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.lock = asyncio.Lock()

    async def send(self, frame: dict[str, Any]) -> bool:
        """Send ``frame``; False if the page has gone (what it missed stays in the history)."""
        if self.ws.closed:
            return False
        async with self.lock:
            try:
                await self.ws.send_json(frame)
            except (ConnectionError, RuntimeError):
                return False
        return True


class WebChatChannel:
    """Routes (relative to ``/channels/<name>``): ``GET /`` the page, ``GET /chat.js``,
    ``GET /chat.css``, ``GET /ws`` the WebSocket."""

    def __init__(self, settings: WebChatSettings, context: GatewayContext, *, name: str = "webchat") -> None:
        self.name = name
        self.settings = settings
        self.capabilities = ChannelCapabilities(buttons=True, max_buttons=4, max_button_title=30,
                                                max_text_length=4096, audio_in=True)
        self._context = context
        self._limits = Limits(settings.max_upload_bytes, settings.max_text_chars)
        self._sockets: dict[str, set[_Socket]] = {}
        self._pending: dict[str, deque[OutboundMessage]] = {}
        self._pending_since: dict[str, float] = {}  # session -> when its first pending message was queued
        self.clock = time.monotonic  # seconds, for pending_ttl_s (tests move it)
        self._last_purge = self.clock()
        self._workers: set[asyncio.Task[None]] = set()
        self._page = self._render_page()
        self._assets = {name: _read_asset(name) for name in _ASSETS}
        # Several instances: a page may be connected to another one, so what this instance cannot
        # push goes through the database and Redis (see relay.py). One instance keeps it in memory.
        self.relay: PendingRelay | None = None
        if context.redis_url and settings.pending_per_session > 0:
            store = OutboxStore(context.db_engine, name, max_per_recipient=settings.pending_per_session,
                                ttl_s=settings.pending_ttl_s, clock=context.now)
            self.relay = PendingRelay(store, f"voicegate:webchat:{name}", context.redis_url,
                                      push=self._push_local, connected=lambda session: session in self._sockets,
                                      sweep_s=RELAY_SWEEP_S)

    @classmethod
    async def create(cls, settings: WebChatSettings, context: GatewayContext) -> "WebChatChannel":
        channel = cls(settings, context)
        if channel.relay is not None:
            await channel.relay.start()
        return channel

    def routes(self) -> Sequence[web.AbstractRouteDef]:
        return [
            web.get("", self.redirect_to_page),
            web.get("/", self.page),
            web.get("/chat.js", self.asset),
            web.get("/chat.css", self.asset),
            web.get("/ws", self.websocket),
        ]

    async def deliver(self, recipient: str, messages: Sequence[OutboundMessage]) -> None:
        """Push to every open page of ``recipient`` on this instance; if none is open here, hand
        them to the instance that has one (several instances), or keep them for the next visit."""
        if await self._push_local(recipient, messages):
            return
        if self.settings.pending_per_session == 0:
            raise ConnectionError("the customer has no web chat page open")
        if self.relay is not None:
            await self.relay.hold(recipient, messages)
            return
        self._purge_pending()
        queue = self._pending.setdefault(recipient, deque(maxlen=self.settings.pending_per_session))
        self._pending_since.setdefault(recipient, self.clock())
        queue.extend(messages)

    async def _push_local(self, session: str, messages: Sequence[OutboundMessage]) -> bool:
        """Send a ``push`` frame to this instance's open pages of ``session``; True if one took it."""
        frame = {"type": "push", "messages": messages_json(messages)}
        delivered = False
        for socket in list(self._sockets.get(session, ())):
            delivered = await socket.send(frame) or delivered
        return delivered

    def _purge_pending(self) -> None:
        # Customers who never come back must not hold memory forever; scanning at most once a
        # minute keeps deliver() cheap.
        now = self.clock()
        if now - self._last_purge < 60.0:
            return
        self._last_purge = now
        for session in [s for s, t in self._pending_since.items() if now - t > self.settings.pending_ttl_s]:
            self._pending.pop(session, None)
            self._pending_since.pop(session, None)

    async def close(self) -> None:
        """Close every page (they reconnect with back-off), then let the workers store what
        the pages had already sent, briefly."""
        for sockets in list(self._sockets.values()):
            for socket in list(sockets):
                with contextlib.suppress(Exception):
                    await socket.ws.close(code=1001, message=b"gateway shutting down")
        self._sockets.clear()
        if self._workers:
            _, late = await asyncio.wait(list(self._workers), timeout=5.0)
            for task in late:
                task.cancel()
        if self.relay is not None:
            await self.relay.close()  # idempotent; later deliveries are still stored, announced here only

    def connected(self, session: str) -> int:
        """How many pages of ``session`` are open (for tests and diagnostics)."""
        return len(self._sockets.get(session, ()))

    # ----------------------------------------------------------------- HTTP

    async def redirect_to_page(self, request: web.Request) -> web.Response:
        raise web.HTTPPermanentRedirect(request.path + "/")

    async def page(self, request: web.Request) -> web.Response:
        return web.Response(text=self._page, content_type="text/html", charset="utf-8",
                            headers={"Content-Security-Policy": _CSP, "Cache-Control": "no-cache",
                                     "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"})

    async def asset(self, request: web.Request) -> web.Response:
        name = request.path.rsplit("/", 1)[-1]
        return web.Response(body=self._assets[name], content_type=_ASSETS[name], charset="utf-8",
                            headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})

    # ----------------------------------------------------------------- WebSocket

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        if not self._origin_allowed(request):
            return web.json_response({"error": "this page's origin may not open the chat",
                                      "hint": "Add it to channels.webchat.allowed_origins"}, status=403)
        # Room for the base64 of the largest upload; the page checks the size before sending,
        # and the server answers anything between the two limits with a clear error.
        ws = web.WebSocketResponse(heartbeat=self.settings.heartbeat_s,
                                   max_msg_size=self.settings.max_upload_bytes * 4 // 3 + 256 * 1024)
        await ws.prepare(request)
        socket = _Socket(ws)
        frames: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        room = asyncio.Semaphore(32)  # frames read ahead of the worker: a flooding page waits
        state: dict[str, str] = {}
        # Frames are handled in order by one worker while this loop keeps reading, so pings
        # and pongs flow even while a voice note is being verified. The worker outlives the
        # socket: a message the page sent just before closing is still stored and answered.
        worker = asyncio.create_task(self._work(socket, frames, room, state), name="voicegate-webchat-socket")
        self._workers.add(worker)
        worker.add_done_callback(self._workers.discard)
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    try:
                        frame = parse_frame(msg.data)
                    except FrameProblem as exc:
                        await socket.send(exc.frame())
                        continue
                    await room.acquire()
                    frames.put_nowait(frame)
                elif msg.type is WSMsgType.BINARY:
                    await socket.send(FrameProblem("binary frames are not understood",
                                                   "Send JSON text frames; files go base64 in 'attachments'").frame())
        finally:
            # Synchronous on purpose: aiohttp may cancel this handler once the connection is gone.
            frames.put_nowait(None)
            session = state.get("session")
            if session:
                self._forget_socket(session, socket)
        return ws

    async def _work(self, socket: _Socket, frames: "asyncio.Queue[dict[str, Any] | None]", room: asyncio.Semaphore,
                    state: dict[str, str]) -> None:
        while (frame := await frames.get()) is not None:
            try:
                await self._handle(socket, frame, state)
            finally:
                room.release()
        session = state.get("session")
        if session:
            self._forget_socket(session, socket)  # a hello handled after the socket closed

    async def _handle(self, socket: _Socket, frame: dict[str, Any], state: dict[str, str]) -> None:
        kind = frame["type"]
        if kind == "hello":
            if "session" not in state:
                state["session"] = session_from_hello(frame)
                self._sockets.setdefault(state["session"], set()).add(socket)
            session = state["session"]
            await socket.send({"type": "ready", "session": session, "max_upload_bytes": self.settings.max_upload_bytes,
                               "max_text_chars": self.settings.max_text_chars})
            if self.relay is not None:
                try:
                    await self.relay.hand_over(session)
                except Exception:  # noqa: BLE001 - they stay stored; the relay's sweep retries
                    log.exception("could not hand stored web chat messages to a page that said hello")
            pending = self._pending.pop(session, None)
            since = self._pending_since.pop(session, None)
            if pending and not await socket.send({"type": "push", "messages": messages_json(list(pending))}):
                self._pending[session] = pending  # gone again: keep them for the next visit
                self._pending_since[session] = since if since is not None else self.clock()
            return
        if kind != "message":
            await socket.send(FrameProblem(f"unknown frame type {kind!r}", "Send 'hello' or 'message'").frame())
            return
        client_id = frame.get("id") if isinstance(frame.get("id"), str) else None
        if "session" not in state:
            await socket.send(FrameProblem("no session yet", "Send {\"type\": \"hello\"} first", client_id).frame())
            return
        try:
            message = inbound_message(frame, channel=self.name, session=state["session"], limits=self._limits)
            replies = await self._context.inbox.receive(message)
        except FrameProblem as exc:
            await socket.send(exc.frame())
            return
        except InboundRejected as exc:
            await socket.send(FrameProblem(str(exc), "Change the message and send it again", client_id).frame())
            return
        except Exception:  # noqa: BLE001 - the customer gets a retryable answer, the log the details
            log.exception("web chat message %r failed in the pipeline", client_id)
            await socket.send(FrameProblem("sorry, something went wrong on our side",
                                           "Send the message again in a moment", client_id).frame())
            return
        await socket.send({"type": "reply", "in_reply_to": client_id, "messages": messages_json(replies)})

    def _forget_socket(self, session: str, socket: _Socket) -> None:
        sockets = self._sockets.get(session)
        if sockets is not None:
            sockets.discard(socket)
            if not sockets:
                del self._sockets[session]

    def _origin_allowed(self, request: web.Request) -> bool:
        # Browsers always send Origin on WebSocket requests: refusing foreign origins stops
        # another site from opening a chat in the customer's name (cross-site WebSocket hijacking).
        origin = request.headers.get("Origin")
        if origin is None:
            return True
        if origin in self.settings.allowed_origins:
            return True
        own = {f"{scheme}://{request.host}" for scheme in ("http", "https")}
        return origin in own

    def _render_page(self) -> str:
        template = Template(_read_asset("page.html").decode("utf-8"))
        return template.substitute(
            title=html.escape(self.settings.title),
            max_upload_bytes=self.settings.max_upload_bytes,
            max_recording_s=self.settings.max_recording_s,
            max_text_chars=self.settings.max_text_chars,
        )


def _read_asset(name: str) -> bytes:
    return resources.files("voicegate_webchat").joinpath(name).read_bytes()
