"""voiceprints: speaker verification on SpeechBrain's ECAPA-TDNN, for voice notes sent in chats.

A library: it never imports the gateway or aiohttp. See docs/voiceprints.md.

Names are imported lazily (PEP 562): ``import voiceprints`` or ``from voiceprints import KeyRing`` does not load
torch; the first use of the engine or model does.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "AsyncEngine": "async_engine",
    "Waveform": "audio", "decode_audio": "audio",
    "Engine": "engine",
    "AudioError": "errors", "AudioProblem": "errors", "AudioRejected": "errors", "EngineBusy": "errors",
    "EngineTimeout": "errors", "EnrolmentRejected": "errors", "EnrollmentError": "errors",
    "InferenceTimeoutError": "errors", "ModelError": "errors", "ModelMismatchError": "errors",
    "NotEnrolledError": "errors", "OverloadedError": "errors", "VaultError": "errors", "VoiceprintError": "errors",
    "KeyRing": "keys",
    "MODEL_ID": "model", "MODEL_REVISION": "model", "EcapaModel": "model", "load_ecapa": "model",
    "Decision": "records", "NoteEmbedding": "records", "Voiceprint": "records",
    "Calibration": "scoring", "Cohort": "scoring",
    "EngineSettings": "settings",
    "Vault": "vault",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'voiceprints' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"voiceprints.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from voiceprints.async_engine import AsyncEngine
    from voiceprints.audio import Waveform, decode_audio
    from voiceprints.engine import Engine
    from voiceprints.errors import (
        AudioError, AudioProblem, AudioRejected, EngineBusy, EngineTimeout, EnrollmentError, EnrolmentRejected,
        InferenceTimeoutError, ModelError, ModelMismatchError, NotEnrolledError, OverloadedError, VaultError,
        VoiceprintError,
    )
    from voiceprints.keys import KeyRing
    from voiceprints.model import MODEL_ID, MODEL_REVISION, EcapaModel, load_ecapa
    from voiceprints.records import Decision, NoteEmbedding, Voiceprint
    from voiceprints.scoring import Calibration, Cohort
    from voiceprints.settings import EngineSettings
    from voiceprints.vault import Vault
