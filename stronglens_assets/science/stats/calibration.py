"""Calibration of p(lens): ECE/MCE, reliability bins and per-stratum summaries.

Convention: torchmetrics' **binary** one (``BinaryCalibrationError``): confidence = p(lens)
(not the top-label confidence), accuracy = the label, ``n_bins`` equal-width bins on [0, 1];
``ECE = sum_b (n_b / N) |acc_b - conf_b|`` (``norm="l1"``) and ``MCE = max_b |acc_b - conf_b|``
over populated bins (``norm="max"``).

Prevalence: ECE and precision depend on the class mix. Besides the sample's own mix they are
reported at a deployment prevalence ``pi`` by reweighting the sample: each lens carries weight
``pi / pi_s`` and each non-lens ``(1 - pi) / (1 - pi_s)`` (``pi_s``: the sample's lens
fraction), the standard importance weights for a class-prior shift (scores unchanged). A
stratum holding one class only has no calibration to measure: it is summarised (n, mean
score) but its ECE/MCE are not reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torchmetrics.classification import BinaryCalibrationError

from stronglens_assets.science.stats.detection import detected

__all__ = [
    "CALIBRATION_CONVENTION",
    "calibration_errors",
    "precision_at",
    "prevalence_weights",
    "quantile_bins",
    "reliability_bins",
    "stratum_summary",
    "weighted_calibration_errors",
]

CALIBRATION_CONVENTION = (
    "torchmetrics BinaryCalibrationError: confidence = p(lens), accuracy = label, "
    "equal-width bins on [0, 1]; ECE = sum_b n_b/N |acc_b - conf_b| (norm l1), "
    "MCE = max_b |acc_b - conf_b| (norm max)"
)


def calibration_errors(
    scores: Sequence[float] | np.ndarray, labels: Sequence[int] | np.ndarray, n_bins: int = 15
) -> tuple[float, float]:
    """``(ECE, MCE)`` in torchmetrics' binary convention (module docstring)."""
    scores_t = torch.as_tensor(np.asarray(scores, dtype=np.float32))
    labels_t = torch.as_tensor(np.asarray(labels, dtype=np.int64))
    if len(scores_t) == 0:
        return float("nan"), float("nan")
    ece = BinaryCalibrationError(n_bins=n_bins, norm="l1")(scores_t, labels_t)
    mce = BinaryCalibrationError(n_bins=n_bins, norm="max")(scores_t, labels_t)
    return float(ece), float(mce)


def _bin_index(scores: np.ndarray, n_bins: int) -> np.ndarray:
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return np.clip(np.searchsorted(edges, scores, side="right") - 1, 0, n_bins - 1)


def prevalence_weights(labels: Sequence[int] | np.ndarray, prevalence: float) -> np.ndarray:
    """Per-row weights moving the sample's lens fraction ``pi_s`` to ``prevalence``.

    Lenses get ``prevalence / pi_s``, non-lenses ``(1 - prevalence) / (1 - pi_s)``; the weights
    sum to the number of rows. ``ValueError`` when ``prevalence`` is not in (0, 1) or the
    sample lacks a class (no reweighting can create one).
    """
    labels = np.asarray(labels).astype(bool)
    if not 0.0 < prevalence < 1.0:
        raise ValueError(f"prevalence must be in (0, 1), got {prevalence}")
    sample = float(labels.mean()) if len(labels) else float("nan")
    if not 0.0 < sample < 1.0:
        raise ValueError("reweighting to a prevalence needs lenses and non-lenses in the sample")
    return np.where(labels, prevalence / sample, (1.0 - prevalence) / (1.0 - sample))


def weighted_calibration_errors(
    scores: Sequence[float] | np.ndarray,
    labels: Sequence[int] | np.ndarray,
    n_bins: int,
    weights: Sequence[float] | np.ndarray,
) -> tuple[float, float]:
    """``(ECE, MCE)`` as :func:`calibration_errors` with per-row weights (same bins): in each
    bin the weighted lens fraction against the weighted mean p, bins weighted by their share
    of the total weight. Integer weights give the ECE of the sample with rows repeated."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    if len(scores) == 0 or weights.sum() <= 0:
        return float("nan"), float("nan")
    index = _bin_index(scores, n_bins)
    mass = np.bincount(index, weights=weights, minlength=n_bins)
    filled = mass > 0
    confidence = np.bincount(index, weights=weights * scores, minlength=n_bins)[filled]
    accuracy = np.bincount(index, weights=weights * labels, minlength=n_bins)[filled]
    gaps = np.abs(accuracy - confidence) / mass[filled]
    ece = float(np.sum(mass[filled] / mass.sum() * gaps))
    return ece, float(gaps.max())


def precision_at(
    scores: Sequence[float] | np.ndarray,
    labels: Sequence[int] | np.ndarray,
    threshold: float,
    prevalence: float | None = None,
) -> float | None:
    """Precision of detections ``p > threshold`` (:func:`~.detection.detected`).

    ``prevalence=None``: at the sample's class mix, ``TP / (TP + FP)``. Otherwise at that lens
    prevalence ``pi``: ``TPR pi / (TPR pi + FPR (1 - pi))``. ``None`` when nothing is detected
    (or, reweighted, when a class is missing).
    """
    labels = np.asarray(labels).astype(bool)
    hits = detected(np.asarray(scores, dtype=np.float64), threshold)
    if prevalence is None:
        n_hits = int(hits.sum())
        return float((hits & labels).sum() / n_hits) if n_hits else None
    if labels.all() or not labels.any():
        return None
    tpr = float(hits[labels].mean())
    fpr = float(hits[~labels].mean())
    denominator = tpr * prevalence + fpr * (1.0 - prevalence)
    return tpr * prevalence / denominator if denominator > 0 else None


def reliability_bins(
    scores: Sequence[float] | np.ndarray, labels: Sequence[int] | np.ndarray, n_bins: int = 15
) -> pd.DataFrame:
    """Per equal-width bin: ``lower, upper, n, confidence`` (mean p), ``accuracy`` (lens
    fraction), ``gap`` = |accuracy - confidence|. Bin ``b`` holds ``lower <= p < upper``
    as in torchmetrics' bucketing (p = 1 goes to the last bin here)."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = _bin_index(scores, n_bins)
    counts = np.bincount(index, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.bincount(index, weights=scores, minlength=n_bins) / counts
        accuracy = np.bincount(index, weights=labels, minlength=n_bins) / counts
    return pd.DataFrame(
        {
            "lower": edges[:-1],
            "upper": edges[1:],
            "n": counts,
            "confidence": confidence,
            "accuracy": accuracy,
            "gap": np.abs(accuracy - confidence),
        }
    )


def quantile_bins(values: np.ndarray, n_bins: int) -> tuple[np.ndarray, list[str]]:
    """Label each value with its quantile bin (``"[lo, hi]"`` strings); NaN -> ``"unknown"``."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    labels = np.full(len(values), "unknown", dtype=object)
    if not finite.any():
        return labels, ["unknown"]
    edges = np.unique(np.quantile(values[finite], np.linspace(0, 1, n_bins + 1)))
    if len(edges) < 2:
        edges = np.array([values[finite].min(), values[finite].max()])
    index = np.clip(np.searchsorted(edges, values[finite], side="right") - 1, 0, len(edges) - 2)
    names = [f"[{edges[i]:.3g}, {edges[i + 1]:.3g}]" for i in range(len(edges) - 1)]
    labels[finite] = np.asarray(names, dtype=object)[index]
    return labels, names


def stratum_summary(
    scores: np.ndarray, labels: np.ndarray, n_bins: int, threshold: float
) -> dict[str, Any]:
    """n, lenses, ECE/MCE, mean score and the detected fraction (``p > threshold``) of one
    stratum. A stratum with one class only gets ``ece``/``mce`` ``None`` and
    ``calibration: "not reported: one class only"`` (module docstring)."""
    n_lens = int(np.sum(labels))
    both = 0 < n_lens < len(scores)
    ece, mce = calibration_errors(scores, labels, n_bins) if both else (None, None)
    return {
        "n": len(scores),
        "n_lens": n_lens,
        "calibration": "reported" if both else "not reported: one class only",
        "ece": ece,
        "mce": mce,
        "mean_score": float(np.mean(scores)) if len(scores) else float("nan"),
        "fraction_above_threshold": (
            float(np.mean(detected(scores, threshold))) if len(scores) else float("nan")
        ),
    }
