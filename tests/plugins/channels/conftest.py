"""Fixtures for the WhatsApp, Telegram and SMS channel tests: started fake vendors and gateway settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any, AsyncIterator, Callable

import pytest
import pytest_asyncio
from vendor_fakes import FakeBotApi, FakeGraph, FakeMessenger, FakeTwilio, ProbePlugin

from gateway.settings import GatewaySettings

CONFIG_DIR = Path(__file__).resolve().parents[3] / "config"


@pytest_asyncio.fixture
async def graph() -> AsyncIterator[FakeGraph]:
    fake = FakeGraph()
    await fake.start()
    yield fake
    await fake.close()


@pytest_asyncio.fixture
async def messenger() -> AsyncIterator[FakeMessenger]:
    fake = FakeMessenger()
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
    """``channel_settings(plugin, name, settings, probe=False, first_bots=())``: one channel, the demo bot
    and CRM on the real config files, the deny authenticator; ``first_bots`` and (with ``probe``) the
    audio probe bot are asked before the demo bot."""

    def build(plugin: str, name: str, settings: dict[str, Any], *, probe: bool = False,
              first_bots: tuple[str, ...] = ()) -> GatewaySettings:
        bots: list[dict[str, Any]] = [{"use": use} for use in first_bots]
        if probe:
            bots.append({"use": "audio_probe"})
        bots.append({"use": "demo", "settings": {"flows": str(CONFIG_DIR / "flows.yaml")}})
        return demo_settings(plugins=[plugin, "demo_bot", "demo_crm", "deny_auth"], channels={name: settings}, bots=bots)

    return build
