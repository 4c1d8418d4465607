"""Fixtures for the voice authenticator's tests: the real app, real config files, the real model when asked."""

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
