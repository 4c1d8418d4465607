"""End-to-end fixtures: the real app with the demo bot and CRM on the real config files, and the voice
authenticator on the real ECAPA model (loaded once per process by the plugin) and real recordings."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from gateway.settings import GatewaySettings
from gateway.testing import TEST_SECRET, make_settings
from support.speech import model_dir

REPO = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO / "config"

VoiceSettings = Callable[..., GatewaySettings]


@pytest.fixture
def voice_settings(tmp_path: Path) -> VoiceSettings:
    """``voice_settings(channels=..., **voice)``: REST (+ optional web chat), demo bot and CRM, and the ``voice``
    authenticator with ``voice`` keyword overrides. Keys: a fresh key file under ``tmp_path``."""
    if not model_dir().is_dir():
        pytest.fail(f"{model_dir()} is missing: set VOICEGATE_MODEL_DIR or VOICEGATE_SHARED_DIR")

    def build(*, webchat: bool = False, max_attempts: int = 3, **voice: Any) -> GatewaySettings:
        plugins = ["rest", "demo_bot", "demo_crm", "voice_auth"]
        channels: dict[str, Any] = {"rest": {"secret": TEST_SECRET}}
        if webchat:
            plugins.insert(1, "webchat")
            channels["webchat"] = {}
        auth = {"model_dir": str(model_dir()), "key_file": str(tmp_path / "voiceprint.keys"),
                "create_key_file": True, "max_attempts": max_attempts, **voice}
        return make_settings(
            tmp_path,
            plugins=plugins,
            channels=channels,
            bots=[{"use": "demo", "settings": {"flows": str(CONFIG_DIR / "flows.yaml")}}],
            crm=[{"use": "demo", "settings": {"customers": str(CONFIG_DIR / "customers.yaml")}}],
            authentication={"use": "voice", "verified_ttl_s": 900, "authenticators": {"voice": auth}},
        )

    return build
