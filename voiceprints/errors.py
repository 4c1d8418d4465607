"""One exception tree for the speaker-verification engine.

Every message says what was wrong and what to do about it. Messages never contain
audio, embeddings or scores: they may end up in logs and in front of customers.
"""

from __future__ import annotations

import enum


class VoiceprintError(Exception):
    """Base class of every error raised by :mod:`voiceprints`."""


class ModelError(VoiceprintError):
    """The speaker model is missing, incomplete, corrupt or cannot be loaded."""


class AudioError(VoiceprintError):
    """A voice note cannot be used. ``reason`` is machine-readable, ``str(err)`` is for people."""

    def __init__(self, reason: "AudioProblem", message: str) -> None:
        super().__init__(message)
        self.reason = reason


class AudioProblem(str, enum.Enum):
    """Why a voice note was rejected; each maps to an action the customer can take."""

    NOT_AUDIO = "not_audio"
    TOO_LARGE = "too_large"
    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    SILENT = "silent"
    CLIPPED = "clipped"
    TOO_NOISY = "too_noisy"


class EnrollmentError(VoiceprintError):
    """An enrolment was refused; ``note_index`` names the offending note when one is to blame."""

    def __init__(self, message: str, note_index: int | None = None) -> None:
        super().__init__(message)
        self.note_index = note_index


class VaultError(VoiceprintError):
    """Stored voiceprints cannot be read or written (missing key, wrong key id, tampered data)."""


class NotEnrolledError(VaultError):
    """No voiceprint is stored for this customer."""


class ModelMismatchError(VoiceprintError):
    """A stored embedding came from another model or revision and must not be compared."""


class OverloadedError(VoiceprintError):
    """The inference pool's queue is full: the caller should retry later or shed load."""


class InferenceTimeoutError(VoiceprintError):
    """A decode or embedding did not finish within the configured timeout."""


class AudioRejected(AudioError):
    """The quality gate refused a voice note.

    ``code`` is one of ``too_short``, ``silent``, ``clipped``, ``too_noisy``, ``too_long``, ``not_audio``,
    ``too_large``; ``str(err)`` tells the customer what to do (record again, speak longer, move somewhere quieter...).
    """

    def __init__(self, code: "AudioProblem | str", message: str) -> None:
        super().__init__(AudioProblem(code), message)

    @property
    def code(self) -> str:
        """Machine-readable reason, stable across releases."""
        return self.reason.value


class EnrolmentRejected(EnrollmentError):
    """The enrolment notes do not agree (another speaker, or one bad note); ``note_index`` names the note (0-based)."""


class EngineBusy(OverloadedError):
    """:class:`voiceprints.AsyncEngine` has ``queue_limit`` requests in flight: nothing was queued, retry later."""


EngineTimeout = InferenceTimeoutError
"""Alias: a request to :class:`voiceprints.AsyncEngine` did not finish within ``timeout_s``."""
