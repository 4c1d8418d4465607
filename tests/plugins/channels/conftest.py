"""Fixtures for the WhatsApp, Telegram and SMS channel tests: started fake vendors and gateway settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any, AsyncIterator, Callable

import pytest
import pytest_asyncio
from vendor_fakes import FakeBotApi, FakeGraph, FakeTwilio, ProbePlugin

from gateway.settings import GatewaySettings

CONFIG_DIR = Path(__file__).resolve().parents[3] / "config"


@pytest_asyncio.fixture
async def graph() -> AsyncIterator[FakeGraph]:
    fake = FakeGraph()
    await fake.start()
    yield fake
    await fake.close()


@pytest_asyncio.fixture
async def bot_api() -> AsyncIterator[FakeBotApi]:
    fake = FakeBotApi()
    await fake.start()
    yield fake
    await fake.close()


@pytest_asyncio.fixture
async def twilio() -> AsyncIterator[FakeTwilio]:
    fake = FakeTwilio()
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
def probe() -> ProbePlugin:
    return ProbePlugin()


ChannelSettings = Callable[..., GatewaySettings]


@pytest.fixture
def channel_settings(demo_settings: Callable[..., GatewaySettings]) -> ChannelSettings:
    """``channel_settings(name, settings, probe=False)``: one channel, the demo bot and CRM on the real
    config files, the deny authenticator; with ``probe`` the audio probe bot answers voice notes first."""

    def build(plugin: str, name: str, settings: dict[str, Any], *, probe: bool = False) -> GatewaySettings:
        bots: list[dict[str, Any]] = [{"use": "demo", "settings": {"flows": str(CONFIG_DIR / "flows.yaml")}}]
        if probe:
            bots.insert(0, {"use": "audio_probe"})
        return demo_settings(plugins=[plugin, "demo_bot", "demo_crm", "deny_auth"], channels={name: settings}, bots=bots)

    return build
