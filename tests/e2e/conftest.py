"""End-to-end fixtures: the real app with the demo bot and CRM on the real config files, and the voice
authenticator on the real ECAPA model (loaded once per process by the plugin) and real recordings."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from gateway.settings import GatewaySettings
from support.speech import model_dir
from support.voice import voice_gateway_settings

VoiceSettings = Callable[..., GatewaySettings]


@pytest.fixture
def voice_settings(tmp_path: Path) -> VoiceSettings:
    """``voice_settings(webchat=False, max_attempts=GENUINE_ATTEMPTS, **voice)``, see :func:`support.voice.voice_gateway_settings`."""
    if not model_dir().is_dir():
        pytest.fail(f"{model_dir()} is missing: set VOICEGATE_MODEL_DIR or VOICEGATE_SHARED_DIR")

    def build(**options: Any) -> GatewaySettings:
        return voice_gateway_settings(tmp_path, **options)

    return build


@pytest.fixture
async def clocked_gateway_client():
    """``client = await clocked_gateway_client(settings, clock)``: a started gateway reading a
    :class:`support.clock.ManualClock`; closed at teardown."""
    from support.clock import start_gateway

    clients: list[Any] = []

    async def factory(settings: GatewaySettings, clock: Any) -> Any:
        client = await start_gateway(settings, clock)
        clients.append(client)
        return client

    yield factory
    for client in reversed(clients):
        await client.close()
