"""Statistics of the realism controls (issue 20): do twins look different from their originals?

Inputs are paired sets: row ``i`` of the originals and of the twins is the same lens and host
with a different arc (:mod:`~stronglens_assets.science.lensing.twins`).

* :func:`paired_probe_control`: the D06 linear probe (:func:`~stronglens_assets.science.
  experiments.probe.cross_validated_predictions`, twins = label 1) on the CNN embeddings, with

  - a **permutation null**: under "twins and originals are exchangeable" the labels of each
    pair can be swapped; the probe AUC of ``n_permutations`` random within-pair swaps gives the
    null distribution, its central ``confidence`` interval the ``null_band`` and
    ``permutation_p = (1 + #(null >= observed)) / (1 + n_permutations)`` (one-sided);
  - a **bootstrap CI** of the pooled out-of-fold AUC (:func:`~stronglens_assets.science.stats.
    roc.bootstrap_auc`, no refits), central ``confidence`` interval.

* :func:`detection_ratio`: detection rate of the twins over that of the originals at one
  threshold, detection being p > t (:mod:`~stronglens_assets.science.stats.detection`).
* the brightness-only baseline: :func:`paired_probe_control` on the D06 probe's brightness
  features (:func:`~stronglens_assets.science.experiments.probe.brightness_features`: annulus
  magnitude and S/N) instead of the embedding.

All random draws come from ``numpy.random.default_rng(seed)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from stronglens_assets.science.experiments.probe import cross_validated_predictions
from stronglens_assets.science.stats.detection import count_detected
from stronglens_assets.science.stats.roc import auc, bootstrap_auc

__all__ = ["detection_ratio", "paired_probe_control"]


def _check_pairs(originals: np.ndarray, twins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(originals, dtype=np.float64)
    b = np.asarray(twins, dtype=np.float64)
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(
            f"originals and twins must be paired (n, D) arrays of one shape, got {a.shape} "
            f"and {b.shape}"
        )
    if len(a) < 4:
        raise ValueError(f"need at least 4 pairs, got {len(a)}")
    return a, b


def paired_probe_control(
    originals: np.ndarray,
    twins: np.ndarray,
    *,
    n_permutations: int = 200,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    n_folds: int = 5,
    seed: int = 0,
) -> dict[str, Any]:
    """Probe AUC (twins vs originals) with its permutation null band, p and bootstrap CI.

    Args:
        originals, twins: ``(n, D)`` paired features (row ``i`` of each is one pair).
        n_permutations: within-pair label swaps drawn for the null (>= 1).
        n_bootstrap: bootstrap resamples of the out-of-fold predictions for the CI (0: none).
        confidence: central probability of ``null_band`` and ``auc_ci``.
        n_folds, seed: the probe's stratified k-fold (shuffled with ``seed``); ``seed`` also
            seeds the permutations and resamples.

    Returns:
        ``probe_auc`` (mean over folds), ``probe_auc_std``, ``pooled_auc`` (AUC of the pooled
        out-of-fold predictions), ``null_band`` [lo, hi], ``null_mean``, ``permutation_p``,
        ``auc_ci`` [lo, hi] of the pooled AUC (or None), ``n_pairs``, ``n_permutations``,
        ``n_bootstrap``, ``confidence``.
    """
    a, b = _check_pairs(originals, twins)
    if n_permutations < 1 or n_bootstrap < 0 or not 0 < confidence < 1:
        raise ValueError("need n_permutations >= 1, n_bootstrap >= 0 and 0 < confidence < 1")
    n = len(a)

    def probe(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[float]]:
        return cross_validated_predictions(pos, neg, n_folds=n_folds, seed=seed)

    labels, predictions, fold_aucs = probe(b, a)
    rng = np.random.default_rng(seed)
    null = np.empty(n_permutations)
    for k in range(n_permutations):
        swap = (rng.random(n) < 0.5)[:, None]
        null[k] = np.mean(probe(np.where(swap, a, b), np.where(swap, b, a))[2])
    tail = (1.0 - confidence) / 2.0
    ci = None
    if n_bootstrap:
        boot = bootstrap_auc(
            labels, {"probe": predictions}, samples=n_bootstrap, confidence=confidence, seed=seed
        )["probe"]
        ci = [boot["ci_low"], boot["ci_high"]]
    obs = float(np.mean(fold_aucs))
    return {
        "probe_auc": obs,
        "probe_auc_std": float(np.std(fold_aucs)),
        "pooled_auc": auc(labels, predictions),
        "null_band": [float(v) for v in np.quantile(null, [tail, 1.0 - tail])],
        "null_mean": float(null.mean()),
        "permutation_p": float((1 + np.count_nonzero(null >= obs)) / (1 + n_permutations)),
        "auc_ci": ci,
        "n_pairs": n,
        "n_permutations": int(n_permutations),
        "n_bootstrap": int(n_bootstrap),
        "confidence": float(confidence),
    }


def detection_ratio(
    original_scores: np.ndarray, twin_scores: np.ndarray, threshold: float, label: str
) -> dict[str, Any]:
    """Detection rate of twins / detection rate of originals at p > ``threshold``.

    Returns ``label``, ``threshold``, ``n``, ``k_original``, ``k_twin`` and ``ratio`` (None
    when no original is detected).
    """
    orig = np.asarray(original_scores, dtype=np.float64)
    twin = np.asarray(twin_scores, dtype=np.float64)
    if orig.shape != twin.shape or orig.ndim != 1:
        raise ValueError(f"scores must be paired (n,) arrays, got {orig.shape} and {twin.shape}")
    k_orig = count_detected(orig, threshold)
    k_twin = count_detected(twin, threshold)
    return {
        "label": label,
        "threshold": float(threshold),
        "n": int(orig.size),
        "k_original": int(k_orig),
        "k_twin": int(k_twin),
        "ratio": float(k_twin / k_orig) if k_orig else None,
    }
