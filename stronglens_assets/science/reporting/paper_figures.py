"""The paper's figures from a :class:`~.d06_results.D06Results` (matplotlib, Agg, no Dagster).

1. :func:`completeness_figure`: completeness against theta_E (no-Poisson grid, all source
   magnitudes) and against lensed (image-plane) r magnitude (every grid), at p > 0.3, with
   Wilson 95% bars.
2. :func:`embedding_figure`: a 2-D map of the probe's penultimate embeddings of Tier-A lenses,
   low- and high-beta_frac injections and negatives, by UMAP (``umap-learn``) or PCA; the axis
   labels and the caption say which.
3. :func:`score_figure`: the distributions of the CNN score of those four groups.
4. :func:`bright_arc_figure`: detection rate at p > 0.3 against source magnitude for every
   bright-arc variant, each with its own colour (Okabe & Ito colour-blind-safe palette),
   marker, line style and a small horizontal offset, Wilson 95% bars.
5. :func:`comparison_figure`: real Tier-A lenses beside injections (grz Lupton composites);
   lenses planted by the mock survey are labelled "mock".

Single-column figures are :data:`COLUMN_WIDTH_IN` wide with text of at least
:data:`MIN_FONT_PT` (rendered at their true size, so the sizes are what a reader sees in the
column); rates are plotted in per cent and no bar extends past 0 or 100%. :func:`render` writes
PDF and PNG bytes with fixed metadata (no dates), so the same inputs give the same bytes.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from stronglens_assets.science.figures import pca_projection, render_figure
from stronglens_assets.science.reporting.d06_results import (
    PROBE_GROUPS,
    BrightArcVariant,
    ComparisonCutouts,
    Grid,
    ProbeEmbeddings,
)
from stronglens_assets.science.reporting.gallery import grz_composite, pick_by_score_rank
from stronglens_assets.science.reporting.paper_summary import (
    MARGINAL_THRESHOLD,
    Rate,
    completeness_by_axis,
    completeness_by_magnitude,
)

__all__ = [
    "COLUMN_WIDTH_IN",
    "GROUP_STYLE",
    "MIN_FONT_PT",
    "PAPER_STYLE",
    "TEXT_WIDTH_IN",
    "VARIANT_STYLE",
    "bright_arc_figure",
    "comparison_figure",
    "completeness_figure",
    "embedding_figure",
    "embedding_projection",
    "render",
    "score_figure",
]

COLUMN_WIDTH_IN = 3.35
"""Width of a single-column figure, inches (MNRAS/RASTI column: 84 mm)."""
TEXT_WIDTH_IN = 6.85
"""Width of a two-column (page-wide) figure, inches (174 mm)."""
MIN_FONT_PT = 7.0
PAPER_STYLE: Mapping[str, object] = {
    "font.size": 8.0,
    "axes.labelsize": 8.0,
    "axes.titlesize": 8.0,
    "xtick.labelsize": 7.0,
    "ytick.labelsize": 7.0,
    "legend.fontsize": 7.0,
    "figure.titlesize": 8.0,
    "lines.linewidth": 1.0,
    "lines.markersize": 4.0,
    "errorbar.capsize": 2.0,
    "axes.linewidth": 0.6,
    "pdf.fonttype": 42,
    "savefig.bbox": "standard",
}

# Okabe & Ito (2008) colour-blind-safe palette.
_BLACK, _ORANGE, _SKY, _GREEN, _VERMILLION, _PURPLE, _BLUE = (
    "#000000",
    "#E69F00",
    "#56B4E9",
    "#009E73",
    "#D55E00",
    "#CC79A7",
    "#0072B2",
)

VARIANT_STYLE: Mapping[str, dict[str, object]] = {
    "baseline": {"color": _BLACK, "marker": "o", "linestyle": "-", "mfc": _BLACK},
    "poisson": {"color": _ORANGE, "marker": "s", "linestyle": "--", "mfc": _ORANGE},
    "clip20": {"color": _SKY, "marker": "^", "linestyle": "-.", "mfc": "white"},
    "gain_1e12": {"color": _GREEN, "marker": "D", "linestyle": ":", "mfc": "white"},
    "poisson_clip20": {
        "color": _VERMILLION,
        "marker": "v",
        "linestyle": (0, (5, 1)),
        "mfc": "white",
    },
    "unrestricted": {
        "color": _PURPLE,
        "marker": "P",
        "linestyle": (0, (3, 1, 1, 1, 1, 1)),
        "mfc": _PURPLE,
    },
}
"""Line style of each bright-arc variant: no two share a colour, marker or line style; the
controls that should coincide with another variant (gain_1e12 with baseline, clip20 with
poisson_clip20) have hollow markers so the one beneath stays visible."""
_EXTRA_STYLES = [
    {"color": _BLUE, "marker": "X", "linestyle": (0, (1, 1)), "mfc": "white"},
    {"color": "#999999", "marker": "*", "linestyle": (0, (4, 2, 1, 2)), "mfc": "#999999"},
]

GROUP_STYLE: Mapping[str, dict[str, object]] = {
    "real_tier_a": {
        "label": "Tier-A lenses",
        "color": _VERMILLION,
        "marker": "o",
        "linestyle": "-",
    },
    "inj_low_bf": {
        "label": r"injections, $\beta_{\rm frac}$ 0.1–0.3",
        "color": _BLUE,
        "marker": "^",
        "linestyle": "--",
    },
    "inj_high_bf": {
        "label": r"injections, $\beta_{\rm frac}$ 0.7–1.0",
        "color": _GREEN,
        "marker": "s",
        "linestyle": "-.",
    },
    "negatives": {"label": "non-lenses", "color": "#666666", "marker": ".", "linestyle": ":"},
}
_GRID_STYLE = {
    "no_poisson": {"label": "no Poisson", "color": _BLACK, "marker": "o", "linestyle": "-"},
    "poisson": {"label": "Poisson", "color": _ORANGE, "marker": "s", "linestyle": "--"},
}


@contextmanager
def _style() -> Iterator[None]:
    with matplotlib.rc_context(dict(PAPER_STYLE)):
        yield


def render(fig: Figure, *, dpi: int = 300) -> tuple[bytes, bytes]:
    """``(pdf, png)`` bytes of ``fig`` in the paper style, deterministic; closes ``fig``."""
    with _style():
        return render_figure(fig, dpi=dpi)


def _percent_errorbar(ax, x, rates: Sequence[Rate], *, xerr=None, **style) -> None:
    """Rates in per cent with Wilson 95% bars clipped to [0, 100]."""
    y = np.array([100.0 * r.rate for r in rates])
    low = np.array([100.0 * r.wilson95[0] for r in rates])
    high = np.array([100.0 * r.wilson95[1] for r in rates])
    low, high = np.clip(low, 0.0, 100.0), np.clip(high, 0.0, 100.0)
    yerr = np.vstack([np.clip(y - low, 0.0, None), np.clip(high - y, 0.0, None)])
    ax.errorbar(x, y, yerr=yerr, xerr=xerr, **style)


def completeness_figure(grids: Mapping[str, Grid], threshold: str = MARGINAL_THRESHOLD) -> Figure:
    """Figure 1: (a) completeness against theta_E for the no-Poisson grid (all source
    magnitudes); (b) against lensed r magnitude for every grid. Wilson 95% bars.

    Raises:
        ValueError: no grid.
    """
    if not grids:
        raise ValueError("Figure 1 needs at least one completeness grid")
    with _style():
        fig, (top, bottom) = plt.subplots(
            2, 1, figsize=(COLUMN_WIDTH_IN, 4.4), constrained_layout=True
        )
        base_name = "no_poisson" if "no_poisson" in grids else next(iter(grids))
        by_theta = completeness_by_axis(grids[base_name], "theta_e", threshold)
        style = _GRID_STYLE.get(base_name, {"label": base_name, "color": _BLACK, "marker": "o"})
        _percent_errorbar(
            top,
            list(by_theta),
            list(by_theta.values()),
            color=style["color"],
            marker=style["marker"],
            linestyle="-",
            label=f"{style['label']} grid",
        )
        n_each = sorted({r.n for r in by_theta.values()})
        top.set_xlabel(r"Einstein radius $\theta_{\rm E}$ (arcsec)")
        top.set_ylabel(f"completeness at ${threshold.replace('p>', 'p > ')}$ (%)")
        highest = max(100.0 * r.wilson95[1] for r in by_theta.values() if r.n)
        top.set_ylim(0.0, min(100.0, 1.3 * highest))
        top.text(
            0.03,
            0.96,
            f"(a) {style['label']} grid\n"
            f"n = {', '.join(f'{v:,}' for v in n_each)} per $\\theta_{{\\rm E}}$",
            transform=top.transAxes,
            va="top",
            ha="left",
        )
        names = list(grids)
        offsets = {name: 0.08 * (i - (len(names) - 1) / 2) for i, name in enumerate(names)}
        for i, name in enumerate(names):
            rates = completeness_by_magnitude(grids[name], "lensed", threshold)
            if not rates:
                continue
            edges = [tuple(float(v) for v in label.split("-")) for label in rates]
            centres = np.array([(lo + hi) / 2 for lo, hi in edges]) + offsets[name]
            half = np.array([(hi - lo) / 2 for lo, hi in edges])
            style = _GRID_STYLE.get(
                name, {"label": name, "color": _EXTRA_STYLES[i % 2]["color"], "marker": "D"}
            )
            keep = np.array([r.n > 0 for r in rates.values()])
            _percent_errorbar(
                bottom,
                centres[keep],
                [r for r, k in zip(rates.values(), keep, strict=True) if k],
                xerr=half[keep],
                color=style["color"],
                marker=style["marker"],
                linestyle="none",
                label=f"{style['label']} grid",
            )
        bottom.set_yscale("log")
        bottom.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        bottom.set_xlabel(r"lensed (image-plane) $r$ magnitude (AB)")
        bottom.set_ylabel(f"completeness at ${threshold.replace('p>', 'p > ')}$ (%)")
        top_value = bottom.get_ylim()[1]
        bottom.set_ylim(top=min(100.0, top_value * 1.6))
        bottom.legend(loc="lower left", frameon=False)
        bottom.text(0.97, 0.95, "(b)", transform=bottom.transAxes, va="top", ha="right")
    return fig


def embedding_projection(
    embeddings: Mapping[str, np.ndarray], method: str = "umap", *, seed: int = 0
) -> tuple[dict[str, np.ndarray], str]:
    """2-D map of several embedding sets; returns ``({group: (n, 2)}, axis label stem)``.

    ``method="umap"``: ``umap.UMAP(n_neighbors=15, min_dist=0.1, random_state=seed)`` on the
    union (Euclidean, single-threaded so it is reproducible); ``"pca"``: the first two
    principal components of the centred union
    (:func:`stronglens_assets.science.figures.pca_projection`), the label giving the explained
    variance.
    """
    names = [n for n in embeddings if len(embeddings[n])]
    if method == "pca":
        projected, ratio = pca_projection({n: embeddings[n] for n in names})
        return projected, f"PC|{100 * ratio[0]:.1f}|{100 * ratio[1]:.1f}"
    if method != "umap":
        raise ValueError(f"embedding method must be 'umap' or 'pca', got {method!r}")
    import umap

    stacked = np.concatenate([np.asarray(embeddings[n], np.float32) for n in names])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # n_jobs forced to 1 by random_state, numba notices
        mapped = umap.UMAP(
            n_neighbors=15, min_dist=0.1, random_state=seed, n_jobs=1, transform_seed=seed
        ).fit_transform(stacked)
    out, start = {}, 0
    for name in names:
        out[name] = np.asarray(mapped[start : start + len(embeddings[name])], np.float64)
        start += len(embeddings[name])
    return out, "UMAP"


def _group_label(name: str, embeddings: ProbeEmbeddings | None = None) -> str:
    label = str(GROUP_STYLE.get(name, {"label": name})["label"])
    if name == "real_tier_a" and embeddings is not None and embeddings.tier_a_is_mock is not None:
        n_mock = int(np.count_nonzero(embeddings.tier_a_is_mock))
        if n_mock == len(embeddings.tier_a_is_mock):
            label = "Tier-A lenses (mock)"
        elif n_mock:
            label = f"Tier-A lenses ({n_mock} of them mock)"
    return label


def embedding_figure(embeddings: ProbeEmbeddings, method: str = "umap", *, seed: int = 0) -> Figure:
    """Figure 2: the probe's groups in a 2-D map of the CNN's penultimate embedding."""
    projected, axis = embedding_projection(embeddings.embeddings, method, seed=seed)
    with _style():
        fig, ax = plt.subplots(figsize=(COLUMN_WIDTH_IN, 3.9), layout="constrained")
        order = [
            g for g in ("negatives", "inj_high_bf", "inj_low_bf", "real_tier_a") if g in projected
        ]
        order += [g for g in projected if g not in order]
        for name in order:
            points = projected[name]
            style = GROUP_STYLE.get(name, {"color": _BLUE, "marker": "x"})
            mock = np.zeros(len(points), bool)
            if name == "real_tier_a" and embeddings.tier_a_is_mock is not None:
                mock = np.asarray(embeddings.tier_a_is_mock, bool)
            for subset, hollow in ((~mock, False), (mock, True)):
                if not subset.any():
                    continue
                label = str(style.get("label", name))
                if mock.any():
                    label += ", mock" if hollow else ", real"
                ax.scatter(
                    points[subset, 0],
                    points[subset, 1],
                    s=10 if name == "real_tier_a" else 5,
                    marker=style["marker"],
                    color="none" if hollow else style["color"],
                    edgecolors=style["color"],
                    alpha=0.9 if name == "real_tier_a" else 0.5,
                    linewidths=0.6 if hollow else 0.3,
                    label=f"{label} ({int(subset.sum())})",
                    rasterized=int(subset.sum()) > 2000,
                )
        if axis == "UMAP":
            ax.set_xlabel("UMAP 1")
            ax.set_ylabel("UMAP 2")
        else:
            _, first, second = axis.split("|")
            ax.set_xlabel(f"PC 1 ({first}% of variance)")
            ax.set_ylabel(f"PC 2 ({second}% of variance)")
        fig.legend(
            loc="outside lower center",
            frameon=False,
            ncol=2,
            markerscale=1.5,
            handletextpad=0.3,
            columnspacing=0.8,
        )
        if axis == "UMAP":  # UMAP coordinates have no meaning of their own
            ax.set_xticks([])
            ax.set_yticks([])
    return fig


def score_figure(
    scores: Mapping[str, np.ndarray],
    threshold: float = 0.3,
    *,
    floor: float = 1e-7,
    embeddings: ProbeEmbeddings | None = None,
) -> Figure:
    """Figure 3: fraction of each group per bin of log10 p(lens) (scores below ``floor``
    drawn in the first bin), with the detection threshold marked."""
    edges = np.linspace(np.log10(floor), 0.0, 29)
    with _style():
        fig, ax = plt.subplots(figsize=(COLUMN_WIDTH_IN, 3.3), layout="constrained")
        for name in [g for g in PROBE_GROUPS if g in scores] + [
            g for g in scores if g not in PROBE_GROUPS
        ]:
            values = np.log10(np.clip(np.asarray(scores[name], np.float64), floor, 1.0))
            counts, _ = np.histogram(values, bins=edges)
            fraction = counts / max(len(values), 1)
            style = GROUP_STYLE.get(name, {"color": _BLUE, "linestyle": "-"})
            median = float(np.median(scores[name]))
            ax.stairs(
                fraction,
                edges,
                color=style["color"],
                linestyle=style["linestyle"],
                linewidth=1.2,
                label=f"{_group_label(name, embeddings)}, median {median:.2g}",
            )
        ax.axvline(np.log10(threshold), color="0.4", linewidth=0.8, linestyle=(0, (2, 2)))
        ax.text(
            np.log10(threshold),
            0.97,
            f"$p = {threshold:g}$ ",
            transform=ax.get_xaxis_transform(),
            va="top",
            ha="right",
            color="0.3",
        )
        ax.set_xlabel(r"$\log_{10}$ CNN score $p$(lens)")
        ax.set_ylabel("fraction per bin")
        ax.set_xlim(edges[0], edges[-1])
        ax.set_ylim(bottom=0.0)
        fig.legend(loc="outside lower center", frameon=False, ncol=1, handlelength=2.2)
    return fig


def bright_arc_figure(variants: Mapping[str, BrightArcVariant], *, rate: str = "p03") -> Figure:
    """Figure 4: bright-arc detection rate (p > 0.3) against unlensed source r magnitude for
    each variant, Wilson 95% bars, variants offset by a few hundredths of a magnitude."""
    if not variants:
        raise ValueError("Figure 4 needs at least one bright-arc variant")
    names = list(variants)
    with _style():
        height = 3.0 + 0.13 * ((len(names) + 2) // 3)
        fig, ax = plt.subplots(figsize=(COLUMN_WIDTH_IN, height), layout="constrained")
        step = 0.07
        for i, name in enumerate(names):
            variant = variants[name]
            style = dict(VARIANT_STYLE.get(name, _EXTRA_STYLES[i % len(_EXTRA_STYLES)]))
            mfc = style.pop("mfc")
            offset = step * (i - (len(names) - 1) / 2)
            x = np.array([(b.mag_lo + b.mag_hi) / 2 for b in variant.bins]) + offset
            k = [b.k_p03 if rate == "p03" else b.k_p05 for b in variant.bins]
            rates = [Rate(kk, b.n) for kk, b in zip(k, variant.bins, strict=True)]
            _percent_errorbar(ax, x, rates, markerfacecolor=mfc, markersize=4, label=name, **style)
        ax.set_xlabel(r"source (unlensed) $r$ magnitude (AB)")
        ax.set_ylabel(f"detected at $p > {0.3 if rate == 'p03' else 0.5:g}$ (%)")
        ax.set_ylim(0.0, min(100.0, ax.get_ylim()[1] * 1.05))
        fig.legend(
            loc="outside lower center",
            frameon=False,
            ncol=min(3, len(names)),
            handlelength=2.6,
            columnspacing=1.0,
        )
    return fig


def comparison_figure(cutouts: ComparisonCutouts, *, per_row: int = 4) -> Figure:
    """Figure 5: real lenses (top row; "mock" where planted by the mock survey) above
    injections (bottom row), at evenly spaced ranks of their score, grz composites."""
    real = pick_by_score_rank(cutouts.real_scores, per_row)
    injected = pick_by_score_rank(cutouts.injection_scores, per_row)
    if not real and not injected:
        raise ValueError("Figure 5 needs at least one real lens or injection")
    columns = max(len(real), len(injected))
    width = TEXT_WIDTH_IN
    with _style():
        fig, axes = plt.subplots(
            2,
            columns,
            figsize=(width, width / columns * 2 + 0.5),
            squeeze=False,
            constrained_layout=True,
        )
        for row, picks in enumerate((real, injected)):
            for col in range(columns):
                ax = axes[row, col]
                ax.set_xticks([])
                ax.set_yticks([])
                if col >= len(picks):
                    ax.set_axis_off()
                    continue
                i = picks[col]
                if row == 0:
                    image, name, score = (
                        cutouts.real_images[i],
                        cutouts.real_ids[i],
                        cutouts.real_scores[i],
                    )
                    kind = "mock lens" if cutouts.real_is_mock[i] else "real lens"
                else:
                    image, name = cutouts.injection_images[i], cutouts.injection_ids[i]
                    score, kind = cutouts.injection_scores[i], "injection"
                ax.imshow(grz_composite(image), origin="lower", interpolation="nearest")
                ax.set_title(f"{kind}: {name}\np = {score:.3f}", fontsize=7)
    return fig
