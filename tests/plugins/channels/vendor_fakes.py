"""Local servers speaking the vendors' documented APIs, and a bot that reports the audio it receives.

Each fake records every request (method, path, headers, body) so tests assert what the gateway
really sent, checks credentials the way the vendor does (a wrong token gets the vendor's error),
and serves media bytes from real recordings in ``../shared/audio/voice-notes``.
"""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import hashlib
import itertools
import json
from dataclasses import dataclass, field
from typing import Any, Callable

from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.components import BotReply, BotTurn, ComponentSpec
from gateway.hookspecs import hookimpl
from gateway.messages import Attachment, OutboundMessage
from gateway.testing import shared_dir


def voice_note(name: str) -> bytes:
    """A real recording from ``<shared>/audio/voice-notes`` (e.g. ``george-whatsapp.ogg``)."""
    path = shared_dir() / "audio" / "voice-notes" / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: set VOICEGATE_SHARED_DIR to the folder holding audio/")
    return path.read_bytes()


def decoded_seconds(attachment: Attachment) -> float:
    """How long the received voice note plays, decoded by the voiceprints engine as verification would."""
    from voiceprints import decode_audio  # imports torch: only the voice-note tests pay for it

    assert attachment.data is not None
    return decode_audio(attachment.data, mime=attachment.mime).duration_s


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class FakeVendor:
    """A started local server with request recording; subclasses add the vendor's routes."""

    requests: list[Recorded] = field(default_factory=list)
    server: TestServer | None = None
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    def routes(self) -> list[web.RouteDef]:  # pragma: no cover - overridden
        raise NotImplementedError

    async def start(self) -> str:
        app = web.Application(middlewares=[self._record])
        app.add_routes(self.routes())
        self.server = TestServer(app, host="127.0.0.1", port=0)
        await self.server.start_server()
        return self.base_url

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

    @web.middleware
    async def _record(self, request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        body = await request.read()
        async with self._changed:
            self.requests.append(Recorded(request.method, request.path, dict(request.headers), body))
            self._changed.notify_all()
        return await handler(request)

    def calls(self, path_suffix: str) -> list[Recorded]:
        return [r for r in self.requests if r.path.endswith(path_suffix)]

    async def wait_for(self, path_suffix: str, count: int, timeout_s: float = 10.0) -> list[Recorded]:
        """The first ``count`` requests to a path ending in ``path_suffix``, waiting for them."""
        async def enough() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: len(self.calls(path_suffix)) >= count)
        await asyncio.wait_for(enough(), timeout_s)
        return self.calls(path_suffix)[:count]


# --------------------------------------------------------------------------- WhatsApp


@dataclass
class FakeGraph(FakeVendor):
    """Meta's Graph API for one phone number: messages, media lookup and download, uploads."""

    token: str = "graph-access-token"
    phone_number_id: str = "1098765432101"
    version: str = "v21.0"
    media: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    fail_sends: int = 0  # answer this many sends with Meta's 503 "service unavailable" first
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def routes(self) -> list[web.RouteDef]:
        v = f"/{self.version}"
        return [web.post(f"{v}/{self.phone_number_id}/messages", self.send),
                web.post(f"{v}/{self.phone_number_id}/media", self.upload),
                web.get(f"{v}/{{media_id}}", self.media_info),
                web.get("/whatsapp-cdn/{media_id}", self.download)]

    def _authorised(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.token}"

    @staticmethod
    def _error(status: int, message: str, code: int) -> web.Response:
        return web.json_response({"error": {"message": message, "type": "OAuthException", "code": code}}, status=status)

    async def send(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return self._error(401, "Invalid OAuth access token.", 190)
        body = await request.json()
        if self.fail_sends > 0:
            self.fail_sends -= 1
            return web.json_response({"error": {"message": "Service temporarily unavailable", "type": "OAuthException",
                                                 "code": 2, "is_transient": True}}, status=503)
        return web.json_response({"messaging_product": "whatsapp", "contacts": [{"input": body["to"], "wa_id": body["to"]}],
                                  "messages": [{"id": f"wamid.out{next(self._ids)}"}]})

    async def upload(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return self._error(401, "Invalid OAuth access token.", 190)
        return web.json_response({"id": f"up{next(self._ids)}"})

    async def media_info(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return self._error(401, "Invalid OAuth access token.", 190)
        media_id = request.match_info["media_id"]
        if media_id not in self.media:
            return self._error(404, "Unsupported get request.", 100)
        data, mime = self.media[media_id]
        return web.json_response({"messaging_product": "whatsapp", "id": media_id, "mime_type": mime,
                                  "sha256": hashlib.sha256(data).hexdigest(), "file_size": len(data),
                                  "url": f"{self.base_url}/whatsapp-cdn/{media_id}"})

    async def download(self, request: web.Request) -> web.Response:
        if not self._authorised(request):  # the media URL needs the same bearer token
            return web.Response(status=401)
        data, mime = self.media[request.match_info["media_id"]]
        return web.Response(body=data, content_type=mime.split(";")[0])


# --------------------------------------------------------------------------- Messenger


@dataclass
class FakeMessenger(FakeVendor):
    """Meta's Send API for one Page, and a CDN serving attachments at pre-signed URLs (no token).

    Sends are validated as the Send API documents them (messaging_type, the HUMAN_AGENT tag, text ≤ 2,000,
    at most 13 quick replies with titles ≤ 20 and payloads ≤ 1,000); a violation gets Meta's error 100.
    """

    token: str = "page-access-token"
    page_id: str = "106587391234567"
    version: str = "v21.0"
    cdn: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    fail_sends: int = 0
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def routes(self) -> list[web.RouteDef]:
        return [web.post(f"/{self.version}/{self.page_id}/messages", self.send),
                web.get("/messenger-cdn/{name}", self.download)]

    def cdn_url(self, name: str) -> str:
        return f"{self.base_url}/messenger-cdn/{name}?_nc_sig=abc"

    @staticmethod
    def _error(status: int, message: str, code: int) -> web.Response:
        return web.json_response({"error": {"message": message, "type": "OAuthException", "code": code}}, status=status)

    async def send(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return self._error(401, "Invalid OAuth access token.", 190)
        if request.content_type == "multipart/form-data":
            raw = await request.read()
            fields = _form_fields(request.headers["Content-Type"], raw)
            body = {k: json.loads(v) if k in ("recipient", "message") else v for k, v in fields.items()}
            if b'name="filedata"' not in raw:
                return self._error(400, "(#100) Upload attachment failure.", 100)
        else:
            body = await request.json()
        problem = _send_api_problem(body)
        if problem:
            return self._error(400, f"(#100) {problem}", 100)
        if self.fail_sends > 0:
            self.fail_sends -= 1
            return web.json_response({"error": {"message": "An unexpected error has occurred.", "code": 2,
                                                 "is_transient": True}}, status=500)
        return web.json_response({"recipient_id": body["recipient"]["id"], "message_id": f"m_out{next(self._ids)}"})

    async def download(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in self.cdn or request.query.get("_nc_sig") != "abc":
            return web.Response(status=403, text="URL signature expired")
        data, mime = self.cdn[name]
        return web.Response(body=data, content_type=mime)


def _send_api_problem(body: dict[str, Any]) -> str | None:
    if not isinstance(body.get("recipient"), dict) or not body["recipient"].get("id"):
        return "param recipient must be non-empty."
    kind = body.get("messaging_type")
    if kind not in ("RESPONSE", "UPDATE", "MESSAGE_TAG"):
        return "param messaging_type must be one of {RESPONSE, UPDATE, MESSAGE_TAG}"
    if (kind == "MESSAGE_TAG") != ("tag" in body) or body.get("tag", "HUMAN_AGENT") != "HUMAN_AGENT":
        return "a MESSAGE_TAG message needs a tag (and only then)"
    message = body.get("message") or {}
    if len(message.get("text", "")) > 2000:
        return "param message[text] must be UTF-8 encoded with at most 2000 characters."
    quick = message.get("quick_replies", [])
    if len(quick) > 13 or any(len(q["title"]) > 20 or len(q["payload"]) > 1000 for q in quick):
        return "param message[quick_replies] has too many items, or a title over 20 / payload over 1000 characters"
    if quick and "text" not in message:
        return "quick replies need a text"
    return None


# --------------------------------------------------------------------------- Telegram


@dataclass
class FakeBotApi(FakeVendor):
    """The Telegram Bot API for one bot: methods under /bot<token>/, files under /file/bot<token>/."""

    token: str = "123456789:AAHfakeTokenForTestsOnly_abcdefghij"
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # file_id -> (file_path, bytes)
    flood_waits: int = 0  # answer this many sendMessage calls with 429 "retry after 1" first
    _ids: Any = field(default_factory=lambda: itertools.count(100))

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/bot{token}/{method}", self.method),
                web.get("/file/bot{token}/{path:.+}", self.file)]

    async def method(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        name = request.match_info["method"]
        if request.content_type == "application/json":
            params = await request.json()
        else:
            params = _form_fields(request.headers["Content-Type"], await request.read())
        if name == "getFile":
            if params.get("file_id") not in self.files:
                return web.json_response({"ok": False, "error_code": 400,
                                          "description": "Bad Request: invalid file_id"}, status=400)
            path, data = self.files[params["file_id"]]
            return web.json_response({"ok": True, "result": {"file_id": params["file_id"], "file_unique_id": "u1",
                                                             "file_size": len(data), "file_path": path}})
        if name == "answerCallbackQuery":
            return web.json_response({"ok": True, "result": True})
        if name == "editMessageReplyMarkup":
            if "reply_markup" in params or not params.get("message_id"):
                return web.json_response({"ok": False, "error_code": 400, "description": "Bad Request"}, status=400)
            return web.json_response({"ok": True, "result": {"message_id": params["message_id"]}})
        if name == "sendMessage" and self.flood_waits > 0:
            self.flood_waits -= 1
            return web.json_response({"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 1",
                                      "parameters": {"retry_after": 1}}, status=429)
        if name.startswith("send"):
            return web.json_response({"ok": True, "result": {"message_id": next(self._ids), "date": 1700000000,
                                                             "chat": {"id": int(params["chat_id"]), "type": "private"}}})
        return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)

    async def file(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        for path, data in self.files.values():
            if path == request.match_info["path"]:
                return web.Response(body=data, content_type="application/octet-stream")
        return web.Response(status=404)


def _form_fields(content_type: str, body: bytes) -> dict[str, str]:
    """The text fields of a multipart/form-data body (file fields are skipped)."""
    parsed = email.message_from_bytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body,
                                      policy=email.policy.HTTP)
    fields: dict[str, str] = {}
    for part in parsed.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name and not part.get_filename():
            fields[str(name)] = part.get_content().strip()
    return fields


# --------------------------------------------------------------------------- Twilio


@dataclass
class FakeTwilio(FakeVendor):
    """Twilio's REST API for one account: Messages.json and MMS media (redirected to storage, like Twilio)."""

    account_sid: str = "AC" + "0123456789abcdef" * 2
    auth_token: str = "twilio-auth-token-0001"
    media: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # media sid -> (bytes, mime)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def routes(self) -> list[web.RouteDef]:
        account = f"/2010-04-01/Accounts/{self.account_sid}"
        return [web.post(f"{account}/Messages.json", self.create_message),
                web.get(f"{account}/Messages/{{message}}/Media/{{media}}", self.media_resource),
                web.get("/mms-storage/{media}", self.storage)]

    def _authorised(self, request: web.Request) -> bool:
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return request.headers.get("Authorization") == expected

    async def create_message(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response({"code": 20003, "message": "Authenticate", "status": 401}, status=401)
        form = await request.post()
        if not str(form.get("To", "")).startswith("+"):
            return web.json_response({"code": 21211, "message": f"The 'To' number {form.get('To')} is not a valid "
                                      "phone number.", "status": 400}, status=400)
        return web.json_response({"sid": f"SM{next(self._ids):032x}", "status": "queued", "to": form["To"],
                                  "body": form["Body"]}, status=201)

    async def media_resource(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.Response(status=401)
        raise web.HTTPTemporaryRedirect(f"/mms-storage/{request.match_info['media']}")

    async def storage(self, request: web.Request) -> web.Response:
        data, mime = self.media[request.match_info["media"]]
        return web.Response(body=data, content_type=mime)

    def media_url(self, message_sid: str, media_sid: str) -> str:
        return f"{self.base_url}/2010-04-01/Accounts/{self.account_sid}/Messages/{message_sid}/Media/{media_sid}"


# --------------------------------------------------------------------------- a probe bot


class AudioProbe:
    """A bot that answers voice notes with what it received (and keeps them for the test)."""

    name = "audio_probe"

    def __init__(self) -> None:
        self.seen: list[Attachment] = []

    async def handle(self, turn: BotTurn) -> BotReply | None:
        audio = turn.message.audio
        if audio is None:
            return None  # let the demo bot answer everything else
        self.seen.append(audio)
        size = len(audio.data) if audio.data is not None else 0
        return BotReply(messages=(OutboundMessage(text=f"Got a voice note: {size} bytes of {audio.mime}"),))


class ProbePlugin:
    """Registers :class:`AudioProbe` as the bot ``audio_probe``."""

    def __init__(self) -> None:
        self.bot = AudioProbe()

    @hookimpl
    def register_bots(self, register: Any) -> None:
        register(ComponentSpec(name="audio_probe", factory=lambda settings, context: self.bot))
