"""The paper's figures: readable at column width, bars within [0, 100]%, distinguishable
lines, honest labels, deterministic bytes."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.text import Text

from stronglens_assets.science.reporting import paper_figures as P
from stronglens_assets.science.reporting.d06_results import D06Results, read_d06_results
from stronglens_assets_tests.paper_tools import png_size
from stronglens_assets_tests.science.reporting.published import complete_layout


@pytest.fixture(scope="module")
def complete(tmp_path_factory: pytest.TempPathFactory) -> D06Results:
    return read_d06_results(complete_layout(tmp_path_factory.mktemp("complete") / "D06"))


def _figures(results: D06Results) -> dict[str, Figure]:
    return {
        "fig1": P.completeness_figure(results.grids),
        "fig2": P.embedding_figure(results.embeddings, "pca"),
        "fig3": P.score_figure(results.embeddings.scores, embeddings=results.embeddings),
        "fig4": P.bright_arc_figure(results.bright_arcs),
        "fig5": P.comparison_figure(results.cutouts),
    }


def _texts(fig: Figure) -> list[Text]:
    fig.canvas.draw()
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]


def test_every_figure_is_readable_at_its_printed_width(complete: D06Results) -> None:
    for name, fig in _figures(complete).items():
        limit = P.TEXT_WIDTH_IN if name == "fig5" else P.COLUMN_WIDTH_IN
        assert fig.get_figwidth() <= limit + 1e-9, name
        small = [
            (t.get_text(), t.get_fontsize())
            for t in _texts(fig)
            if t.get_fontsize() < P.MIN_FONT_PT
        ]
        assert not small, (name, small)
        plt.close(fig)


def _bar_ys(fig: Figure) -> np.ndarray:
    ys = [
        segment[:, 1]
        for ax in fig.axes
        for collection in ax.collections
        if isinstance(collection, LineCollection)
        for segment in collection.get_segments()
    ]
    return np.concatenate(ys)


def test_error_bars_stay_within_0_and_100_percent(complete: D06Results) -> None:
    for fig in (P.completeness_figure(complete.grids), P.bright_arc_figure(complete.bright_arcs)):
        ys = _bar_ys(fig)
        assert len(ys) > 50 and ys.min() >= 0.0 and ys.max() <= 100.0
        for ax in fig.axes:
            assert ax.get_ylim()[1] <= 100.0
        plt.close(fig)


def test_the_six_bright_arc_variants_are_distinguishable(complete: D06Results) -> None:
    fig = P.bright_arc_figure(complete.bright_arcs)
    ax = fig.axes[0]
    lines = {c.get_label(): c.lines[0] for c in ax.containers}  # errorbar: (data line, caps, bars)
    assert sorted(lines) == sorted(complete.bright_arcs)
    for prop in ("get_color", "get_marker", "get_markerfacecolor"):
        values = [str(getattr(line, prop)()) for line in lines.values()]
        assert len(set(values)) >= (len(values) if prop != "get_markerfacecolor" else 2), values
    # matplotlib reports every custom dash pattern as "--": compare the declared styles
    dashes = [str(P.VARIANT_STYLE[name]["linestyle"]) for name in lines]
    assert len(set(dashes)) == len(dashes)
    # small horizontal offsets: no two variants share x positions
    xs = {name: tuple(np.round(line.get_xdata(), 6)) for name, line in lines.items()}
    assert len(set(xs.values())) == len(xs)
    spread = np.ptp([x[0] for x in xs.values()])
    assert 0.1 < spread < 0.5  # within the 1-mag bin
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == list(complete.bright_arcs)
    plt.close(fig)


def test_completeness_figure_shows_the_published_values(complete: D06Results) -> None:
    fig = P.completeness_figure(complete.grids)
    top, bottom = fig.axes
    theta = top.get_lines()[0]
    assert np.round(theta.get_ydata(), 2).tolist() == [
        0.22,
        0.33,
        1.53,
        3.39,
        5.59,
        6.52,
        7.99,
        8.02,
        8.33,
        7.90,
        7.15,
    ]
    assert bottom.get_yscale() == "log"
    assert {t.get_text() for t in bottom.get_legend().get_texts()} == {
        "no Poisson grid",
        "Poisson grid",
    }
    plt.close(fig)


def test_embedding_map_is_labelled_with_its_method_and_mock_lenses(complete: D06Results) -> None:
    fig = P.embedding_figure(complete.embeddings, "pca")
    ax = fig.axes[0]
    assert ax.get_xlabel().startswith("PC 1 (") and "variance" in ax.get_ylabel()
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "Tier-A lenses, mock (10)" in labels and "Tier-A lenses, real (102)" in labels
    plt.close(fig)
    with pytest.raises(ValueError, match="umap' or 'pca"):
        P.embedding_projection(complete.embeddings.embeddings, "tsne")


def test_comparison_figure_says_mock_where_lenses_are_mock(complete: D06Results) -> None:
    fig = P.comparison_figure(complete.cutouts)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert any(t.startswith("mock lens: lens-0") for t in titles)
    assert any(t.startswith("real lens: lens-1") for t in titles)
    assert sum(t.startswith("injection") for t in titles) == 4
    plt.close(fig)


def test_rendering_is_deterministic(complete: D06Results) -> None:
    first = P.render(P.completeness_figure(complete.grids))
    second = P.render(P.completeness_figure(complete.grids))
    assert first == second
    pdf, png = first
    assert pdf.startswith(b"%PDF") and b"CreationDate" not in pdf
    width, _ = png_size(png)
    assert width == round(P.COLUMN_WIDTH_IN * 300)
    assert P.render(P.bright_arc_figure(complete.bright_arcs)) == P.render(
        P.bright_arc_figure(complete.bright_arcs)
    )


@pytest.mark.slow
def test_umap_map_is_labelled_and_reproducible(complete: D06Results) -> None:
    pytest.importorskip("umap")
    subset = {k: v[:60] for k, v in complete.embeddings.embeddings.items()}
    first, axis = P.embedding_projection(subset, "umap", seed=1)
    second, _ = P.embedding_projection(subset, "umap", seed=1)
    assert axis == "UMAP"
    for name in subset:
        assert first[name].shape == (60, 2)
        np.testing.assert_array_equal(first[name], second[name])
    fig = P.embedding_figure(complete.embeddings, "umap")
    assert fig.axes[0].get_xlabel() == "UMAP 1"
    plt.close(fig)


def test_no_figure_without_its_input() -> None:
    with pytest.raises(ValueError, match="at least one completeness grid"):
        P.completeness_figure({})
    with pytest.raises(ValueError, match="at least one bright-arc variant"):
        P.bright_arc_figure({})


def test_column_figures_print_at_natural_size_in_the_paper(tmp_path: Path) -> None:
    from stronglens_assets.science.reporting.paper_outputs import _figure_tex

    assert "\\includegraphics{figures/fig1.pdf}" in _figure_tex("fig1", "c", wide=False)
    assert "width=\\textwidth" in _figure_tex("fig5", "c", wide=True)
