"""Calibration of p(lens): ECE/MCE, reliability bins and per-stratum summaries.

Convention: torchmetrics' **binary** one (``BinaryCalibrationError``): confidence = p(lens)
(not the top-label confidence), accuracy = the label, ``n_bins`` equal-width bins on [0, 1];
``ECE = sum_b (n_b / N) |acc_b - conf_b|`` (``norm="l1"``) and ``MCE = max_b |acc_b - conf_b|``
over populated bins (``norm="max"``).
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
    "quantile_bins",
    "reliability_bins",
    "stratum_summary",
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


def reliability_bins(
    scores: Sequence[float] | np.ndarray, labels: Sequence[int] | np.ndarray, n_bins: int = 15
) -> pd.DataFrame:
    """Per equal-width bin: ``lower, upper, n, confidence`` (mean p), ``accuracy`` (lens
    fraction), ``gap`` = |accuracy - confidence|. Bin ``b`` holds ``lower <= p < upper``
    as in torchmetrics' bucketing (p = 1 goes to the last bin here)."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.clip(np.searchsorted(edges, scores, side="right") - 1, 0, n_bins - 1)
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
    stratum."""
    ece, mce = calibration_errors(scores, labels, n_bins)
    return {
        "n": len(scores),
        "n_lens": int(np.sum(labels)),
        "ece": ece,
        "mce": mce,
        "mean_score": float(np.mean(scores)) if len(scores) else float("nan"),
        "fraction_above_threshold": (
            float(np.mean(detected(scores, threshold))) if len(scores) else float("nan")
        ),
    }
