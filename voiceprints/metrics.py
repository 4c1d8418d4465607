"""Verification metrics: EER, minDCF, FRR at a target FAR."""

from __future__ import annotations

import math

import numpy as np


def _rates(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FAR and FRR for every threshold between sorted scores (accept when score >= threshold)."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=bool)
    order = np.argsort(scores, kind="mergesort")
    s, lab = scores[order], labels[order]
    n_t, n_n = lab.sum(), (~lab).sum()
    if n_t == 0 or n_n == 0:
        raise ValueError("need both target and non-target trials")
    # threshold just below s[i] for i = 0..n (n = accept nothing)
    frr = np.concatenate([[0.0], np.cumsum(lab) / n_t])
    far = np.concatenate([[1.0], 1.0 - np.cumsum(~lab) / n_n])
    thresholds = np.concatenate([s, [np.inf]])
    return far, frr, thresholds


def eer(scores: np.ndarray, labels: np.ndarray) -> float:
    """Equal error rate (interpolated at the crossing of FAR and FRR)."""
    far, frr, _ = _rates(scores, labels)
    diff = far - frr
    i = int(np.flatnonzero(diff <= 0)[0])
    if i == 0:
        return 0.0
    # linear interpolation between points i-1 (far > frr) and i (far <= frr)
    d0, d1 = diff[i - 1], diff[i]
    w = d0 / (d0 - d1) if d0 != d1 else 0.5
    return float((far[i - 1] + w * (far[i] - far[i - 1]) + frr[i - 1] + w * (frr[i] - frr[i - 1])) / 2)


def min_dcf(scores: np.ndarray, labels: np.ndarray, p_target: float = 0.01, c_miss: float = 1.0,
            c_fa: float = 1.0) -> float:
    """Normalised minimum detection cost (NIST SRE style)."""
    far, frr, _ = _rates(scores, labels)
    dcf = c_miss * p_target * frr + c_fa * (1 - p_target) * far
    return float(dcf.min() / min(c_miss * p_target, c_fa * (1 - p_target)))


def frr_at_far(scores: np.ndarray, labels: np.ndarray, target_far: float) -> float:
    """Lowest false-reject rate among thresholds whose false-accept rate is at most ``target_far``."""
    far, frr, _ = _rates(scores, labels)
    ok = far <= target_far + 1e-12
    return float(frr[ok].min())


def summary(scores: np.ndarray, labels: np.ndarray) -> dict[str, float | int]:
    """The figures `voicegate voiceprints evaluate --json` prints."""
    labels = np.asarray(labels, dtype=bool)
    return {
        "eer": eer(scores, labels),
        "min_dcf": min_dcf(scores, labels),
        "frr_at_far_1pct": frr_at_far(scores, labels, 0.01),
        "frr_at_far_0_1pct": frr_at_far(scores, labels, 0.001),
        "trials": int(len(labels)),
        "targets": int(labels.sum()),
        "nontargets": int((~labels).sum()),
    }


def fmt_pct(value: float) -> str:
    """0.0123 -> '1.23 %'."""
    return "n/a" if math.isnan(value) else f"{100 * value:.2f} %"
