"""D06 thresholds and real-lens scoring.

* :func:`threshold_specs`: the experiments' thresholds: the fixed ones (``p>0.3`` ...) then the
  model evaluation's resolved FPR-derived ones (contract 2), in that order; detection is
  ``p > t`` (:mod:`~stronglens_assets.science.stats.detection`).
* :func:`real_lens_scoring`: the published ``real_lens_scoring_results.json`` body: Tier-A
  recall at every threshold with ``ci_95`` the equal-tailed Jeffreys 95% interval (what the
  published file holds: its [82.6, 94.0]% for 100/112 is Jeffreys, PROTOCOL.md calls it
  Wilson) and ``wilson_95`` beside it, the held-out negatives' false-
  positive rate at the same thresholds, score quantiles. Labels as published: ``p>0.3`` for a
  fixed threshold, ``p>0.805866 (FPR-derived)`` (6 decimals, trailing zeros dropped) for a
  derived one.

The paired score-change plot of the Poisson diagnostics is
:func:`~stronglens_assets.science.reporting.plots.score_change_png`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from stronglens_assets.science.stats.binomial import jeffreys_interval
from stronglens_assets.science.stats.detection import DETECTION_RULE
from stronglens_assets.science.stats.intervals import wilson_interval
from stronglens_assets.science.stats.thresholds import ThresholdSpec, fixed_label

__all__ = ["real_lens_label", "real_lens_scoring", "threshold_specs"]


def threshold_specs(
    fixed: Sequence[float], resolved: Sequence[ThresholdSpec]
) -> list[ThresholdSpec]:
    """Fixed thresholds (sorted) then the resolved FPR-derived ones."""
    specs = [ThresholdSpec(fixed_label(v), float(v)) for v in sorted(fixed)]
    labels = {s.label for s in specs}
    for spec in resolved:
        if spec.fpr_target is None or spec.label in labels:
            continue
        specs.append(spec)
        labels.add(spec.label)
    return specs


def real_lens_label(spec: ThresholdSpec) -> str:
    """The published label of a threshold in ``real_lens_scoring_results.json``."""
    if spec.fpr_target is None:
        return fixed_label(spec.value)
    number = f"{spec.value:.6f}".rstrip("0").rstrip(".") or "0"
    return f"p>{number} (FPR-derived)"


def _score_stats(scores: np.ndarray) -> dict[str, float]:
    if len(scores) == 0:
        return {}
    p5, p25, p50, p75, p95 = np.percentile(scores, [5, 25, 50, 75, 95])
    return {
        "p5": float(p5),
        "p25": float(p25),
        "median": float(p50),
        "p75": float(p75),
        "p95": float(p95),
        "mean": float(np.mean(scores)),
        "frac_above_0.9": float(np.mean(scores > 0.9)),
        "frac_below_0.1": float(np.mean(scores < 0.1)),
    }


def real_lens_scoring(
    lens_scores: np.ndarray,
    *,
    n_errors: int,
    negative_scores: np.ndarray,
    n_negative_errors: int,
    thresholds: Sequence[ThresholdSpec],
) -> dict[str, Any]:
    """The published Tier-A scoring body (module docstring); scores are p(lens)."""
    lens = np.asarray(lens_scores, dtype=np.float64)
    neg = np.asarray(negative_scores, dtype=np.float64)
    if len(lens) == 0:
        raise ValueError("no Tier-A score to evaluate")
    recall, fpr, tier = {}, {}, {}
    for spec in thresholds:
        label = real_lens_label(spec)
        k = int((lens > spec.value).sum())
        lo, hi = wilson_interval(k, len(lens), 0.95)
        j_lo, j_hi = jeffreys_interval(k, len(lens), 0.95)
        recall[label] = k / len(lens)
        tier[label] = {
            "recall": k / len(lens),
            "n_detected": k,
            "ci_95": [float(j_lo), float(j_hi)],
            "wilson_95": [float(lo), float(hi)],
        }
        if len(neg):
            fpr[label] = float((neg > spec.value).sum() / len(neg))
    return {
        "detection_rule": DETECTION_RULE,
        "real_lens": {
            "n_total": len(lens) + int(n_errors),
            "n_valid": len(lens),
            "n_errors": int(n_errors),
            "recall_at_thresholds": recall,
            "score_stats": _score_stats(lens),
        },
        "negatives": {
            "n_total": len(neg) + int(n_negative_errors),
            "n_valid": len(neg),
            "n_errors": int(n_negative_errors),
            "fpr_at_thresholds": fpr,
            "score_stats": _score_stats(neg),
        },
        "recall_by_tier": {
            "tier_A": {"n_total": len(lens) + int(n_errors), "n_valid": len(lens), **tier}
        },
    }
