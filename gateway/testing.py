"""Fixtures and helpers for testing VoiceGate plugins through a real, running gateway.

Installed as a pytest plugin (entry point ``pytest11: voicegate``), so every project that has
VoiceGate installed gets the ``gateway_client`` fixture. This module imports nothing heavy
(no torch, no plugins): the app is imported when a test first asks for it.

A plugin test, end to end (``my_bot`` is the name your plugin registers its bot under)::

    async def test_my_bot(tmp_path, gateway_client):
        settings = make_settings(tmp_path, bots=[{"use": "my_bot"}])
        client = await gateway_client(settings, extra_plugins=[my_plugin_module])
        replies = await RestDriver(client).say("hello")
        assert replies[0]["text"] == "hello"

``gateway_client`` is an async fixture: it needs pytest-asyncio (in ``voicegate[test]``) and async
tests run by it, with ``asyncio_mode = "auto"`` in the project's pytest configuration or
``@pytest.mark.asyncio`` on each test. Without pytest-asyncio, asking for the fixture fails
with a message that says so.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncIterator, Awaitable, Callable, Mapping, Sequence

import pytest

from gateway.settings import GatewaySettings

if TYPE_CHECKING:  # pragma: no cover
    from aiohttp import ClientResponse
    from aiohttp.test_utils import TestClient

try:  # pytest-asyncio is a test extra (voicegate[test])
    import pytest_asyncio
except ImportError:  # pragma: no cover - exercised in a subprocess by tests/gateway/test_core_docs.py
    pytest_asyncio = None

NO_PYTEST_ASYNCIO = (
    "the {name} fixture is async and needs pytest-asyncio: pip install 'voicegate[test]' (or pytest-asyncio), "
    'then set asyncio_mode = "auto" in your pytest configuration or mark async tests with @pytest.mark.asyncio'
)


def _async_fixture(function: Callable[..., Any]) -> Any:
    """``pytest_asyncio.fixture``; without pytest-asyncio, a fixture that fails saying what to install."""
    if pytest_asyncio is not None:
        return pytest_asyncio.fixture(function)

    @pytest.fixture(name=function.__name__)
    def missing() -> None:  # pragma: no cover - see above
        pytest.fail(NO_PYTEST_ASYNCIO.format(name=function.__name__), pytrace=False)

    return missing

TEST_SECRET = "test-secret"
SIGNATURE_HEADER = "X-VoiceGate-Signature"

__all__ = [
    "TEST_SECRET",
    "SIGNATURE_HEADER",
    "make_settings",
    "sign",
    "RestDriver",
    "GatewayClientFactory",
    "gateway_client",
    "runtime_of",
]


def sign(body: bytes, secret: str = TEST_SECRET) -> str:
    """The ``X-VoiceGate-Signature`` header value for ``body``: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def make_settings(tmp_path: Path | str, **sections: Any) -> GatewaySettings:
    """Gateway settings for a test: a SQLite file under ``tmp_path`` and the REST channel.

    Each keyword replaces one top-level YAML section (``plugins``, ``channels``, ``bots``,
    ``crm``, ``authentication``, ``agents``, ``database``, ...), given as plain dicts/lists as
    in the YAML. Defaults: ``plugins=["rest"]``, ``channels={"rest": {"secret": "test-secret"}}``,
    port 0. Relative paths in plugin settings resolve against ``tmp_path``.
    """
    root = Path(tmp_path)
    data: dict[str, Any] = {
        "server": {"host": "127.0.0.1", "port": 0},
        "database": {"url": f"sqlite+aiosqlite:///{root / 'voicegate.db'}"},
        "plugins": ["rest"],
        "channels": {"rest": {"secret": TEST_SECRET}},
        "data_dir": str(root / "data"),
    }
    data.update(sections)
    settings = GatewaySettings.model_validate(data)
    return settings.with_source(config_path=None, config_dir=str(root))


class RestDriver:
    """Talks to the REST channel (``POST /channels/rest/messages``) like an integrator would.

    Every call uses a fresh message id unless one is given, and returns the ``replies`` list
    of the JSON answer; a non-200 answer fails the test with the gateway's error text.
    """

    _counter = itertools.count(1)

    def __init__(
        self,
        client: "TestClient",
        secret: str = TEST_SECRET,
        sender: str = "alice",
        *,
        path: str = "/channels/rest/messages",
    ) -> None:
        self.client = client
        self.secret = secret
        self.sender = sender
        self.path = path

    def new_message_id(self) -> str:
        return f"m-{next(self._counter)}-{uuid.uuid4().hex[:12]}"

    async def post(
        self,
        payload: Mapping[str, Any] | None = None,
        *,
        raw: bytes | None = None,
        signature: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> "ClientResponse":
        """POST ``payload`` (or ``raw`` bytes) signed with the driver's secret unless ``signature`` is given."""
        body = raw if raw is not None else json.dumps(payload).encode("utf-8")
        all_headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature or sign(body, self.secret)}
        all_headers.update(headers or {})
        return await self.client.post(self.path, data=body, headers=all_headers)

    async def send(self, *, message_id: str | None = None, **fields: Any) -> list[dict[str, Any]]:
        """Send one message with the given body fields; return the ``replies``."""
        payload = {"sender": self.sender, "message_id": message_id or self.new_message_id(), **fields}
        response = await self.post(payload)
        text = await response.text()
        if response.status != 200:
            raise AssertionError(f"gateway answered {response.status}: {text}")
        return list(json.loads(text)["replies"])

    async def say(self, text: str, *, message_id: str | None = None) -> list[dict[str, Any]]:
        """Send a text message."""
        return await self.send(text=text, message_id=message_id)

    async def press(self, payload: str, *, message_id: str | None = None) -> list[dict[str, Any]]:
        """Press the button with ``payload``."""
        return await self.send(button=payload, message_id=message_id)

    async def send_audio(
        self, data: bytes, mime: str = "audio/ogg", *, message_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Send a voice note."""
        attachment = {"type": "audio", "mime": mime, "data_base64": base64.b64encode(data).decode("ascii")}
        return await self.send(attachments=[attachment], message_id=message_id)


GatewayClientFactory = Callable[..., Awaitable["TestClient"]]


def runtime_of(client: "TestClient") -> Any:
    """The :class:`gateway.app.Runtime` of a started test client (store, pipeline, channels ...)."""
    from gateway.app import RUNTIME

    return client.server.app[RUNTIME]


@_async_fixture
async def gateway_client() -> AsyncIterator[GatewayClientFactory]:
    """A factory: ``client = await gateway_client(settings, extra_plugins=())``.

    Builds the app with :func:`gateway.app.create_app`, starts it on a free port and returns
    an aiohttp ``TestClient``; every client is closed (gateway shut down) at teardown.
    """
    from aiohttp.test_utils import TestClient, TestServer

    from gateway.app import create_app

    clients: list[TestClient] = []

    async def factory(settings: GatewaySettings, extra_plugins: Sequence[object] = ()) -> TestClient:
        app = create_app(settings, extra_plugins=extra_plugins)
        client = TestClient(TestServer(app, host="127.0.0.1", port=0))
        try:
            await client.start_server()
        except BaseException:
            await client.close()  # start-up failed: release what was opened, then report it
            raise
        clients.append(client)
        return client

    try:
        yield factory
    finally:
        for client in reversed(clients):
            await client.close()


def shared_dir() -> Path:
    """``VOICEGATE_SHARED_DIR`` or ``<repo>/../shared``: real speech and the model for tests."""
    default = Path(__file__).resolve().parent.parent.parent / "shared"
    return Path(os.environ.get("VOICEGATE_SHARED_DIR", str(default)))
