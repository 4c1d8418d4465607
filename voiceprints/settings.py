"""Engine settings: small, frozen, explicit."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources

from voiceprints.errors import VoiceprintError
from voiceprints.scoring import Calibration


def default_calibration(normalised: bool) -> Calibration:
    """The calibration shipped in ``voiceprints/data/calibration.json`` (cosine scoring; see its ``source``).

    AS-norm scores depend on the cohort, so there is no shipped calibration for them: calibrate with your cohort.
    """
    if normalised:
        raise VoiceprintError(
            "An engine with a cohort (AS-norm scores) needs a calibration made with that cohort: run "
            "`voicegate voiceprints calibrate --cohort COHORT.json ...` and pass "
            "EngineSettings(calibration=Calibration.from_dict(...))."
        )
    return _shipped("cosine")


def default_narrowband_calibration() -> Calibration:
    """The shipped calibration for cosine scores of narrowband notes against narrowband templates.

    Two band-limited embeddings agree more than full-band ones, for impostors too, so these scores need their own
    threshold: at the full-band threshold, 14 % of narrowband impostors passed on the shared recordings.
    """
    return _shipped("cosine_narrowband")


def _shipped(name: str) -> Calibration:
    text = resources.files("voiceprints").joinpath("data/calibration.json").read_text()
    return Calibration.from_dict(json.loads(text)[name])


@dataclass(frozen=True)
class EngineSettings:
    """How strict the quality gate and the decision are.

    ``threshold`` overrides the calibrated threshold for ``target_far``; ``calibration`` overrides the shipped one
    (write your own with ``voicegate voiceprints calibrate``). Scores and thresholds are on the AS-norm scale when the
    engine has a cohort, on the cosine scale otherwise. ``narrowband_calibration`` applies to notes from 8 kHz
    channels scored against a narrowband template; when you pass ``calibration`` (or ``threshold``) without it, yours
    applies to those notes too. ``narrowband=False`` scores every note against the full-band template.
    """

    min_speech_s: float = 1.0
    max_duration_s: float = 30.0
    max_bytes: int = 10_000_000
    enrol_notes: int = 3
    enrol_min_agreement: float = 0.30  # cosine of a note with the mean of the others; same speaker is ~0.5-0.8
    target_far: float = 0.01
    threshold: float | None = None
    calibration: Calibration | None = field(default=None, compare=False)
    silence_dbfs: float = -50.0
    max_clipped_fraction: float = 0.01
    min_snr_db: float = 10.0  # loud-vs-quiet frame level gap, see quality.analyse
    vad: bool = True
    enrol_augment: bool = True  # check_enrolment_note also embeds noisy/reverberant/codec copies
    narrowband: bool = True  # enrolment also builds an 8 kHz template; notes from 8 kHz channels are scored on it
    narrowband_calibration: Calibration | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.enrol_notes < 1:
            raise ValueError("enrol_notes must be at least 1")
        if not 0.0 < self.target_far < 1.0:
            raise ValueError("target_far must be between 0 and 1 (e.g. 0.01 for 1 %)")
        if self.min_speech_s <= 0 or self.max_duration_s <= self.min_speech_s:
            raise ValueError("need 0 < min_speech_s < max_duration_s")
