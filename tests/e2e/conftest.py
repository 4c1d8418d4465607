"""End-to-end fixtures: the real app with the demo bot and CRM on the real config files, and the voice
authenticator on the real ECAPA model (loaded once per process by the plugin) and real recordings."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.settings import GatewaySettings
from support.voice import voice_settings  # noqa: F401 - a fixture, shared with tests/plugins/voice_auth


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
