"""ROC AUC and its paired bootstrap interval (thin over scikit-learn).

AUC: ``sklearn.metrics.roc_auc_score`` of the score against the label (1 lens, 0 non-lens);
NaN when only one class is present. Bootstrap: rows resampled with replacement (seeded),
percentile interval; resamples with a single class are redrawn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from sklearn.metrics import roc_auc_score

from stronglens_assets.science.stats.intervals import DEFAULT_CONFIDENCE_LEVEL

__all__ = ["auc", "bootstrap_auc"]


def auc(labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray) -> float:
    """ROC AUC of ``scores`` for ``labels``; NaN when only one class is present."""
    labels = np.asarray(labels)
    if len(np.unique(labels)) < 2:
        return float("nan")
    return float(roc_auc_score(labels, np.asarray(scores, dtype=np.float64)))


def bootstrap_auc(
    labels: np.ndarray,
    score_sets: Mapping[str, np.ndarray],
    *,
    samples: int = 1000,
    confidence: float = DEFAULT_CONFIDENCE_LEVEL,
    seed: int = 0,
    reference: str | None = None,
) -> dict[str, dict[str, float]]:
    """AUC of each score set with a paired bootstrap percentile interval.

    All score sets are resampled with the same row indices; each entry has ``auc``,
    ``n_bootstrap`` (valid resamples), ``mean`` and ``std`` of the resampled AUCs and the
    interval ``ci_low``/``ci_high``. With ``reference``, each other
    set also gets ``delta`` = AUC(reference) - AUC(set) and its interval.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    n = len(labels)
    draws: dict[str, list[float]] = {name: [] for name in score_sets}
    attempts = 0
    while len(next(iter(draws.values()))) < samples and attempts < 20 * samples:
        attempts += 1
        rows = rng.integers(0, n, n)
        if len(np.unique(labels[rows])) < 2:
            continue
        for name, scores in score_sets.items():
            draws[name].append(roc_auc_score(labels[rows], np.asarray(scores)[rows]))
    tail = (1.0 - confidence) / 2.0 * 100.0
    out: dict[str, dict[str, float]] = {}
    for name, scores in score_sets.items():
        values = np.asarray(draws[name])
        entry = {"auc": auc(labels, scores), "n_bootstrap": len(values)}
        if len(values):
            entry["mean"], entry["std"] = float(values.mean()), float(values.std())
            entry["ci_low"], entry["ci_high"] = (
                float(v) for v in np.percentile(values, [tail, 100 - tail])
            )
        if reference is not None and name != reference and len(values):
            delta = np.asarray(draws[reference]) - values
            entry["delta_vs_" + reference] = auc(labels, score_sets[reference]) - entry["auc"]
            low, high = np.percentile(delta, [tail, 100 - tail])
            entry["delta_ci_low"], entry["delta_ci_high"] = float(low), float(high)
        out[name] = entry
    return out
