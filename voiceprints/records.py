"""The engine's value objects: a checked note's embedding, a voiceprint, a decision.

Each embedding carries the model id and revision it came from, so embeddings of different models are never
compared (:class:`ModelMismatchError`). Serialisation is versioned JSON with the embedding as base64 float32: small,
portable, and never pickled (pickle of stored data would be code execution for whoever can write the database).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

from voiceprints.errors import ModelMismatchError, VaultError

FORMAT_VERSION = 1
EMBEDDING_DIM = 192


def _encode_vector(vector: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(vector, dtype="<f4").tobytes()).decode("ascii")


def _decode_vector(text: str) -> np.ndarray:
    vector = np.frombuffer(base64.b64decode(text), dtype="<f4").astype(np.float32)
    if vector.shape != (EMBEDDING_DIM,) or not np.all(np.isfinite(vector)):
        raise VaultError("A stored embedding is malformed (wrong size or not finite); re-enrol the customer.")
    return vector


def _loads(data: bytes, kind: str) -> dict:
    try:
        payload = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise VaultError(f"Stored {kind} is not readable ({exc.__class__.__name__}); re-enrol the customer.") from exc
    if not isinstance(payload, dict) or payload.get("kind") != kind or payload.get("v") != FORMAT_VERSION:
        raise VaultError(f"Stored data is not a version-{FORMAT_VERSION} {kind}; re-enrol the customer.")
    return payload


def l2_normalise(vector: np.ndarray) -> np.ndarray:
    """Unit-length float32 copy (zero vectors stay zero)."""
    vector = np.asarray(vector, dtype=np.float32)
    return (vector / max(float(np.linalg.norm(vector)), 1e-12)).astype(np.float32)


@dataclass(frozen=True)
class NoteEmbedding:
    """A voice note that passed the quality gate, reduced to its embedding.

    ``embedding`` is L2-normalised float32 (192,); ``audio_sha256`` hashes the decoded PCM (replay detection);
    ``speech_s`` is the seconds of speech the VAD kept; ``narrowband`` says the note came through an 8 kHz channel
    (phone, AMR-NB), so it is scored against the voiceprint's narrowband template.
    """

    embedding: np.ndarray
    audio_sha256: str
    speech_s: float
    model_id: str
    model_revision: str
    enrolment_embedding: np.ndarray | None = None  # multi-condition average, from Engine.check_enrolment_note
    narrowband_embedding: np.ndarray | None = None  # the same, of copies band-limited to 8 kHz (enrolment only)
    narrowband: bool = False

    def __repr__(self) -> str:  # biometric data stays out of logs and tracebacks
        return f"NoteEmbedding(speech_s={self.speech_s:.1f}, model_revision={self.model_revision[:8]!r})"

    def to_bytes(self) -> bytes:
        """Versioned JSON (UTF-8)."""
        return json.dumps({
            "v": FORMAT_VERSION, "kind": "note", "embedding": _encode_vector(self.embedding),
            "audio_sha256": self.audio_sha256, "speech_s": round(float(self.speech_s), 3),
            "model_id": self.model_id, "model_revision": self.model_revision,
            "enrolment_embedding": None if self.enrolment_embedding is None
            else _encode_vector(self.enrolment_embedding),
            "narrowband_embedding": None if self.narrowband_embedding is None
            else _encode_vector(self.narrowband_embedding),
            "narrowband": bool(self.narrowband),
        }).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> "NoteEmbedding":
        """Inverse of :meth:`to_bytes`; :class:`VaultError` on anything malformed."""
        p = _loads(data, "note")
        # Notes stored before narrowband scoring have neither narrowband field: they read as wideband notes.
        extra, narrow = p.get("enrolment_embedding"), p.get("narrowband_embedding")
        return cls(_decode_vector(p["embedding"]), str(p["audio_sha256"]), float(p["speech_s"]),
                   str(p["model_id"]), str(p["model_revision"]), None if extra is None else _decode_vector(extra),
                   None if narrow is None else _decode_vector(narrow), bool(p.get("narrowband", False)))


@dataclass(frozen=True)
class Voiceprint:
    """An enrolled speaker: the length-normalised average of the enrolment embeddings.

    ``narrowband_template`` (optional) averages the enrolment notes band-limited to 8 kHz; notes that came through an
    8 kHz channel are compared with it, so both sides of the comparison miss the same band. Voiceprints stored before
    it existed have none and score every note against ``template``.
    """

    template: np.ndarray
    model_id: str
    model_revision: str
    notes: int
    created_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    narrowband_template: np.ndarray | None = None

    def __repr__(self) -> str:  # biometric data stays out of logs and tracebacks
        return f"Voiceprint(notes={self.notes}, model_revision={self.model_revision[:8]!r}, created_at={self.created_at})"

    def check_model(self, model_id: str, model_revision: str) -> None:
        """Raise :class:`ModelMismatchError` unless this voiceprint came from the given model."""
        if (self.model_id, self.model_revision) != (model_id, model_revision):
            raise ModelMismatchError(
                f"This voiceprint was made with {self.model_id}@{self.model_revision[:8]} but the engine runs "
                f"{model_id}@{model_revision[:8]}; embeddings of different models cannot be compared. "
                "Ask the customer to enrol again."
            )

    def to_bytes(self) -> bytes:
        """Versioned JSON (UTF-8)."""
        return json.dumps({
            "v": FORMAT_VERSION, "kind": "voiceprint", "template": _encode_vector(self.template),
            "model_id": self.model_id, "model_revision": self.model_revision, "notes": int(self.notes),
            "created_at": self.created_at.isoformat(),
            "narrowband_template": None if self.narrowband_template is None
            else _encode_vector(self.narrowband_template),
        }).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> "Voiceprint":
        """Inverse of :meth:`to_bytes`; :class:`VaultError` on anything malformed."""
        p = _loads(data, "voiceprint")
        narrow = p.get("narrowband_template")  # absent in voiceprints stored before narrowband scoring
        return cls(_decode_vector(p["template"]), str(p["model_id"]), str(p["model_revision"]), int(p["notes"]),
                   datetime.fromisoformat(p["created_at"]), None if narrow is None else _decode_vector(narrow))


@dataclass(frozen=True)
class Decision:
    """The verdict on one note against one voiceprint.

    ``score`` is calibrated (estimated probability that the speaker is the enrolled one, at even prior odds);
    ``raw_score`` is the plain cosine; ``code`` is ``match`` or ``no_match``; ``reason`` is for people and carries
    no numbers. ``embedding``/``audio_sha256`` let the caller remember the note for replay checks.
    """

    accepted: bool
    score: float
    raw_score: float
    reason: str
    code: str
    embedding: np.ndarray
    audio_sha256: str
    speech_s: float
    normalised_score: float = 0.0
    threshold: float = 0.0
    narrowband: bool = False  # scored against the narrowband template, with the narrowband calibration

    def __repr__(self) -> str:  # never print embeddings or scores by accident (logs, tracebacks)
        return f"Decision(accepted={self.accepted}, code={self.code!r})"
