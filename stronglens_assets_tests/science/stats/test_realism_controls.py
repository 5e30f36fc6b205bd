"""Realism-control statistics on constructed embeddings (separable / identical sets)."""

from __future__ import annotations

import numpy as np
import pytest

from stronglens_assets.science.stats.realism_controls import (
    detection_ratio,
    paired_probe_control,
)


def test_separable_twins_lie_far_above_the_null() -> None:
    """Twins shifted by 6 sigma along one axis: AUC ~ 1, smallest possible permutation p."""
    rng = np.random.default_rng(0)
    originals = rng.normal(size=(60, 6))
    twins = originals + rng.normal(scale=0.3, size=originals.shape)
    twins[:, 2] += 6.0
    out = paired_probe_control(originals, twins, n_permutations=40, n_bootstrap=20, n_folds=3)
    assert out["probe_auc"] > 0.98
    assert out["permutation_p"] == pytest.approx(1 / 41)
    assert out["null_band"][1] < out["probe_auc"]
    assert out["auc_ci"][0] > 0.9 and out["auc_ci"][0] <= out["pooled_auc"] <= out["auc_ci"][1]
    assert out["n_pairs"] == 60


def test_identically_distributed_twins_sit_inside_the_null() -> None:
    """Twins drawn from the originals' distribution: the null band straddles 0.5 and the
    observed AUC is near 0.5 (200 pairs: the AUC's standard error is ~0.03)."""
    rng = np.random.default_rng(1)
    originals = rng.normal(size=(200, 4))
    twins = rng.normal(size=(200, 4))
    out = paired_probe_control(originals, twins, n_permutations=40, n_bootstrap=0, n_folds=3)
    lo, hi = out["null_band"]
    assert lo < 0.5 < hi
    assert abs(out["probe_auc"] - 0.5) < 0.15
    assert out["auc_ci"] is None
    assert abs(out["null_mean"] - 0.5) < 0.1


def test_bad_pairs_are_refused() -> None:
    with pytest.raises(ValueError, match="paired"):
        paired_probe_control(np.zeros((5, 3)), np.zeros((6, 3)))
    with pytest.raises(ValueError, match="at least 4"):
        paired_probe_control(np.zeros((3, 3)), np.zeros((3, 3)))


def test_detection_ratio_counts_p_above_t() -> None:
    originals = np.array([0.9] * 10 + [0.1] * 10)
    twins = np.array([0.9] * 5 + [0.3] * 5 + [0.1] * 10)  # 0.3 is not > 0.3
    out = detection_ratio(originals, twins, 0.3, "p>0.3")
    assert (out["k_original"], out["k_twin"], out["n"]) == (10, 5, 20)
    assert out["ratio"] == pytest.approx(0.5)
    assert detection_ratio(np.zeros(3), np.ones(3), 0.5, "p>0.5")["ratio"] is None
