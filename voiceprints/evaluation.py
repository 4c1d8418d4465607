"""Evaluating the engine on labelled trial lists, and building cohorts from recordings.

Trial list format (JSON lines): ``{"enroll": ["spk/a.wav", ...], "test": "spk/b.wav", "target": true}``, paths
relative to an audio root. Every file is decoded and embedded once. Scoring applies the engine exactly as in
production (VAD, length-normalised template, AS-norm when it has a cohort) but does not let the quality gate drop
trials: a gate verdict is counted and reported, while the score still counts, so figures stay comparable with a
reference that has no gate.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from voiceprints.audio import decode_audio
from voiceprints.degrade import degrade
from voiceprints.engine import Engine
from voiceprints.errors import VoiceprintError
from voiceprints.metrics import summary
from voiceprints.model import EcapaModel
from voiceprints.records import NoteEmbedding
from voiceprints.scoring import Cohort

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Trial:
    """One verification trial."""

    enroll: tuple[str, ...]
    test: str
    target: bool


def load_trials(path: str | Path) -> list[Trial]:
    """Read a JSON-lines trial list; errors name the file and line."""
    file = Path(path)
    trials: list[Trial] = []
    try:
        lines = file.read_text().splitlines()
    except OSError as exc:
        raise VoiceprintError(f"Cannot read the trial list {file}: {exc.strerror}.") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            if not isinstance(item, dict):
                raise ValueError("not a JSON object")
            missing = [key for key in ("enroll", "test", "target") if key not in item]
            if missing:
                raise ValueError(f"missing key{'s' * (len(missing) > 1)} {', '.join(map(repr, missing))}")
            enroll, test, target = item["enroll"], item["test"], item["target"]
            if not (isinstance(enroll, list) and enroll and all(isinstance(e, str) for e in enroll)):
                raise ValueError("'enroll' must be a non-empty list of paths")
            if not isinstance(test, str) or not isinstance(target, bool):
                raise ValueError("'test' must be a path and 'target' true or false")
        except (json.JSONDecodeError, TypeError, ValueError) as exc:
            raise VoiceprintError(
                f"{file}:{number}: not a trial ({exc}); expected "
                '{"enroll": ["spk/a.wav", ...], "test": "spk/b.wav", "target": true}'
            ) from None
        trials.append(Trial(tuple(enroll), test, target))
    if not trials:
        raise VoiceprintError(f"{file} holds no trials.")
    return trials


@dataclass
class EvaluationResult:
    """Scores and labels per trial, plus what the quality gate would have said."""

    scores: np.ndarray
    labels: np.ndarray
    gate_rejections: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict:
        """EER, minDCF, FRR at FAR 1 % / 0.1 %, counts."""
        result = summary(self.scores, self.labels)
        result["gate_rejections"] = dict(self.gate_rejections)
        return result


def embed_file(engine: Engine, path: Path, *, condition: str = "clean", seed: int = 0,
               enrolment: bool = False) -> tuple[NoteEmbedding, str | None]:
    """Embed one file as the engine would (optionally degraded); also return the gate's verdict code (or None)."""
    wave = decode_audio(path.read_bytes(), max_bytes=50_000_000)
    samples = (degrade(wave.samples, condition, seed=seed, key=f"{path.parent.name}/{path.name}")
               if condition != "clean" else wave.samples)
    return engine.embed_samples(samples, enrolment=enrolment, key=wave.sha256())


def evaluate(engine: Engine, trials: Sequence[Trial], audio_root: str | Path, *, condition: str = "clean",
             seed: int = 0, progress: Progress | None = None) -> EvaluationResult:
    """Score every trial; ``condition`` degrades the *test* notes (enrolment stays clean, as in the product, and is
    embedded like :meth:`Engine.check_enrolment_note` does)."""
    root = Path(audio_root)
    wanted = sorted({(f, "enrol") for t in trials for f in t.enroll} | {(t.test, condition) for t in trials})
    notes: dict[tuple[str, str], NoteEmbedding] = {}
    verdicts: dict[str, int] = {}
    for index, (name, cond) in enumerate(wanted):
        path = root / name
        if not path.is_file():
            raise VoiceprintError(f"{path} is listed in the trials but does not exist (check --audio-root).")
        note, problem = embed_file(engine, path, condition="clean" if cond == "enrol" else cond, seed=seed,
                                   enrolment=cond == "enrol")
        notes[(name, cond)] = note
        if problem is not None and cond == condition:
            verdicts[problem] = verdicts.get(problem, 0) + 1
        if progress:
            progress(index + 1, len(wanted))
    scores = np.empty(len(trials))
    templates: dict[tuple[str, ...], object] = {}
    for i, trial in enumerate(trials):
        if trial.enroll not in templates:
            templates[trial.enroll] = engine.template([notes[(f, "enrol")] for f in trial.enroll])
        scores[i] = engine.score(templates[trial.enroll], notes[(trial.test, condition)])[1]  # type: ignore[arg-type]
    return EvaluationResult(scores, np.array([t.target for t in trials]), verdicts)


def build_cohort(model: EcapaModel, files: Iterable[tuple[str, Path]], *, conditions: Sequence[str] = ("clean",),
                 top_k: int = 50, seed: int = 0, progress: Progress | None = None) -> Cohort:
    """A cohort from ``(speaker, path)`` pairs, each file embedded (speech only) under every condition.

    Multi-condition cohorts let the adaptive top-k pick impostors recorded like the note being scored.
    """
    from voiceprints.engine import Engine
    from voiceprints.settings import EngineSettings

    engine = Engine(model, EngineSettings())
    pairs = list(files)
    rows, speakers = [], []
    total = len(pairs) * len(conditions)
    for index, ((speaker, path), condition) in enumerate(((p, c) for p in pairs for c in conditions)):
        note, _problem = embed_file(engine, path, condition=condition, seed=seed)
        rows.append(note.embedding)
        speakers.append(speaker)
        if progress:
            progress(index + 1, total)
    return Cohort(np.stack(rows), tuple(speakers), model.model_id, model.model_revision, top_k)

