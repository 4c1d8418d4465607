"""Metrics, calibration and AS-norm (the last one with the real model and a cohort of other speakers)."""

from __future__ import annotations

import numpy as np
import pytest

from voiceprints import Calibration, Cohort, Engine, EngineSettings, ModelMismatchError, VoiceprintError
from voiceprints.metrics import eer, frr_at_far, min_dcf, summary
from voiceprints.scoring import fit_calibration, threshold_at_far


def test_metrics_on_hand_checked_scores():
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], dtype=bool)
    separable = np.array([0.9, 0.8, 0.7, 0.6] + [0.1] * 10)
    assert eer(separable, labels) == 0.0 and min_dcf(separable, labels) == 0.0
    # One target (of 4) below one impostor (of 10): FRR 25 % until FAR reaches 10 %.
    overlapping = np.array([0.9, 0.8, 0.7, 0.2] + [0.3] + [0.1] * 9)
    assert frr_at_far(overlapping, labels, 0.0) == 0.25 and frr_at_far(overlapping, labels, 0.1) == 0.0
    assert 0.0 < eer(overlapping, labels) <= 0.25
    figures = summary(overlapping, labels)
    assert figures["trials"] == 14 and figures["targets"] == 4
    with pytest.raises(ValueError):
        eer(separable, np.ones(14, dtype=bool))


def test_threshold_at_far_and_calibration_fit():
    rng = np.random.default_rng(3)
    scores = np.concatenate([rng.normal(0.6, 0.1, 400), rng.normal(0.1, 0.1, 4000)])
    labels = np.concatenate([np.ones(400), np.zeros(4000)])
    threshold = threshold_at_far(scores, labels, 0.01)
    assert np.mean(scores[labels == 0] >= threshold) <= 0.01
    assert np.mean(scores[labels == 0] >= np.nextafter(threshold, -np.inf) - 1e-3) > 0.009
    calibration = fit_calibration(scores, labels, (0.01, 0.001), normalised=False)
    assert calibration.slope > 0 and 0.3 < -calibration.offset / calibration.slope < 0.4  # p=0.5 between the means
    assert calibration.probability(0.8) > 0.99 and calibration.probability(-0.1) < 0.01
    assert calibration.threshold_for(0.001) >= calibration.threshold_for(0.01)
    assert calibration.threshold_for(0.005) == calibration.thresholds[0.001]  # strictest stored FAR at or below
    assert Calibration.from_dict(calibration.to_dict()) == calibration


@pytest.mark.model
def test_as_norm_with_a_cohort_of_other_speakers(ecapa, audio_dir, read_audio, tmp_path):
    from voiceprints.evaluation import build_cohort

    files = [(p.stem.split("_")[0], p) for p in sorted((audio_dir / "librispeech-samples").glob("*.wav"))]
    cohort = build_cohort(ecapa, files, top_k=5)
    assert cohort.embeddings.shape == (12, 192) and set(cohort.speakers) == {"spk1", "spk2"}
    cohort.save(tmp_path / "cohort.json")
    assert np.array_equal(Cohort.load(tmp_path / "cohort.json").embeddings, cohort.embeddings)

    with pytest.raises(VoiceprintError, match="calibrate --cohort"):
        Engine(ecapa, EngineSettings(), cohort=cohort)  # AS-norm scores need their own calibration
    calibration = Calibration(1.0, -2.0, {0.01: 2.0}, normalised=True)
    engine = Engine(ecapa, EngineSettings(calibration=calibration), cohort=cohort)
    voiceprint = engine.enrol([engine.check_note(read_audio(f"passphrase-dev/theo/0{i}.wav")) for i in range(3)])
    target = engine.verify(voiceprint, read_audio("passphrase-dev/theo/06.wav"))
    impostor = engine.verify(voiceprint, read_audio("passphrase-dev/lucas/06.wav"))
    assert target.normalised_score > 3 > impostor.normalised_score  # in cohort standard deviations
    assert target.accepted and not impostor.accepted

    foreign = Cohort(cohort.embeddings, cohort.speakers, cohort.model_id, "f" * 40, 5)
    with pytest.raises(ModelMismatchError, match="rebuild the cohort"):
        Engine(ecapa, EngineSettings(calibration=calibration), cohort=foreign)
    assert len(cohort.without("spk1").speakers) == 6
