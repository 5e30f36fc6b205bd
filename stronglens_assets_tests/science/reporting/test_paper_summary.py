"""The paper's numbers recomputed from the published files (PROTOCOL.md's published figures)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from astropy.stats import binom_conf_interval

from stronglens_assets.science.reporting.d06_results import read_d06_results
from stronglens_assets.science.reporting.paper_summary import (
    build_summary,
    compare_summaries,
    consistency_checks,
)
from stronglens_assets_tests.science.reporting.published import (
    complete_layout,
    published_layout,
    read_json,
    write_json,
)

LABELS = ["p>0.3", "p>0.5", "p>0.7", "FPR=1e-3", "FPR=1e-4"]


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return published_layout(tmp_path_factory.mktemp("published") / "D06")


@pytest.fixture(scope="module")
def summary(published: Path) -> dict:
    return build_summary(read_d06_results(published))


def _pct(value: float) -> float:
    return round(100 * value, 2)


def test_threshold_row_p03_is_5697_of_110000_with_the_published_wilson_interval(summary) -> None:
    row = summary["completeness"]["no_poisson"]["p>0.3"]
    assert (row["k"], row["n"]) == (5697, 110000)
    assert _pct(row["rate"]) == 5.18
    assert [_pct(v) for v in row["wilson95"]] == [5.05, 5.31]
    expected = binom_conf_interval(5697, 110000, confidence_level=0.95, interval="wilson")
    assert row["wilson95"] == pytest.approx(list(expected), rel=1e-12)


def test_completeness_by_threshold_equals_the_paper(summary) -> None:
    grid = summary["completeness"]["no_poisson"]
    assert list(grid) == LABELS
    assert [_pct(grid[label]["rate"]) for label in LABELS] == [5.18, 4.15, 3.37, 2.89, 0.47]


def test_completeness_by_theta_e_equals_the_paper(summary) -> None:
    rows = summary["completeness_by_theta_e"]["no_poisson"]
    assert list(rows) == [f"{0.5 + 0.25 * i:.2f}" for i in range(11)]
    assert all(r["n"] == 10000 for r in rows.values())
    paper = [0.22, 0.33, 1.53, 3.39, 5.59, 6.52, 7.99, 8.02, 8.33, 7.90, 7.15]
    assert [_pct(r["rate"]) for r in rows.values()] == paper


def test_completeness_by_lensed_magnitude(summary) -> None:
    rows = summary["completeness_by_lensed_mag"]["no_poisson"]
    assert list(rows) == ["18-20", "20-22", "22-24", "24-27"]
    assert round(100 * rows["20-22"]["rate"], 1) == 12.4  # PROTOCOL: lensed 20-22 mag 12.4%
    assert sum(r["n"] for r in rows.values()) == 110000
    source = summary["completeness_by_source_mag"]["no_poisson"]
    assert list(source) == ["23-24", "24-25", "25-26"]
    assert sum(r["k"] for r in source.values()) == 5697


def test_baseline_bright_arc_rates_equal_the_file(published: Path, summary) -> None:
    raw = read_json(published, "ba_baseline/bright_arc_results.json")["results_by_bin"]
    rows = summary["bright_arc"]["baseline"]
    assert list(rows) == list(raw)
    for mag_bin, entry in raw.items():
        row = rows[mag_bin]
        assert row["n"] == entry["n_scored"] == 200
        assert row["rate_p03"] == pytest.approx(entry["detection_rate_p03"], abs=1e-12)
        assert row["rate_p05"] == pytest.approx(entry["detection_rate_p05"], abs=1e-12)
        assert row["median_score"] == entry["median_score"]
        low, high = binom_conf_interval(row["k_p03"], 200, 0.95, "wilson")
        assert row["wilson95_p03"] == pytest.approx([low, high])
    paper = [0.29, 0.335, 0.385, 0.33, 0.235, 0.11, 0.02, 0.005]
    assert [r["rate_p03"] for r in rows.values()] == pytest.approx(paper, abs=1e-12)


def test_mcnemar_recomputed_from_the_paired_counts_equals_the_published_p_values(
    published: Path, summary
) -> None:
    raw = read_json(published, "poisson_diagnostics/mcnemar_results.json")
    tests = summary["mcnemar"]
    for mag_bin, entry in raw["per_bin"].items():
        row = tests[mag_bin]
        assert (row["b"], row["c"]) == (entry["gained_b"], entry["lost_c"])
        assert row["p_exact"] == pytest.approx(entry["mcnemar_p_exact"], rel=1e-9)
        assert row["p_chi2"] == pytest.approx(entry["mcnemar_p_chi2"], rel=1e-9)
        assert row["chi2"] == pytest.approx(entry["mcnemar_chi2"], abs=5e-5)  # file: 4 decimals
    for name, key in (("pooled", "aggregate_20_23"), ("pooled_all", "aggregate_all")):
        entry = raw[key]
        row = tests[name]
        assert row["bins"] == entry["bins_included"]
        assert (row["b"], row["c"]) == (entry["total_gained"], entry["total_lost"])
        assert row["p_exact"] == pytest.approx(entry["mcnemar_p_exact"], rel=1e-9)
        assert row["p_chi2"] == pytest.approx(entry["mcnemar_p_chi2"], rel=1e-9)
    # PROTOCOL: 21-22 (b 27, c 6) p 3.2e-4; 22-23 (21, 3) 2.8e-4; pooled 20-23 (73, 28) 1.2e-5
    assert f"{tests['21-22']['p_exact']:.1e}" == "3.2e-04"
    assert f"{tests['22-23']['p_exact']:.1e}" == "2.8e-04"
    assert f"{tests['pooled']['p_chi2']:.1e}" == "1.2e-05"


def test_tier_a_recall_is_100_of_112(summary) -> None:
    recall = summary["tier_a_recall"]
    assert list(recall) == ["p>0.3", "p>0.5", "FPR=1e-3", "FPR=1e-4"]
    assert (recall["p>0.3"]["k"], recall["p>0.3"]["n"]) == (100, 112)
    assert round(100 * recall["p>0.3"]["rate"], 1) == 89.3
    low, high = binom_conf_interval(100, 112, 0.95, "wilson")
    assert recall["p>0.3"]["wilson95"] == pytest.approx([low, high])
    # the file's ci_95 (PROTOCOL's "[82.6, 94.0]") is the Jeffreys interval
    assert [round(100 * v, 1) for v in recall["p>0.3"]["jeffreys95"]] == [82.6, 94.0]
    assert [round(100 * r["rate"], 1) for r in recall.values()] == [89.3, 83.9, 79.5, 48.2]
    assert recall["FPR=1e-3"]["threshold"] == pytest.approx(0.8058655117)
    assert round(100 * recall["p>0.3"]["fpr_negatives"], 2) == 0.43
    assert summary["missed_tier_a"]["n_missed"] == 12 and summary["missed_tier_a"]["lenses"] == []


def test_probe_summary(summary) -> None:
    probe = summary["probe"]
    assert round(probe["cv_auc_mean"], 3) == 0.997 and round(probe["cv_auc_std"], 3) == 0.003
    assert round(probe["max_perm_auc"], 3) == 0.690 and probe["permutation_p"] <= 0.001
    assert [round(v, 3) for v in probe["bootstrap_ci95"]] == [0.996, 1.000]
    assert probe["frechet_per_layer"]["features_7"] is None
    assert round(probe["frechet"]["real_vs_low_bf"]) == 215


def test_summary_schema(summary) -> None:
    text = json.dumps(summary, allow_nan=False)  # strict JSON: no NaN anywhere
    assert json.loads(text) == summary
    for key in (
        "completeness",
        "completeness_by_theta_e",
        "completeness_by_lensed_mag",
        "bright_arc",
        "mcnemar",
        "tier_a_recall",
        "probe",
    ):
        assert key in summary
    for section in ("completeness", "completeness_by_theta_e", "completeness_by_lensed_mag"):
        for rows in summary[section].values():
            for row in rows.values():
                assert set(row) == {"k", "n", "rate", "wilson95"}
                lo, hi = row["wilson95"]
                assert 0 <= lo <= row["rate"] <= hi <= 1
    for rows in summary["bright_arc"].values():
        for row in rows.values():
            assert {"n", "rate_p03", "rate_p05", "median_score"} <= set(row)
    for row in summary["mcnemar"].values():
        assert {"b", "c", "chi2", "p_chi2", "p_exact"} <= set(row)
    for label, row in summary["tier_a_recall"].items():
        assert label in LABELS and {"k", "n", "rate", "wilson95"} <= set(row)
    assert "completeness_deficit" not in summary  # only one grid in the published files


def test_published_numbers_recomputed_from_their_counts_agree(published: Path) -> None:
    checks = consistency_checks(read_d06_results(published))
    assert len(checks) == 26 and all(c.ok for c in checks), [c for c in checks if not c.ok]
    names = " ".join(c.name for c in checks)
    for what in ("Jeffreys", "McNemar pooled", "baseline 21-22", "Tier-A p>0.3", "permutation"):
        assert what in names


def test_a_published_number_that_disagrees_with_its_counts_is_flagged(tmp_path: Path) -> None:
    root = published_layout(tmp_path / "D06")
    data = read_json(root, "poisson_diagnostics/mcnemar_results.json")
    data["per_bin"]["22-23"]["mcnemar_p_exact"] = 0.01
    write_json(root, "poisson_diagnostics/mcnemar_results.json", data)
    failed = [c for c in consistency_checks(read_d06_results(root)) if not c.ok]
    assert [c.name.split(" (")[0] for c in failed] == ["McNemar 22-23"]


def test_both_grids_give_the_deficit_and_per_object_checks(tmp_path: Path) -> None:
    results = read_d06_results(complete_layout(tmp_path / "D06"))
    summary = build_summary(results)
    assert list(summary["completeness"]) == ["no_poisson", "poisson"]
    base = summary["completeness"]["no_poisson"]["p>0.3"]
    noisy = summary["completeness"]["poisson"]["p>0.3"]
    deficit = summary["completeness_deficit"]["p>0.3"]
    assert deficit["absolute"] == pytest.approx(base["rate"] - noisy["rate"])
    assert deficit["relative"] == pytest.approx(1 - noisy["k"] / base["k"])
    assert len(summary["bright_arc"]) == 6
    missed = summary["missed_tier_a"]["lenses"]
    assert len(missed) == 12 and missed[0]["score"] == 0.0
    assert all(m["score"] <= 0.3 for m in missed) and {"mag_r", "z_lens"} <= set(missed[0])
    checks = consistency_checks(results)
    assert all(c.ok for c in checks), [c for c in checks if not c.ok]
    assert sum("median score" in c.name for c in checks) == 4
    assert sum("per-lens" in c.name for c in checks) == 4


def test_compare_summaries_lines_up_reference_and_run(tmp_path: Path, summary) -> None:
    run = build_summary(read_d06_results(complete_layout(tmp_path / "D06")))
    rows = compare_summaries(summary, run)
    by_key = {(r.section, r.quantity): r for r in rows}
    same = by_key[("completeness", "no_poisson, p>0.3")]
    assert same.difference == 0 and same.overlap is True
    only_run = by_key[("completeness", "poisson, p>0.3")]
    assert only_run.reference is None and only_run.run is not None and only_run.overlap is None
    shifted = by_key[("bright arcs (p>0.3)", "unrestricted, 21-22")]
    assert shifted.reference is None
    assert math.isclose(by_key[("McNemar exact p", "pooled")].difference, 0.0)
    assert all(r.as_dict()["section"] for r in rows)


def test_a_grid_without_the_marginal_threshold_is_named(tmp_path: Path) -> None:
    import pandas as pd

    from stronglens_assets.science.reporting.d06_results import ResultsFormatError

    root = published_layout(tmp_path / "D06")
    csv = root / "grid_no_poisson/selection_function.csv"
    table = pd.read_csv(csv)
    table = table[table["threshold"] != 0.3]
    table.to_csv(csv, index=False)
    meta = read_json(root, "grid_no_poisson/selection_function_meta.json")
    meta["thresholds"] = meta["thresholds"][1:]
    write_json(root, "grid_no_poisson/selection_function_meta.json", meta)
    results = read_d06_results(root)
    with pytest.raises(
        ResultsFormatError, match=r"selection_function.csv: field 'threshold': no p>0.3"
    ):
        build_summary(results)
