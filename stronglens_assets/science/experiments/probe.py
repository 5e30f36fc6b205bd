"""Linear probe and Fréchet distance between sets of CNN embeddings (D06 ``linear_probe``).

The probe's groups (the paper's): Tier-A lenses of the held-out split, injections at theta_E
1.5" and source magnitude 19 with low [0.1, 0.3] and high [0.7, 1.0] beta_frac, and negatives.

* :func:`linear_probe_auc`: how linearly separable two embedding sets are: a standardised
  logistic regression (scikit-learn), ROC AUC under stratified k-fold cross-validation,
  mean and standard deviation over folds (population std, ``ddof=0``). Seeds: Tier-A vs
  low-beta_frac injections 0.997 +/- 0.003, Tier-A vs Tier-B 0.778 +/- 0.062. Injections
  share host galaxies (a few hosts carry many arcs): with ``groups`` (the host of each
  injection, the object of each lens) the folds keep a group on one side
  (``StratifiedGroupKFold``), so the probe cannot score well by recognising hosts it was
  fitted on.
* :func:`frechet_distance`: ``|mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))`` between the
  Gaussians fitted to two sets (the FID formula). Regularisation: ``eps * I`` is added to both
  covariances with ``eps = regularisation * (mean per-dimension variance of both sets
  pooled)``, so the value is scale-aware and defined when a set has fewer members than
  dimensions. The trace of the matrix square root is computed as the sum of the square roots
  of the eigenvalues of ``S1^(1/2) S2 S1^(1/2)`` (symmetric, so ``eigh`` is exact and stable).
* :func:`probe_significance`: the published permutation test and bootstrap: out-of-fold
  predictions of the k-fold probe (:func:`cross_validated_predictions`); a permutation test
  (``n_permutations`` label shuffles, each fitted and scored on one stratified
  ``1 - test_fraction`` / ``test_fraction`` split holding every class on both sides;
  ``p = (1 + #{AUC_perm >= AUC_obs}) / (1 + n_permutations)``); a percentile bootstrap of
  the AUC of the held-out predictions (:func:`~stronglens_assets.science.stats.roc.
  bootstrap_auc`, 95%).
* :func:`brightness_features`: the brightness-only baseline's two features, measured the same
  way on real and injected cutouts (their truth is unknown for real lenses): the r-band flux in
  the annulus ``|r - theta_E| <= half_width`` (arcsec) about the stamp centre after subtracting
  the median of the outer ring ``r >= outer`` (as an AB magnitude, NaN where <= 0, then
  replaced by the faintest finite value + 1), and that flux's S/N from the invvar. A logistic
  regression on these two alone, beside the CNN probe, shows how much of its AUC brightness
  explains.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import (
    StratifiedGroupKFold,
    StratifiedKFold,
    cross_val_score,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from stronglens_assets.science.core.units import nanomaggies_to_mag
from stronglens_assets.science.stats.roc import auc, bootstrap_auc


def _check_features(name: str, x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name}: expected an (n, D) array, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name}: embeddings contain NaN or infinity")
    return x


def linear_probe_auc(
    positives: np.ndarray,
    negatives: np.ndarray,
    *,
    n_folds: int = 5,
    seed: int = 0,
    C: float = 1.0,
    max_iter: int = 2000,
    positive_groups: np.ndarray | None = None,
    negative_groups: np.ndarray | None = None,
) -> dict[str, Any]:
    """Cross-validated ROC AUC of a logistic regression separating two embedding sets.

    Args:
        positives, negatives: ``(n1, D)`` and ``(n2, D)`` features (label 1 and 0).
        n_folds: folds of :class:`~sklearn.model_selection.StratifiedKFold` (shuffled with
            ``seed``); reduced to the smaller class size when that is smaller (reported).
        positive_groups, negative_groups: optional group label of every member (e.g. the
            host of each injection); given both, folds are
            :class:`~sklearn.model_selection.StratifiedGroupKFold` and never split a group,
            and ``n_folds`` is also bounded by each class's number of distinct groups.

    Returns:
        ``auc_mean``, ``auc_std`` (over folds, ddof 0), ``fold_aucs``, ``n_folds``,
        ``n_folds_requested``, ``n_positive``, ``n_negative``, ``dim``, ``classifier``.

    Raises:
        ValueError: a class has fewer than 2 members, or shapes / values are bad.
    """
    pos = _check_features("positives", positives)
    neg = _check_features("negatives", negatives)
    if pos.shape[1] != neg.shape[1]:
        raise ValueError(f"dimension mismatch: {pos.shape[1]} vs {neg.shape[1]}")
    smallest = min(len(pos), len(neg))
    if smallest < 2:
        raise ValueError(
            f"a linear probe needs >= 2 members per class; got {len(pos)} and {len(neg)}"
        )
    if n_folds < 2:
        raise ValueError(f"n_folds must be >= 2, got {n_folds}")
    folds = min(n_folds, smallest)
    x = np.concatenate([pos, neg])
    y = np.concatenate([np.ones(len(pos), np.int64), np.zeros(len(neg), np.int64)])
    classifier = _classifier(C, max_iter)
    groups = None
    if (positive_groups is None) != (negative_groups is None):
        raise ValueError("give groups for both sets or for neither")
    if positive_groups is not None and negative_groups is not None:
        pos_groups = np.asarray(positive_groups).astype(str)
        neg_groups = np.asarray(negative_groups).astype(str)
        if len(pos_groups) != len(pos) or len(neg_groups) != len(neg):
            raise ValueError("groups must have one label per embedding")
        # label groups by class so a host name shared by both sets still stays on one side
        groups = np.concatenate([np.char.add("1:", pos_groups), np.char.add("0:", neg_groups)])
        distinct = min(len(set(pos_groups)), len(set(neg_groups)))
        if distinct < 2:
            raise ValueError(f"a grouped probe needs >= 2 groups per class; got {distinct}")
        folds = min(folds, distinct)
        cv = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    else:
        cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    aucs = cross_val_score(classifier, x, y, groups=groups, cv=cv, scoring="roc_auc")
    splitter = type(cv).__name__
    return {
        "auc_mean": float(np.mean(aucs)),
        "auc_std": float(np.std(aucs)),
        "fold_aucs": [float(a) for a in aucs],
        "n_folds": int(folds),
        "n_folds_requested": int(n_folds),
        "n_positive": len(pos),
        "n_negative": len(neg),
        "dim": int(pos.shape[1]),
        "grouped": groups is not None,
        "classifier": f"StandardScaler + LogisticRegression(C={C}, L2), {splitter} "
        f"(shuffle, random_state={seed}), ROC AUC per fold; std over folds with ddof=0",
    }


def _sqrtm_psd(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def gaussian_frechet_distance(
    mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray
) -> float:
    """Fréchet (2-Wasserstein squared) distance between N(mu1, cov1) and N(mu2, cov2).

    Covariances must be symmetric positive semi-definite ``(D, D)``.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    cov1, cov2 = np.asarray(cov1, np.float64), np.asarray(cov2, np.float64)
    root1 = _sqrtm_psd(cov1)
    middle = root1 @ cov2 @ root1
    middle = 0.5 * (middle + middle.T)
    trace_sqrt = float(np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(middle), 0.0, None))))
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * trace_sqrt)
    return max(value, 0.0)


def frechet_distance(
    x1: np.ndarray, x2: np.ndarray, *, regularisation: float = 1e-6
) -> dict[str, Any]:
    """Fréchet distance between the Gaussians fitted to two embedding sets.

    Covariances are the unbiased sample covariances (``ddof=1``) plus ``eps * I`` (see the
    module docstring). Returns ``{"distance", "eps", "regularisation", "n1", "n2", "dim"}``.
    """
    a = _check_features("x1", x1)
    b = _check_features("x2", x2)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"dimension mismatch: {a.shape[1]} vs {b.shape[1]}")
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"each set needs >= 2 members; got {len(a)} and {len(b)}")
    if regularisation < 0:
        raise ValueError(f"regularisation must be >= 0, got {regularisation}")
    cov1 = np.atleast_2d(np.cov(a, rowvar=False))
    cov2 = np.atleast_2d(np.cov(b, rowvar=False))
    scale = float(np.mean(np.concatenate([np.diag(cov1), np.diag(cov2)])))
    eps = regularisation * scale
    eye = np.eye(a.shape[1])
    distance = gaussian_frechet_distance(
        a.mean(axis=0), cov1 + eps * eye, b.mean(axis=0), cov2 + eps * eye
    )
    return {
        "distance": distance,
        "eps": eps,
        "regularisation": f"eps * I added to both covariances, eps = {regularisation} x mean "
        "per-dimension variance of both sets pooled",
        "n1": len(a),
        "n2": len(b),
        "dim": int(a.shape[1]),
    }


def _classifier(C: float, max_iter: int):
    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter))


def cross_validated_predictions(
    positives: np.ndarray,
    negatives: np.ndarray,
    *,
    n_folds: int = 5,
    seed: int = 0,
    C: float = 1.0,
    max_iter: int = 2000,
) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Labels, out-of-fold p(positive) and per-fold AUCs of the stratified k-fold probe."""
    pos = _check_features("positives", positives)
    neg = _check_features("negatives", negatives)
    folds = min(n_folds, len(pos), len(neg))
    if folds < 2:
        raise ValueError(f"a linear probe needs >= 2 members per class; got {len(pos)}, {len(neg)}")
    x = np.concatenate([pos, neg])
    y = np.concatenate([np.ones(len(pos), np.int64), np.zeros(len(neg), np.int64)])
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    predictions = np.empty(len(y))
    fold_aucs = []
    for train, test in cv.split(x, y):
        model = _classifier(C, max_iter).fit(x[train], y[train])
        predictions[test] = model.predict_proba(x[test])[:, 1]
        fold_aucs.append(auc(y[test], predictions[test]))
    return y, predictions, fold_aucs


def _stratified_split(
    labels: np.ndarray, test_fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Train and test rows: per class ``round(test_fraction x n_c)`` test rows, at least one
    and at most ``n_c - 1`` (so both sides hold both classes)."""
    train, test = [], []
    for value in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == value))
        k = min(max(1, round(test_fraction * len(rows))), len(rows) - 1)
        test.append(rows[:k])
        train.append(rows[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def probe_significance(
    positives: np.ndarray,
    negatives: np.ndarray,
    *,
    n_folds: int = 5,
    n_permutations: int = 1000,
    n_bootstrap: int = 5000,
    test_fraction: float = 0.2,
    seed: int = 0,
    C: float = 1.0,
    max_iter: int = 2000,
) -> dict[str, Any]:
    """The published ``permutation_bootstrap_results.json`` body (module docstring).

    Raises:
        ValueError: a class has fewer than 2 members (no split holds it on both sides).
    """
    if min(len(positives), len(negatives)) < 2:
        raise ValueError(
            f"the permutation test needs >= 2 members per class; got {len(positives)} and "
            f"{len(negatives)}"
        )
    y, predictions, fold_aucs = cross_validated_predictions(
        positives, negatives, n_folds=n_folds, seed=seed, C=C, max_iter=max_iter
    )
    observed = float(np.mean(fold_aucs))
    x = np.concatenate([_check_features("positives", positives), negatives]).astype(np.float64)
    rng = np.random.default_rng(seed)
    permuted = []
    for _ in range(n_permutations):
        shuffled = rng.permutation(y)
        train, test = _stratified_split(shuffled, test_fraction, rng)
        model = _classifier(C, max_iter).fit(x[train], shuffled[train])
        permuted.append(auc(shuffled[test], model.predict_proba(x[test])[:, 1]))
    permuted_arr = np.asarray(permuted)
    exceeding = int((permuted_arr >= observed).sum())
    boot = bootstrap_auc(
        y, {"probe": predictions}, samples=n_bootstrap, confidence=0.95, seed=seed
    )["probe"]
    return {
        "observed_auc_mean": observed,
        "observed_auc_std": float(np.std(fold_aucs)),
        "observed_auc_folds": [float(a) for a in fold_aucs],
        "permutation_test": {
            "n_permutations": int(n_permutations),
            "p_value": (1 + exceeding) / (1 + n_permutations),
            "n_exceeding": exceeding,
            "max_perm_auc": float(permuted_arr.max()),
            "mean_perm_auc": float(permuted_arr.mean()),
        },
        "bootstrap_ci": {
            "n_bootstrap": int(n_bootstrap),
            "n_valid": int(boot["n_bootstrap"]),
            "ci_95_lower": float(boot.get("ci_low", np.nan)),
            "ci_95_upper": float(boot.get("ci_high", np.nan)),
            "mean": float(boot.get("mean", np.nan)),
            "std": float(boot.get("std", np.nan)),
        },
    }


def brightness_features(
    cutouts: np.ndarray,
    invvar: np.ndarray,
    *,
    band: int,
    theta_e: float,
    half_width: float = 0.75,
    outer: float = 5.0,
    pixel_scale: float = 0.262,
) -> np.ndarray:
    """``(N, 2)``: annulus AB magnitude and S/N of band ``band`` (module docstring)."""
    images = np.asarray(cutouts, dtype=np.float64)[:, band]
    ivar = np.asarray(invvar, dtype=np.float64)[:, band]
    size = images.shape[-1]
    centre = (np.arange(size) - (size - 1) / 2.0) * pixel_scale
    r = np.hypot(centre[None, :], centre[:, None])
    ring = np.abs(r - theta_e) <= half_width
    sky = r >= outer
    if not ring.any() or not sky.any():
        raise ValueError(f"annulus or outer ring is empty in a {size} px stamp")
    background = np.median(images[:, sky], axis=1)
    flux = (images[:, ring] - background[:, None]).sum(axis=1)
    good = np.isfinite(ivar[:, ring]) & (ivar[:, ring] > 0)
    var = np.where(good, 1.0 / np.where(good, ivar[:, ring], 1.0), 0.0).sum(axis=1)
    snr = np.where(var > 0, flux / np.sqrt(np.where(var > 0, var, 1.0)), 0.0)
    mag = nanomaggies_to_mag(flux)
    finite = np.isfinite(mag)
    if finite.any():
        mag = np.where(finite, mag, mag[finite].max() + 1.0)
    else:
        mag = np.zeros_like(flux)
    return np.stack([mag, snr], axis=1)
