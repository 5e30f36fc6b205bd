"""Calibration metrics against hand-computed cases and torchmetrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stronglens_assets.science.stats.calibration import (
    calibration_errors,
    precision_at,
    prevalence_weights,
    quantile_bins,
    reliability_bins,
    stratum_summary,
    weighted_calibration_errors,
)


def test_perfectly_calibrated_bins():
    scores = [0.25] * 4 + [0.75] * 4
    labels = [1, 0, 0, 0, 1, 1, 1, 0]  # 1/4 lenses at p = 0.25, 3/4 at p = 0.75
    assert calibration_errors(scores, labels, 10) == pytest.approx((0.0, 0.0), abs=1e-6)


def test_maximally_miscalibrated():
    assert calibration_errors([1.0, 1.0, 0.0, 0.0], [0, 0, 1, 1], 15) == pytest.approx(
        (1.0, 1.0), abs=1e-6
    )


def test_one_populated_bin():
    ece, mce = calibration_errors([0.7] * 10, [1, 1, 1] + [0] * 7, 15)
    assert ece == pytest.approx(0.4, abs=1e-6) and mce == pytest.approx(0.4, abs=1e-6)


def test_ece_weights_bins_and_mce_takes_the_worst():
    scores = [0.1, 0.1] + [0.9] * 8
    labels = [1, 0] + [1] * 8
    # bin of 0.1: gap |0.5 - 0.1| = 0.4, weight 0.2; bin of 0.9: gap 0.1, weight 0.8
    ece, mce = calibration_errors(scores, labels, 10)
    assert ece == pytest.approx(0.2 * 0.4 + 0.8 * 0.1, abs=1e-6)
    assert mce == pytest.approx(0.4, abs=1e-6)
    bins = reliability_bins(scores, labels, 10)
    populated = bins[bins["n"] > 0]
    assert populated["n"].tolist() == [2, 8]
    assert populated["gap"].to_numpy() == pytest.approx([0.4, 0.1])


def test_reliability_bins_reproduce_torchmetrics_ece():
    rng = np.random.default_rng(0)
    scores = rng.uniform(0, 1, 2000)
    labels = (rng.uniform(0, 1, 2000) < scores**1.5).astype(int)
    bins = reliability_bins(scores, labels, 15)
    populated = bins[bins["n"] > 0]
    ece = float((populated["n"] / populated["n"].sum() * populated["gap"]).sum())
    assert ece == pytest.approx(calibration_errors(scores, labels, 15)[0], abs=1e-5)


def test_quantile_bins_cover_values_and_unknowns():
    labels, names = quantile_bins(np.array([1.0, 2.0, 3.0, 4.0, np.nan, 5.0, 6.0]), 3)
    assert labels[4] == "unknown"
    assert set(labels) - {"unknown"} <= set(names) and len(names) == 3


def test_calibration_strata_are_ordered_by_bin_edges() -> None:
    from stronglens_assets.assets.evaluation import STRATUM_BANDS, calibration_by_stratum

    n = 40
    rng = np.random.default_rng(3)
    table = pd.DataFrame(
        {
            "score": rng.uniform(size=n),
            "label": np.tile([0, 1], n // 2),
            "tier": np.tile(["N1", "A", "B", "N2"], n // 4),
            "pool_class": np.tile(["N1", "lens"], n // 2),
            "type": [None] * 4 + ["DEV", "REX"] * ((n - 4) // 2),
        }
    )
    for band in STRATUM_BANDS:
        # depths spanning 797 .. 1250: string order would put "[1.25e+03" first
        table[f"psfsize_{band}"] = np.linspace(1.0, 2.0, n)
        table[f"psfdepth_{band}"] = np.r_[np.linspace(797.0, 1250.0, n - 1), np.nan]
    strata = calibration_by_stratum(table, n_bins=5, threshold=0.5, quantile_bins_n=4)
    depth = list(strata["psfdepth_r"])
    lows = [float(name.strip("[").split(",")[0]) for name in depth[:-1]]
    assert lows == sorted(lows) and lows[0] == 797.0
    assert depth[-1] == "unknown" and strata["psfdepth_r"]["unknown"]["n"] == 1
    assert sum(s["n"] for s in strata["psfdepth_r"].values()) == n
    assert list(strata["tier"]) == ["A", "B", "N1", "N2"]
    assert "unknown" in strata["type"] and strata["type"]["unknown"]["n"] == 4


def test_weighted_ece_with_integer_weights_is_torchmetrics_on_repeated_rows():
    rng = np.random.default_rng(3)
    scores = rng.uniform(0, 1, 300)
    labels = (rng.uniform(0, 1, 300) < scores).astype(int)
    weights = rng.integers(1, 5, 300)
    repeated = calibration_errors(np.repeat(scores, weights), np.repeat(labels, weights), 15)
    got = weighted_calibration_errors(scores, labels, 15, weights)
    assert got == pytest.approx(repeated, abs=1e-5)
    assert weighted_calibration_errors(scores, labels, 15, np.ones(300)) == pytest.approx(
        calibration_errors(scores, labels, 15), abs=1e-5
    )


def test_prevalence_weights_move_the_lens_fraction():
    labels = np.array([1] * 20 + [0] * 80)
    weights = prevalence_weights(labels, 0.01)
    assert weights.sum() == pytest.approx(100)
    assert weights[labels == 1].sum() / weights.sum() == pytest.approx(0.01)
    with pytest.raises(ValueError, match="lenses and non-lenses"):
        prevalence_weights(np.ones(5), 0.01)
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        prevalence_weights(labels, 1.0)


def test_precision_at_sample_and_deployment_prevalence():
    # 10 lenses (8 above 0.5), 90 non-lenses (9 above): TPR 0.8, FPR 0.1
    scores = np.array([0.9] * 8 + [0.1] * 2 + [0.6] * 9 + [0.2] * 81)
    labels = np.array([1] * 10 + [0] * 90)
    assert precision_at(scores, labels, 0.5) == pytest.approx(8 / 17)
    # at pi = 0.01: 0.8 * 0.01 / (0.8 * 0.01 + 0.1 * 0.99)
    assert precision_at(scores, labels, 0.5, 0.01) == pytest.approx(0.008 / (0.008 + 0.099))
    assert precision_at(scores, labels, 0.95) is None
    # p > t is strict: a score at the threshold is not a detection
    assert precision_at(np.array([0.5, 0.5]), np.array([1, 0]), 0.5) is None


def test_one_class_stratum_is_not_reported_as_calibration():
    summary = stratum_summary(np.array([0.2, 0.7]), np.array([1, 1]), 10, 0.5)
    assert summary["ece"] is None and summary["mce"] is None
    assert summary["calibration"] == "not reported: one class only"
    assert summary["n"] == 2 and summary["fraction_above_threshold"] == 0.5
    both = stratum_summary(np.array([0.2, 0.7]), np.array([0, 1]), 10, 0.5)
    assert both["calibration"] == "reported" and both["ece"] == pytest.approx(0.25, abs=1e-6)
