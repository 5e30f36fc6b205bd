"""Metrics against hand-computed cases and analytic formulas."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from stronglens_assets.science.stats.metrics import (
    auc,
    bootstrap_auc,
    calibration_errors,
    quantile_bins,
    recall_at,
    reliability_bins,
    spectroscopic_recall,
    wilson_interval,
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


def test_auc_hand_computed():
    # pairs (pos, neg): (0.35 > 0.1), (0.35 < 0.4), (0.8 > 0.1), (0.8 > 0.4) -> 3/4
    assert auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert math.isnan(auc([1, 1], [0.2, 0.3]))


def _wilson(k: int, n: int, confidence: float) -> tuple[float, float]:
    z = norm.ppf(0.5 + confidence / 2)
    centre = (k + z * z / 2) / (n + z * z)
    half = z / (n + z * z) * math.sqrt(k * (n - k) / n + z * z / 4)
    return centre - half, centre + half


@pytest.mark.parametrize(("k", "n"), [(29, 48), (0, 5), (5, 5), (1, 3)])
def test_wilson_interval_matches_the_formula(k, n):
    assert wilson_interval(k, n, 0.6827) == pytest.approx(_wilson(k, n, 0.6827), abs=1e-9)


def test_recall_on_a_constructed_table():
    result = recall_at([0.9, 0.5, 0.49, 0.1, 0.7], threshold=0.5)
    assert (result["n"], result["k"], result["recall"]) == (5, 3, 0.6)
    assert (result["ci_low"], result["ci_high"]) == pytest.approx(_wilson(3, 5, 0.6827))
    assert recall_at([], 0.5)["recall"] is None


def test_spectroscopic_recall_matches_positions():
    arcsec = 1 / 3600
    scores = pd.DataFrame(
        {
            "object_id": ["a", "b", "c", "d", "e", "f"],
            "ra": [10.0, 20.0, 30.0, 40.0, 50.0, 60.0],
            "dec": [0.0, 1.0, -1.0, 2.0, 3.0, 4.0],
            "tier": ["A", "A", "A", "A", "B", "N1"],
            "label": [1, 1, 1, 1, 1, 0],
            "score": [0.9, 0.2, 0.6, 0.95, 0.99, 0.99],
        }
    )
    vac = pd.DataFrame(
        {
            # a, b, c within 0.5"; d at 2" (outside 1"); e (tier B) and f (non-lens) present
            "TARGET_RA": [10.0, 20.0 + 0.5 * arcsec, 30.0, 40.0, 50.0, 60.0],
            "TARGET_DEC": [0.0, 1.0, -1.0 + 0.3 * arcsec, 2.0 + 2 * arcsec, 3.0, 4.0],
        }
    )
    result = spectroscopic_recall(scores, vac, radius_arcsec=1.0, threshold=0.5)
    assert result["object_ids"] == ["a", "b", "c"]
    assert (result["n"], result["k"], result["n_tier"]) == (3, 2, 4)
    assert result["recall"] == pytest.approx(2 / 3)


def test_bootstrap_auc_intervals():
    labels = np.array([0] * 20 + [1] * 20)
    perfect = np.r_[np.zeros(20), np.ones(20)]
    constant = np.full(40, 0.5)
    out = bootstrap_auc(
        labels, {"full": perfect, "flat": constant}, samples=50, seed=1, reference="full"
    )
    assert out["full"]["auc"] == 1.0 and out["full"]["ci_low"] == 1.0
    assert out["flat"]["auc"] == 0.5 and out["flat"]["ci_high"] == 0.5
    assert out["flat"]["delta_vs_full"] == 0.5
    assert out["flat"]["n_bootstrap"] == 50


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
