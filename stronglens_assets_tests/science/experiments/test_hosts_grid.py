"""Hosts (depth, binning, selection) and the grid table against analytic values, scipy and
the published selection function."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from astropy.stats import binom_conf_interval
from scipy.stats import beta

from stronglens_assets.science.experiments.grid import (
    grid_cells,
    magnitude_bins,
    marginal_rates,
    selection_function_table,
    threshold_type,
)
from stronglens_assets.science.experiments.hosts import (
    HostError,
    axis_bins,
    depth_5sig,
    host_table,
)
from stronglens_assets.science.stats.thresholds import ThresholdSpec
from stronglens_assets_tests.science.reporting.published import PUBLISHED_DIR

PSF = [0.9, 1.05, 1.2, 1.35, 1.5, 1.65, 1.8]
DEPTH = [22.5, 23.0, 23.5, 24.0, 24.5]


def test_depth_5sig_is_the_magnitude_of_five_sigma() -> None:
    # psfdepth = 1 / sigma^2: sigma = 0.2 nmgy -> 5 sigma = 1 nmgy = 22.5 mag; sigma 0.02 -> 25
    got = depth_5sig(np.array([25.0, 2500.0, 0.0, -1.0, np.nan]))
    np.testing.assert_allclose(got[:2], [22.5, 25.0], rtol=0, atol=1e-12)
    assert np.isnan(got[2:]).all()


def test_axis_bins_are_centred_with_half_step_edges() -> None:
    values = np.array([0.824, 0.826, 0.9, 0.974, 0.976, 1.874, 1.876, 0.5, np.nan])
    assert axis_bins(values, PSF).tolist() == [-1, 0, 0, 0, 1, 6, -1, -1, -1]
    assert axis_bins(np.array([22.24, 22.26, 24.74, 24.76]), DEPTH).tolist() == [-1, 0, 4, -1]


def _negatives(psf, psfdepth) -> pd.DataFrame:
    n = len(psf)
    return pd.DataFrame(
        {
            "object_id": [f"n{i:03d}" for i in range(n)],
            "label": 0,
            "split": "val",
            "cutout_key": "k",
            "cutout_row": np.arange(n),
            "psfsize_r": psf,
            "psfdepth_r": psfdepth,
        }
    )


def test_host_table_bins_hosts_and_counts_bad_conditions() -> None:
    # depth 24.0 needs psfdepth = (5 / 10**(-0.6))**2
    ivar24 = (5 / 10 ** (-0.6)) ** 2
    negatives = _negatives([1.35, 1.5, np.nan, 0.0, 3.0], [ivar24, ivar24, ivar24, ivar24, ivar24])
    table, counts = host_table(
        negatives, psf_fwhm=PSF, depth=DEPTH, max_hosts=10, rng=np.random.default_rng(0)
    )
    assert counts == {"n_candidates": 5, "n_bad_conditions": 2, "n_hosts": 3, "n_binned": 2}
    assert table["psf_bin"].tolist() == [3, 4, -1]
    assert table["depth_bin"].tolist() == [3, 3, 3]
    np.testing.assert_allclose(table["depth_5sig"], 24.0)


def test_host_table_without_usable_conditions_names_the_columns() -> None:
    with pytest.raises(HostError, match="psfsize_r"):
        host_table(
            _negatives([np.nan, -1.0], [1.0, 1.0]),
            psf_fwhm=PSF,
            depth=DEPTH,
            max_hosts=5,
            rng=np.random.default_rng(0),
        )


def test_grid_cells_order_and_count() -> None:
    cells = grid_cells([0.5, 1.0], PSF, DEPTH)
    assert len(cells) == 2 * 7 * 5
    assert cells.iloc[0][["theta_e", "psf_fwhm", "depth_5sig"]].tolist() == [0.5, 0.9, 22.5]
    assert cells.iloc[1]["depth_5sig"] == 23.0 and cells.iloc[5]["psf_fwhm"] == 1.05


THRESHOLDS = [ThresholdSpec("p>0.3", 0.3), ThresholdSpec("FPR=1e-3", 0.8, 1e-3, 5000)]


def test_selection_function_counts_and_jeffreys_intervals() -> None:
    cells = grid_cells([1.0], [1.35], [24.0, 24.5])
    rng = np.random.default_rng(3)
    n = 40
    injections = pd.DataFrame(
        {
            "cell": 0,
            "score": rng.uniform(0, 1, n),
            "host_score": np.r_[np.full(5, 0.9), np.zeros(n - 5)],
            "source_mag": rng.uniform(23, 26, n),
            "lensed_mag": rng.uniform(19, 26, n),
            "arc_snr": rng.uniform(0, 10, n),
        }
    )
    table = selection_function_table(
        cells,
        injections,
        {0: 2},
        THRESHOLDS,
        source_mag_bins=[23, 24, 25, 26],
        lensed_mag_bins=[18, 20, 22, 24, 27],
        sufficient_min=10,
    )
    assert len(table) == 2 * 2 * 8
    row = table[(table["source_mag_bin"] == "all") & (table["threshold"] == 0.3)].iloc[0]
    k = int((injections["score"] > 0.3).sum())
    assert (row["n_injections"], row["n_detected"], row["n_failed"]) == (n, k, 2)
    assert row["ci68_lo"] == pytest.approx(beta.ppf(0.16, k + 0.5, n - k + 0.5))
    assert row["ci95_hi"] == pytest.approx(beta.ppf(0.975, k + 0.5, n - k + 0.5))
    assert row["n_host_detected"] == 5 and row["host_only_rate"] == pytest.approx(5 / n)
    fpr_row = table[(table["threshold_type"] == "FPR=1.0e-03")].iloc[0]
    assert fpr_row["fpr_target"] == 1e-3
    bins = table[
        (table["threshold"] == 0.3) & table["source_mag_bin"].isin(["23-24", "24-25", "25-26"])
    ]
    assert bins[bins["theta_e"] == 1.0]["n_injections"].sum() == n
    mag = injections["lensed_mag"]
    lensed = table[(table["threshold"] == 0.3) & (table["source_mag_bin"] == "lensed_20-22")]
    assert lensed.iloc[0]["n_injections"] == int(((mag >= 20) & (mag < 22)).sum())
    empty = table[table["depth_5sig"] == 24.5]
    assert (empty["n_injections"] == 0).all() and empty["completeness"].isna().all()
    assert not empty["sufficient"].any()


def test_magnitude_bins_and_threshold_type_spelling() -> None:
    labels = [b[0] for b in magnitude_bins([23, 24, 25, 26], [18, 20, 22, 24, 27])]
    assert labels == [
        "all",
        "23-24",
        "24-25",
        "25-26",
        "lensed_18-20",
        "lensed_20-22",
        "lensed_22-24",
        "lensed_24-27",
    ]
    assert threshold_type(ThresholdSpec("FPR=1e-4", 0.99, 1e-4)) == "FPR=1.0e-04"
    assert threshold_type(ThresholdSpec("p>0.5", 0.5)) == "fixed"


def test_marginal_rates_reproduce_the_published_completeness() -> None:
    table = pd.read_csv(PUBLISHED_DIR / "grid_no_poisson_selection_function.csv")
    specs = [
        ThresholdSpec("p>0.3", 0.3),
        ThresholdSpec("FPR=1e-3", 0.8058655117092153, 1e-3),
    ]
    rates = marginal_rates(table, specs)
    assert (rates["p>0.3"]["k"], rates["p>0.3"]["n"]) == (5697, 110000)
    lo, hi = rates["p>0.3"]["wilson95"]
    assert [round(100 * lo, 2), round(100 * hi, 2)] == [5.05, 5.31]
    expected = binom_conf_interval(5697, 110000, confidence_level=0.95, interval="wilson")
    np.testing.assert_allclose([lo, hi], expected, rtol=1e-9)
    assert rates["FPR=1e-3"]["rate"] == pytest.approx(0.0289, abs=5e-5)
    by_theta = marginal_rates(table, specs[:1], "theta_e")["p>0.3"]
    published = [0.22, 0.33, 1.53, 3.39, 5.59, 6.52, 7.99, 8.02, 8.33, 7.90, 7.15]
    assert [round(100 * r["rate"], 2) for r in by_theta.values()] == published
