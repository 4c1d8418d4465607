"""Scoring: cosine, adaptive s-norm against a cohort, and calibration to a probability and FAR thresholds.

Plain cosine is not comparable across speakers and recording conditions: some voices (and some microphones) score
high against everyone. Adaptive symmetric normalisation (AS-norm) compares the trial score with how the enrolment
template and the test note score against the *closest* impostors of a cohort, on both sides, which removes most of
that per-speaker and per-condition offset.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from voiceprints.errors import ModelMismatchError, VoiceprintError
from voiceprints.records import EMBEDDING_DIM


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two vectors."""
    return float(np.dot(a, b) / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-12))


@dataclass(frozen=True)
class Cohort:
    """Impostor embeddings for score normalisation (L2-normalised, one row per utterance).

    Build it from speakers who are *not* the ones being verified: shipped recordings of other people, or other
    customers' voiceprints. ``speakers`` labels the rows (used to report and to exclude a speaker).
    """

    embeddings: np.ndarray
    speakers: tuple[str, ...]
    model_id: str
    model_revision: str
    top_k: int = 50

    def __post_init__(self) -> None:
        if self.embeddings.ndim != 2 or self.embeddings.shape[1] != EMBEDDING_DIM:
            raise VoiceprintError(f"A cohort needs (n, {EMBEDDING_DIM}) embeddings, got {self.embeddings.shape}.")
        if len(self.speakers) != len(self.embeddings):
            raise VoiceprintError("A cohort needs one speaker label per embedding.")
        if len(self.embeddings) < 5:
            raise VoiceprintError("A cohort needs at least 5 utterances to estimate impostor statistics.")

    def check_model(self, model_id: str, model_revision: str) -> None:
        """Raise :class:`ModelMismatchError` unless the cohort came from the given model."""
        if (self.model_id, self.model_revision) != (model_id, model_revision):
            raise ModelMismatchError(
                f"The cohort was built with {self.model_id}@{self.model_revision[:8]}, the engine runs "
                f"{model_id}@{model_revision[:8]}; rebuild the cohort with this model."
            )

    def stats(self, vector: np.ndarray) -> tuple[float, float]:
        """Mean and standard deviation of the ``top_k`` highest cohort scores of ``vector``."""
        scores = self.embeddings @ np.asarray(vector, dtype=np.float32)
        k = min(self.top_k, len(scores))
        top = np.partition(scores, len(scores) - k)[len(scores) - k:]
        return float(top.mean()), float(max(top.std(), 1e-3))

    def without(self, *speakers: str) -> "Cohort":
        """A copy without the given speakers' rows (keeps a verified speaker out of their own cohort)."""
        keep = [i for i, s in enumerate(self.speakers) if s not in speakers]
        return Cohort(self.embeddings[keep], tuple(self.speakers[i] for i in keep), self.model_id,
                      self.model_revision, self.top_k)

    def to_json(self) -> str:
        """Portable JSON (embeddings as base64 float32)."""
        return json.dumps({
            "kind": "cohort", "v": 1, "model_id": self.model_id, "model_revision": self.model_revision,
            "top_k": self.top_k, "speakers": list(self.speakers),
            "embeddings": base64.b64encode(np.ascontiguousarray(self.embeddings, dtype="<f4").tobytes()).decode(),
        })

    @classmethod
    def from_json(cls, text: str) -> "Cohort":
        """Inverse of :meth:`to_json`."""
        p = json.loads(text)
        if p.get("kind") != "cohort":
            raise VoiceprintError("This file is not a voiceprints cohort (missing kind=cohort).")
        emb = np.frombuffer(base64.b64decode(p["embeddings"]), dtype="<f4").astype(np.float32)
        return cls(emb.reshape(-1, EMBEDDING_DIM), tuple(p["speakers"]), p["model_id"], p["model_revision"],
                   int(p.get("top_k", 50)))

    @classmethod
    def load(cls, path: str | Path) -> "Cohort":
        """Read a cohort written by :meth:`save`."""
        return cls.from_json(Path(path).read_text())

    def save(self, path: str | Path) -> None:
        """Write the cohort as JSON."""
        Path(path).write_text(self.to_json())


def as_norm(raw: float, template: np.ndarray, test: np.ndarray, cohort: Cohort) -> float:
    """Adaptive symmetric s-norm of a raw cosine score."""
    mu_e, sd_e = cohort.stats(template)
    mu_t, sd_t = cohort.stats(test)
    return 0.5 * ((raw - mu_e) / sd_e + (raw - mu_t) / sd_t)


@dataclass(frozen=True)
class Calibration:
    """Maps a (normalised) score to a probability and holds thresholds for target false-accept rates.

    ``probability = 1 / (1 + exp(-(slope * score + offset)))`` (logistic regression on labelled trials, even prior
    odds); ``thresholds`` maps FAR (e.g. 0.01) to the score threshold that reached it on the calibration set.
    ``normalised`` says which score it applies to (AS-norm with a cohort, or raw cosine without one).
    """

    slope: float
    offset: float
    thresholds: dict[float, float] = field(default_factory=dict)
    normalised: bool = True
    source: str = ""

    def probability(self, score: float) -> float:
        """Calibrated probability of a target trial (even prior odds)."""
        z = self.slope * score + self.offset
        return 1.0 / (1.0 + math.exp(-max(min(z, 60.0), -60.0)))

    def threshold_for(self, target_far: float) -> float:
        """Threshold for ``target_far``: the stored one, else the strictest stored threshold at or below it."""
        if not self.thresholds:
            raise VoiceprintError("This calibration has no thresholds; run `voicegate voiceprints calibrate`.")
        if target_far in self.thresholds:
            return self.thresholds[target_far]
        usable = [far for far in self.thresholds if far <= target_far]
        far = max(usable) if usable else min(self.thresholds)
        return self.thresholds[far]

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return {"slope": self.slope, "offset": self.offset, "normalised": self.normalised, "source": self.source,
                "thresholds": {str(k): v for k, v in sorted(self.thresholds.items())}}

    @classmethod
    def from_dict(cls, data: dict) -> "Calibration":
        """Inverse of :meth:`to_dict`."""
        return cls(float(data["slope"]), float(data["offset"]),
                   {float(k): float(v) for k, v in data.get("thresholds", {}).items()},
                   bool(data.get("normalised", True)), str(data.get("source", "")))


def fit_calibration(scores: np.ndarray, labels: np.ndarray, fars: tuple[float, ...] = (0.01, 0.001), *,
                    normalised: bool, source: str = "") -> Calibration:
    """Fit logistic calibration (Newton steps with a tiny ridge) and FAR thresholds on labelled trial scores."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    if labels.min() == labels.max():
        raise VoiceprintError("Calibration needs both target and non-target trials.")
    # Balance classes so the result is a probability at even prior odds.
    weights = np.where(labels == 1, 0.5 / labels.mean(), 0.5 / (1 - labels.mean()))
    x = np.stack([scores, np.ones_like(scores)], axis=1)
    w = np.zeros(2)
    for _ in range(50):
        p = 1 / (1 + np.exp(-np.clip(x @ w, -60, 60)))
        grad = x.T @ (weights * (p - labels)) + 1e-6 * w
        hess = (x * (weights * p * (1 - p))[:, None]).T @ x + 1e-6 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-9:
            break
    thresholds = {far: threshold_at_far(scores, labels, far) for far in fars}
    return Calibration(float(w[0]), float(w[1]), thresholds, normalised, source)


def threshold_at_far(scores: np.ndarray, labels: np.ndarray, far: float) -> float:
    """Smallest threshold whose false-accept rate (score >= threshold) on the non-targets is at most ``far``."""
    nontarget = np.sort(np.asarray(scores)[np.asarray(labels) == 0])[::-1]
    allowed = int(math.floor(far * len(nontarget)))
    if allowed >= len(nontarget):
        return float(nontarget[-1])
    # Accepting `allowed` impostors at most: the threshold sits just above the (allowed+1)-th highest impostor.
    return float(np.nextafter(nontarget[allowed], np.inf))
