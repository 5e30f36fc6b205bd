"""Bright-arc results, paired McNemar (published counts), thresholds and Tier-A scoring."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from astropy.stats import binom_conf_interval
from scipy.stats import binomtest

from stronglens_assets.science.experiments.bright_arcs import (
    bin_labels,
    bright_arc_results,
    gain_sweep_rates,
    paired_mcnemar,
)
from stronglens_assets.science.experiments.scoring import (
    real_lens_label,
    real_lens_scoring,
    threshold_specs,
)
from stronglens_assets.science.stats.thresholds import ThresholdSpec
from stronglens_assets_tests.science.reporting.published import PUBLISHED_DIR


def _paired(b: int, c: int, both: int, neither: int) -> tuple[np.ndarray, np.ndarray]:
    base = np.r_[np.zeros(b), np.ones(c), np.ones(both), np.zeros(neither)].astype(bool)
    pois = np.r_[np.ones(b), np.zeros(c), np.ones(both), np.zeros(neither)].astype(bool)
    return base, pois


def test_paired_mcnemar_reproduces_the_published_bins_and_pools() -> None:
    published = json.loads((PUBLISHED_DIR / "poisson_diagnostics_mcnemar_results.json").read_text())
    labels = list(published["per_bin"])
    base, pois, index = [], [], []
    for i, label in enumerate(labels):
        e = published["per_bin"][label]
        x, y = _paired(e["gained_b"], e["lost_c"], e["both_detected"], e["both_undetected"])
        base.append(x)
        pois.append(y)
        index.append(np.full(len(x), i))
    got = paired_mcnemar(
        labels,
        np.concatenate(index),
        np.concatenate(base),
        np.concatenate(pois),
        {"20_23": ["20-21", "21-22", "22-23"], "all": labels},
    )
    for label in labels:
        mine, theirs = got["per_bin"][label], published["per_bin"][label]
        for key in ("gained_b", "lost_c", "both_detected", "both_undetected", "n_paired"):
            assert mine[key] == theirs[key]
        assert mine["mcnemar_p_exact"] == pytest.approx(theirs["mcnemar_p_exact"], rel=1e-9)
        assert mine["mcnemar_p_chi2"] == pytest.approx(theirs["mcnemar_p_chi2"], rel=1e-3)
        assert mine["baseline_det_rate"] == pytest.approx(theirs["baseline_det_rate"])
    pooled = got["aggregate_20_23"]
    assert (pooled["total_gained"], pooled["total_lost"]) == (73, 28)
    assert pooled["mcnemar_p_chi2"] == pytest.approx(1.1968e-5, rel=1e-3)
    reference = binomtest(73, 101, 0.5).pvalue
    assert pooled["mcnemar_p_exact"] == pytest.approx(reference, rel=1e-9)


def test_paired_mcnemar_rejects_unpaired_inputs_and_unknown_pools() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        paired_mcnemar(["18-19"], np.zeros(3, int), np.zeros(3, bool), np.zeros(2, bool), {})
    with pytest.raises(ValueError, match="not magnitude bins"):
        paired_mcnemar(
            ["18-19"], np.zeros(2, int), np.zeros(2, bool), np.zeros(2, bool), {"x": ["9-10"]}
        )


def test_bright_arc_results_rates_medians_and_shape() -> None:
    labels = bin_labels([18.0, 19.0, 20.0])
    assert labels == ["18-19", "19-20"]
    scores = np.array([0.9, 0.4, 0.1, 0.2, 0.6, 0.05])
    index = np.array([0, 0, 0, 1, 1, 1])
    out = bright_arc_results(
        labels=labels,
        bin_index=index,
        scores=scores,
        arc_snr=np.array([10.0, 20, 30, 1, 2, 3]),
        host_scores=np.array([0.5, 0, 0, 0, 0, 0]),
        n_failed=2,
        header={"variant": "baseline"},
    )
    assert out["n_total_injections"] == 8 and out["n_scored"] == 6
    first = out["results_by_bin"]["18-19"]
    assert first["detection_rate_p03"] == pytest.approx(2 / 3)
    assert first["detection_rate_p05"] == pytest.approx(1 / 3)
    assert first["median_score"] == pytest.approx(0.4) and first["median_arc_snr"] == 20
    assert first["host_only_rate_p03"] == pytest.approx(1 / 3)


def test_threshold_specs_and_real_lens_labels() -> None:
    derived = ThresholdSpec("FPR=1e-3", 0.8058655117092153, 1e-3, 50000)
    specs = threshold_specs([0.5, 0.3], [derived])
    assert [s.label for s in specs] == ["p>0.3", "p>0.5", "FPR=1e-3"]
    assert real_lens_label(specs[0]) == "p>0.3"
    assert real_lens_label(derived) == "p>0.805866 (FPR-derived)"


def test_real_lens_scoring_recall_and_wilson_against_astropy() -> None:
    lens = np.r_[np.full(100, 0.95), np.full(12, 0.1)]
    neg = np.r_[np.full(13, 0.4), np.zeros(2987)]
    out = real_lens_scoring(
        lens,
        n_errors=0,
        negative_scores=neg,
        n_negative_errors=0,
        thresholds=[ThresholdSpec("p>0.3", 0.3)],
    )
    entry = out["recall_by_tier"]["tier_A"]["p>0.3"]
    assert entry["n_detected"] == 100 and entry["recall"] == pytest.approx(100 / 112)
    np.testing.assert_allclose(
        entry["wilson_95"],
        binom_conf_interval(100, 112, confidence_level=0.95, interval="wilson"),
        rtol=1e-9,
    )
    # the published file's ci_95 for 100/112 (Jeffreys): [0.8256760628820957, 0.940077919...]
    published = json.loads(
        (PUBLISHED_DIR / "tier_a_scoring_real_lens_scoring_results.json").read_text()
    )
    expected = published["recall_by_tier"]["tier_A"]["p>0.3"]["ci_95"]
    np.testing.assert_allclose(entry["ci_95"], expected, rtol=1e-9)
    # FPR 0.43% of 3,000 negatives
    assert out["negatives"]["fpr_at_thresholds"]["p>0.3"] == pytest.approx(13 / 3000)


def test_gain_sweep_rates_count_detections_and_discordant_pairs():
    """Constructed paired design: 2 bins x 4 slots; the noisy run gains one detection in
    bin 0 and loses one in bin 1 (b = 1, c = 1), and its p > 0.5 rates are counted apart."""
    labels = ["18-19", "19-20"]
    base = pd.DataFrame(
        {
            "bin_index": [0, 0, 0, 0, 1, 1, 1, 1],
            "slot": [0, 1, 2, 3, 0, 1, 2, 3],
            "mag_bin": ["18-19"] * 4 + ["19-20"] * 4,
            "score": [0.9, 0.1, 0.1, 0.1, 0.9, 0.9, 0.1, 0.1],
        }
    )
    noisy = base.assign(score=[0.9, 0.4, 0.1, 0.1, 0.9, 0.2, 0.1, 0.1])
    rates = gain_sweep_rates(labels, base, noisy)
    assert rates["rate_p03_by_bin"] == {"18-19": 0.5, "19-20": 0.25}
    assert rates["rate_p05_by_bin"] == {"18-19": 0.25, "19-20": 0.25}
    assert rates["rate_p03"] == 3 / 8 and rates["rate_p05"] == 2 / 8
    pooled = rates["pooled_vs_baseline"]
    assert (pooled["total_gained"], pooled["total_lost"]) == (1, 1)
    assert pooled["mcnemar_p_exact"] == 1.0
