"""Fixtures for the built-in plugins' tests: gateway settings wired to the real config files."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from gateway.settings import GatewaySettings
from gateway.testing import TEST_SECRET, make_settings

REPO = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO / "config"

DemoSettings = Callable[..., GatewaySettings]


@pytest.fixture
def config_dir() -> Path:
    """The repository's ``config/`` folder (flows.yaml, customers.yaml, gateway.yaml)."""
    return CONFIG_DIR


@pytest.fixture
def demo_settings(tmp_path: Path) -> DemoSettings:
    """``demo_settings(**sections)``: REST + web chat, the demo bot and CRM on the real
    ``config/flows.yaml`` and ``config/customers.yaml``, the ``deny`` authenticator; each
    keyword replaces one top-level section (as in :func:`gateway.testing.make_settings`)."""

    def build(**sections: Any) -> GatewaySettings:
        data: dict[str, Any] = {
            "plugins": ["rest", "webchat", "demo_bot", "demo_crm", "deny_auth"],
            "channels": {"rest": {"secret": TEST_SECRET}, "webchat": {}},
            "bots": [{"use": "demo", "settings": {"flows": str(CONFIG_DIR / "flows.yaml")}}],
            "crm": [{"use": "demo", "settings": {"customers": str(CONFIG_DIR / "customers.yaml")}}],
            "authentication": {"use": "deny"},
        }
        data.update(sections)
        return make_settings(tmp_path, **data)

    return build
