"""Tests of stronglens_assets.science.tables (LaTeX text from hand-made results)."""

from __future__ import annotations

import pytest

from stronglens_assets.science import tables as T


def test_latex_escape():
    assert T.latex_escape("no_poisson 5% & $x#{y}") == r"no\_poisson 5\% \& \$x\#\{y\}"
    assert T.latex_escape("a\\b~^") == r"a\textbackslash{}b\textasciitilde{}\textasciicircum{}"


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
