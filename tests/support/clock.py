"""A clock tests move by hand, and a started gateway that reads it (to test expiries without sleeping)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Sequence

from gateway.settings import GatewaySettings


class ManualClock:
    """``clock()`` returns the current (UTC, aware) time; ``advance(seconds)`` moves it forward."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


async def start_gateway(settings: GatewaySettings, clock: ManualClock,
                        extra_plugins: Sequence[object] = ()) -> Any:
    """A started aiohttp ``TestClient`` whose gateway (pipeline, authenticator, desk) reads ``clock``.

    The caller closes it (``await client.close()``); ``gateway.testing.gateway_client`` has no clock option.
    """
    from aiohttp.test_utils import TestClient, TestServer

    from gateway.app import create_app

    client = TestClient(TestServer(create_app(settings, extra_plugins=extra_plugins, clock=clock),
                                   host="127.0.0.1", port=0))
    try:
        await client.start_server()
    except BaseException:
        await client.close()
        raise
    return client
