"""Tests of stronglens_assets.science.tables (LaTeX text from hand-made results)."""

from __future__ import annotations

import pandas as pd
import pytest

from stronglens_assets.science import tables as T


def test_latex_escape():
    assert T.latex_escape("no_poisson 5% & $x#{y}") == r"no\_poisson 5\% \& \$x\#\{y\}"
    assert T.latex_escape("a\\b~^") == r"a\textbackslash{}b\textasciitilde{}\textasciicircum{}"


def test_completeness_summary_numbers():
    rows = pd.DataFrame(
        {
            "grid": ["poisson", "no_poisson"],
            "threshold": [0.3, 0.3],
            "k": [4174, 5697],
            "n": [110_000, 110_000],
        }
    )
    text = T.completeness_summary_table(rows)
    assert text.startswith(r"\begin{table}") and text.rstrip().endswith(r"\end{table}")
    body = [line for line in text.splitlines() if line.endswith(r"\\") and "$p >" in line]
    # sorted by grid; 5697/110000 = 5.18%, Wilson 68% half-width sqrt(p(1-p)/n) ~ 0.067%
    assert body[0].startswith(r"no\_poisson & $p > 0.3$ & 5,697 & 110,000 & 5.18 [5.11, 5.25]")
    assert body[1].startswith(r"poisson & $p > 0.3$ & 4,174 & 110,000 & 3.79 [3.74, 3.85]")
    assert text.count("&") == 2 * 4 + 4  # two body rows and the header, five columns each
    with pytest.raises(ValueError, match="lacks column"):
        T.completeness_summary_table(rows.drop(columns="k"))


def test_marginal_table_sums_other_axes():
    grid = pd.DataFrame(
        {"theta_e": [1.0, 1.0, 2.0, 2.0], "beta_frac": [0.1, 0.5] * 2, "k": [1, 3, 0, 10], "n": 10}
    )
    text = T.marginal_completeness_table({"no_poisson": grid, "poisson": grid.iloc[:2]})
    lines = [line for line in text.splitlines() if line.endswith(r"\\")]
    assert lines[1].startswith("1 & 20.0 [") and lines[1].count("20.0 [") == 2
    assert lines[2].startswith("2 & 50.0 [") and lines[2].endswith(r"& -- \\")


def test_bright_arc_table_wide_layout():
    rates = pd.DataFrame(
        {
            "variant": ["baseline", "baseline", "gain_1e12"],
            "threshold": [0.3, 0.5, 0.3],
            "k": [8, 4, 16],
            "n": [16, 16, 16],
        }
    )
    text = T.bright_arc_table(rates)
    assert r"variant & $n$ & $p > 0.3$ & $p > 0.5$ \\" in text
    assert r"baseline & 16 & 50.0 [" in text
    assert r"gain\_1e12 & 16 & 100.0 [" in text and text.rstrip().count("--") >= 1


def test_linear_probe_table():
    rows = [
        T.ProbeRow("Tier-A vs injections", "random", 0.997, 0.003, 5, 12.5),
        T.ProbeRow("Tier-A vs Tier-B", "matched", 0.778, 0.062, 5, None),
    ]
    text = T.linear_probe_table(rows)
    assert r"Tier-A vs injections & random & $0.997 \pm 0.003$ & 5 & 12.5 \\" in text
    assert r"Tier-A vs Tier-B & matched & $0.778 \pm 0.062$ & 5 & -- \\" in text
    with pytest.raises(ValueError):
        T.linear_probe_table([])


@pytest.mark.parametrize(
    "by_stratum",
    [
        {"tier": {"A": {"n": 40, "ece": 0.01, "mce": 0.05}, "N1": {"n": 900, "ece": 0.002}}},
        [
            {"family": "tier", "stratum": "A", "n": 40, "ece": 0.01, "mce": 0.05},
            {"family": "tier", "stratum": "N1", "n": 900, "ece": 0.002},
        ],
        {
            "tier": [
                {"stratum": "A", "n": 40, "ece": 0.01, "mce": 0.05},
                {"value": "N1", "n": 900, "ece": 0.002},
            ]
        },
    ],
)
def test_calibration_table_accepts_stratum_layouts(by_stratum):
    report = {
        "ece": 0.0027,
        "mce": 0.0156,
        "n_bins": 15,
        "convention": "binary: p(lens) vs label",
        "n": 1000,
        "by_stratum": by_stratum,
    }
    text = T.calibration_table(report, model="paperIV_bottlenecked_resnet")
    assert r"all & -- & 1,000 & 0.0027 & 0.0156 \\" in text
    assert r"tier & A & 40 & 0.0100 & 0.0500 \\" in text
    assert r"tier & N1 & 900 & 0.0020 & -- \\" in text
    assert "15 equal-width bins" in text and r"paperIV\_bottlenecked\_resnet" in text


def test_calibration_table_rejects_incomplete_reports():
    with pytest.raises(ValueError, match="lacks key"):
        T.calibration_table({"ece": 0.1})
    with pytest.raises(ValueError, match="by_stratum"):
        T.calibration_strata("tier")


def test_probe_rows_from_the_d06_results_layout():
    auc = {"auc_mean": 0.99, "auc_std": 0.01, "n_folds": 5, "fold_aucs": [0.99] * 5}
    results = {
        "tier_a_vs_injections": {**auc, "hosts": "tier_a_matched"},
        "tier_a_vs_tier_b": {"auc_mean": 0.78, "auc_std": 0.06, "n_folds": 5},
        "frechet": {
            "tier_a_vs_injections": {"distance": 40.0, "eps": 1e-6},
            "tier_a_vs_tier_b": {"distance": 3.0},
        },
        "by_host_matching": {
            "random": {
                "tier_a_vs_injections": {**auc, "auc_mean": 0.995},
                "frechet_tier_a_vs_injections": {"distance": 50.0},
                "hosts": {"mode": "random", "distinct_hosts": 10},
            },
            "tier_a_matched": {
                "tier_a_vs_injections": {**auc, "hosts": "tier_a_matched"},
                "frechet_tier_a_vs_injections": {"distance": 40.0},
                "hosts": {"mode": "tier_a_matched"},
            },
        },
        "n_tier_a": 10,
    }
    rows = T.probe_rows(results)
    assert [(r.comparison, r.hosts, r.auc_mean, r.frechet) for r in rows] == [
        ("Tier-A vs injections", "tier_a_matched", 0.99, 40.0),
        ("Tier-A vs Tier-B", "--", 0.78, 3.0),
        ("Tier-A vs injections", "random", 0.995, 50.0),
    ]
    with pytest.raises(ValueError, match="auc_mean"):
        T.probe_rows({"n_tier_a": 3})
