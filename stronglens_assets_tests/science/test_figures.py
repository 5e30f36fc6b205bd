"""Tests of stronglens_assets.science.figures on hand-made D06 results."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from sklearn.decomposition import PCA

from stronglens_assets.science import figures as F
from stronglens_assets_tests.harness import wilson_formula
from stronglens_assets_tests.paper_tools import pdf_page_count, png_size


def _selection_table() -> pd.DataFrame:
    """2 theta_E x 3 source mags x 2 beta_frac cells with known counts."""
    rows = []
    for i, (theta, mag, beta) in enumerate(
        itertools.product([0.8, 1.6], [21.0, 22.5, 24.0], [0.2, 0.6])
    ):
        n = 10 + i
        k = min(n, i)
        rows.append({"theta_e": theta, "source_mag": mag, "beta_frac": beta, "n": n, "k": k})
    return pd.DataFrame(rows)


def test_completeness_grid_sums_the_other_axes():
    table = _selection_table()
    grid = F.completeness_grid(table)
    assert grid.theta_e.tolist() == [0.8, 1.6]
    assert grid.source_mag.tolist() == [21.0, 22.5, 24.0]
    # rows are magnitudes, columns theta_E; each cell sums its two beta_frac rows
    for i, mag in enumerate(grid.source_mag):
        for j, theta in enumerate(grid.theta_e):
            cell = table[(table["theta_e"] == theta) & (table["source_mag"] == mag)]
            assert grid.k[i, j] == cell["k"].sum()
            assert grid.n[i, j] == cell["n"].sum()
            assert grid.completeness[i, j] == pytest.approx(cell["k"].sum() / cell["n"].sum())
            lo, hi = wilson_formula(int(cell["k"].sum()), int(cell["n"].sum()))
            assert grid.ci_low[i, j] == pytest.approx(lo, abs=1e-4)
            assert grid.ci_high[i, j] == pytest.approx(hi, abs=1e-4)
    assert grid.overall == (int(table["k"].sum()), int(table["n"].sum()))


def test_completeness_grid_marks_missing_cells_and_rejects_bad_tables():
    table = _selection_table()
    sparse = table[~((table["theta_e"] == 1.6) & (table["source_mag"] == 24.0))]
    grid = F.completeness_grid(sparse)
    assert grid.n[2, 1] == 0 and np.isnan(grid.completeness[2, 1])
    with pytest.raises(ValueError, match="lacks column"):
        F.completeness_grid(table.drop(columns="k"))
    with pytest.raises(ValueError, match="k > n"):
        F.completeness_grid(table.assign(k=table["n"] + 1))
    with pytest.raises(ValueError, match="no rows"):
        F.completeness_grid(table.iloc[:0])


def _axis_labels(fig) -> list[str]:
    return [ax.get_xlabel() for ax in fig.axes] + [ax.get_ylabel() for ax in fig.axes]


def test_completeness_map_has_two_panels_colour_bars_units_and_renders_one_page():
    fig = F.completeness_map_figure(
        F.completeness_grid(_selection_table()), title="Figure 1", threshold=0.3
    )
    # two image panels plus one colour bar each
    assert len(fig.axes) == 4
    labels = _axis_labels(fig)
    assert any("arcsec" in label for label in labels)
    assert any("AB mag" in label for label in labels)
    assert any("completeness" in label for label in labels)  # colour bar of panel (a)
    assert any("interval width" in label for label in labels)  # colour bar of panel (b)
    # every populated cell carries its interval as text in panel (a)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert len(texts) == 6 and all("[" in t for t in texts)
    width_in, height_in = fig.get_size_inches()
    pdf, png = F.render_figure(fig, dpi=100)
    assert pdf.startswith(b"%PDF") and pdf_page_count(pdf) == 1
    assert png_size(png) == (round(width_in * 100), round(height_in * 100))


def test_render_figure_is_deterministic():
    grid = F.completeness_grid(_selection_table())
    first = F.render_figure(F.completeness_map_figure(grid, title="t", threshold=0.3), dpi=60)
    second = F.render_figure(F.completeness_map_figure(grid, title="t", threshold=0.3), dpi=60)
    assert first == second


def test_pca_projection_agrees_with_scikit_learn():
    rng = np.random.default_rng(3)
    sets = {
        "tier_a": rng.normal(0, 1, (20, 6)) + 4,
        "tier_b": rng.normal(0, 1, (30, 6)),
        "injections": rng.normal(0, 1, (25, 6)) - 4,
    }
    projected, ratio = F.pca_projection(sets)
    reference = PCA(n_components=2).fit(np.concatenate(list(sets.values())))
    expected = reference.transform(np.concatenate(list(sets.values())))
    ours = np.concatenate(list(projected.values()))
    for c in range(2):  # equal up to the sign of each component
        sign = np.sign(ours[:, c] @ expected[:, c])
        np.testing.assert_allclose(ours[:, c], sign * expected[:, c], atol=1e-8)
    np.testing.assert_allclose(ratio, reference.explained_variance_ratio_, rtol=1e-10)
    assert [len(v) for v in projected.values()] == [20, 30, 25]
    with pytest.raises(ValueError, match="different widths"):
        F.pca_projection({"a": np.zeros((3, 2)), "b": np.zeros((3, 4))})


def test_linear_probe_figure_panels():
    rng = np.random.default_rng(0)
    sets = {"tier_a": rng.normal(size=(10, 8)), "injections": rng.normal(size=(12, 8)) + 2}
    aucs = [F.ProbeAUC("Tier-A vs injections", 0.99, 0.01, 5), F.ProbeAUC("A vs B", 0.7, 0.1, 5)]
    fig = F.linear_probe_figure(sets, aucs, title="Figure 3")
    assert len(fig.axes) == 2
    scatter, bars = fig.axes
    assert len(scatter.collections) == 2  # one point set per embedding set
    assert [p.get_width() for p in bars.patches] == [0.99, 0.7]
    assert "AUC" in bars.get_xlabel() and "PC 1" in scatter.get_xlabel()
    pdf, png = F.render_figure(fig, dpi=80)
    assert pdf_page_count(pdf) == 1
    assert png_size(png) == (880, 368)


def test_bright_arc_figure_rates_and_score_histogram():
    rng = np.random.default_rng(1)
    scores = {"baseline": rng.uniform(size=50), "poisson": rng.uniform(size=40) ** 2}
    rows = [
        {"variant": v, "threshold": t, "k": int((s > t).sum()), "n": len(s)}
        for v, s in scores.items()
        for t in (0.3, 0.5, 0.9)
    ]
    histograms = {v: F.score_histogram(s) for v, s in scores.items()}
    assert histograms["baseline"][1].sum() == 50 and len(histograms["baseline"][0]) == 21
    fig = F.bright_arc_figure(pd.DataFrame(rows), histograms, title="Figure 4")
    rate_ax, hist_ax, colour_bar = fig.axes
    assert "fraction" in colour_bar.get_ylabel()
    lines = rate_ax.get_lines()
    plotted = [line for line in lines if len(line.get_xdata()) == 3]
    np.testing.assert_allclose(plotted[0].get_ydata(), [r["k"] / 50 for r in rows[:3]])
    mesh = hist_ax.collections[0].get_array()
    np.testing.assert_allclose(mesh.reshape(2, -1).sum(axis=1), [1.0, 1.0])
    pdf, _ = F.render_figure(fig, dpi=50)
    assert pdf_page_count(pdf) == 1
    # none detected and all detected: Wilson bounds touch the rate (no negative error bars)
    edge = [{"variant": "v", "threshold": t, "k": k, "n": 48} for t, k in ((0.1, 48), (0.9, 0))]
    F.render_figure(F.bright_arc_figure(pd.DataFrame(edge), {}, title="edge"), dpi=30)
    with pytest.raises(ValueError, match="lacks column"):
        F.bright_arc_figure(pd.DataFrame(rows).drop(columns="n"), histograms, title="x")
    histograms["poisson"] = F.score_histogram(scores["poisson"], n_bins=10)
    with pytest.raises(ValueError, match="different bin edges"):
        F.bright_arc_figure(pd.DataFrame(rows), histograms, title="x")
