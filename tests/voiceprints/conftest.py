"""Fixtures for the voiceprints tests: paths to ../shared, the real ECAPA model (loaded once), real recordings."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("VOICEGATE_SHARED_DIR", REPO.parent / "shared"))
MODEL_DIR = Path(os.environ.get("VOICEGATE_MODEL_DIR", SHARED / "models" / "spkrec-ecapa-voxceleb"))
AUDIO = SHARED / "audio"


@pytest.fixture(scope="session")
def audio_dir() -> Path:
    """``../shared/audio`` (fails, never skips, when missing: CI has it)."""
    if not AUDIO.is_dir():
        pytest.fail(f"{AUDIO} is missing: set VOICEGATE_SHARED_DIR to the folder holding audio/ and models/")
    return AUDIO


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The local ECAPA model folder."""
    return MODEL_DIR


@pytest.fixture(scope="session")
def ecapa(model_dir: Path):
    """The real ECAPA model, loaded once per test session — the very copy the voice plugin's tests and the e2e
    tests use (the plugin keeps one per process and folder), so a full run loads the model once, not twice."""
    from voicegate_voice_auth.plugin import shared_model

    return shared_model(model_dir)


@pytest.fixture(scope="session")
def engine(ecapa):
    """An :class:`Engine` with default settings and no cohort (cosine scores)."""
    from voiceprints import Engine, EngineSettings

    return Engine(ecapa, EngineSettings())


@pytest.fixture(scope="session")
def read_audio(audio_dir: Path):
    """``read_audio("passphrase-dev/george/00.wav") -> bytes``."""
    return lambda relative: (audio_dir / relative).read_bytes()


def wav_bytes(samples: np.ndarray, rate: int = 16_000, subtype: str = "PCM_16") -> bytes:
    """Encode float samples as an in-memory WAV file."""
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format="WAV", subtype=subtype)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def george_wave(read_audio):
    """George's passphrase clip 00, decoded (16 kHz mono float32)."""
    from voiceprints import decode_audio

    return decode_audio(read_audio("passphrase-dev/george/00.wav")).samples
