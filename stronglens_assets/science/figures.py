"""Paper figures 1 to 4 from the D06 results (matplotlib, Agg backend, no Dagster).

* Figures 1 and 2: completeness over theta_E x source magnitude for the no-Poisson and the
  Poisson grid (:func:`completeness_map_figure`). The other grid axes (beta_frac, n_sersic,
  R_eff, axis ratio) are marginalised by summing detections ``k`` and injections ``n`` per
  (theta_E, source_mag) cell, so each cell's completeness is ``k / n`` over the grid's uniform
  weighting of the other axes, with a Wilson 68.27% binomial interval
  (:func:`~stronglens_assets.science.stats.intervals.wilson_interval`). Panel (a) is the
  completeness with each cell's interval written in it; panel (b) maps the interval width, so
  the statistical weight of every cell is visible.
* Figure 3: the linear probe (:func:`linear_probe_figure`): a 2-D principal-component
  projection of the CNN embeddings of Tier-A lenses, Tier-B candidates and injections, and
  the cross-validated logistic-regression AUCs (mean +/- standard deviation over folds).
* Figure 4: the bright-arc variants (:func:`bright_arc_figure`): detection rate against the
  score threshold with Wilson 68.27% intervals, and the score distribution of every variant.

Every figure is rendered to PDF and PNG by :func:`render_figure` with fixed metadata (no
creation date), so the same inputs give the same bytes.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import matplotlib

from stronglens_assets.science.core.columns import require_columns
from stronglens_assets.science.stats.intervals import wilson_interval

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.figure import Figure

__all__ = [
    "SELECTION_COLUMNS",
    "CompletenessGrid",
    "ProbeAUC",
    "bright_arc_figure",
    "completeness_grid",
    "completeness_map_figure",
    "linear_probe_figure",
    "pca_projection",
    "render_figure",
    "render_png",
    "score_histogram",
]

SELECTION_COLUMNS: tuple[str, ...] = (
    "theta_e",
    "source_mag",
    "n",
    "k",
)
"""Columns of the D06 selection-function table that the completeness maps need."""

_PDF_METADATA = {"Creator": "stronglens_assets", "Producer": None, "CreationDate": None}
_PNG_METADATA = {"Software": "stronglens_assets"}


@dataclass(frozen=True)
class CompletenessGrid:
    """Completeness on the theta_E x source-magnitude plane (other axes marginalised).

    Arrays have shape ``(len(source_mag), len(theta_e))`` (rows: magnitude, columns: theta_E).
    ``completeness``, ``ci_low`` and ``ci_high`` are NaN in cells without injections.
    """

    theta_e: np.ndarray
    """Einstein radii of the grid, arcsec, ascending."""
    source_mag: np.ndarray
    """Source magnitudes of the grid, AB mag, ascending."""
    k: np.ndarray
    n: np.ndarray
    completeness: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray

    @property
    def overall(self) -> tuple[int, int]:
        """Total detections and injections."""
        return int(self.k.sum()), int(self.n.sum())


def completeness_grid(table: pd.DataFrame) -> CompletenessGrid:
    """Sum ``k`` and ``n`` of a selection-function table per (theta_e, source_mag) cell.

    Args:
        table: one row per grid cell with at least :data:`SELECTION_COLUMNS` (``theta_e`` in
            arcsec, ``source_mag`` in AB mag, integer ``n`` injections and ``k`` detections).

    Raises:
        ValueError: missing columns, an empty table, or a cell with ``k > n`` / negative counts.
    """
    require_columns(table.columns, SELECTION_COLUMNS, "selection-function table")
    if table.empty:
        raise ValueError("selection-function table has no rows")
    if (table["k"] < 0).any() or (table["k"] > table["n"]).any():
        raise ValueError("selection-function table has a cell with k < 0 or k > n")
    summed = table.groupby(["source_mag", "theta_e"], sort=True)[["k", "n"]].sum()
    theta = np.sort(table["theta_e"].unique().astype(float))
    mags = np.sort(table["source_mag"].unique().astype(float))
    full = summed.reindex(pd.MultiIndex.from_product([mags, theta]), fill_value=0)
    k = full["k"].to_numpy(np.int64).reshape(len(mags), len(theta))
    n = full["n"].to_numpy(np.int64).reshape(len(mags), len(theta))
    with np.errstate(invalid="ignore", divide="ignore"):
        completeness = np.where(n > 0, k / np.maximum(n, 1), np.nan)
    low, high = wilson_interval(k, n)
    return CompletenessGrid(theta, mags, k, n, completeness, low, high)


def _category_axes(ax, grid: CompletenessGrid) -> None:
    ax.set_xticks(np.arange(len(grid.theta_e)) + 0.5)
    ax.set_xticklabels([f"{v:g}" for v in grid.theta_e])
    ax.set_yticks(np.arange(len(grid.source_mag)) + 0.5)
    ax.set_yticklabels([f"{v:g}" for v in grid.source_mag])
    ax.set_xlabel(r"Einstein radius $\theta_E$ (arcsec)")
    ax.set_ylabel(r"source magnitude $m_{\rm src}$ (AB mag)")


def completeness_map_figure(
    grid: CompletenessGrid,
    *,
    title: str,
    threshold: float,
    annotate_max_cells: int = 150,
) -> Figure:
    """Figures 1 and 2: completeness map (a) and 68.27% interval width map (b).

    Panel (a) shows ``k / n`` per cell on a fixed 0 to 1 colour scale; when the grid has at
    most ``annotate_max_cells`` cells each cell carries its completeness in per cent and its
    Wilson interval. Panel (b) shows ``ci_high - ci_low``. Empty cells are hatched grey.
    """
    n_cells = grid.completeness.size
    width = max(9.0, 2 * (2.5 + 0.55 * len(grid.theta_e)))
    height = max(4.0, 1.2 + 0.42 * len(grid.source_mag))
    fig, axes = plt.subplots(1, 2, figsize=(width, height), constrained_layout=True)
    x_edges = np.arange(len(grid.theta_e) + 1)
    y_edges = np.arange(len(grid.source_mag) + 1)
    comp = np.ma.masked_invalid(grid.completeness)
    mesh = axes[0].pcolormesh(x_edges, y_edges, comp, cmap="viridis", vmin=0.0, vmax=1.0)
    fig.colorbar(mesh, ax=axes[0], label=f"completeness at $p > {threshold:g}$")
    width_map = np.ma.masked_invalid(grid.ci_high - grid.ci_low)
    vmax = float(np.nanmax(width_map)) if width_map.count() else 1.0
    mesh_b = axes[1].pcolormesh(
        x_edges, y_edges, width_map, cmap="YlOrRd", vmin=0.0, vmax=max(vmax, 1e-3)
    )
    fig.colorbar(mesh_b, ax=axes[1], label="68.27% Wilson interval width")
    for ax in axes:
        ax.set_facecolor("0.85")
        _category_axes(ax, grid)
    if n_cells <= annotate_max_cells:
        font = 7 if n_cells <= 60 else 5
        for i in range(len(grid.source_mag)):
            for j in range(len(grid.theta_e)):
                if grid.n[i, j] == 0:
                    axes[0].text(j + 0.5, i + 0.5, "n=0", ha="center", va="center", fontsize=font)
                    continue
                c, lo, hi = grid.completeness[i, j], grid.ci_low[i, j], grid.ci_high[i, j]
                colour = "black" if c > 0.6 else "white"
                axes[0].text(
                    j + 0.5,
                    i + 0.5,
                    f"{100 * c:.0f}%\n[{100 * lo:.0f}, {100 * hi:.0f}]",
                    ha="center",
                    va="center",
                    fontsize=font,
                    color=colour,
                )
                dark = (grid.ci_high[i, j] - grid.ci_low[i, j]) / max(vmax, 1e-3) > 0.55
                axes[1].text(
                    j + 0.5,
                    i + 0.5,
                    f"n={grid.n[i, j]}",
                    ha="center",
                    va="center",
                    fontsize=font,
                    color="white" if dark else "black",
                )
    k, n = grid.overall
    axes[0].set_title(f"(a) completeness, overall {k}/{n} = {100 * k / max(n, 1):.2f}%")
    axes[1].set_title("(b) per-cell 68.27% interval width")
    fig.suptitle(title)
    return fig


@dataclass(frozen=True)
class ProbeAUC:
    """One linear-probe comparison: AUC mean and standard deviation over CV folds."""

    label: str
    auc_mean: float
    auc_std: float
    n_folds: int


def pca_projection(
    embeddings: Mapping[str, np.ndarray], n_components: int = 2
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Project several embedding sets on the principal components of their union.

    The union is centred (no scaling) and decomposed by SVD; component signs are fixed so
    the largest-magnitude loading of each component is positive (deterministic output).

    Returns:
        ``({name: (n_i, n_components) projections}, explained variance ratio per component)``.
    """
    names = [name for name in embeddings if len(embeddings[name])]
    if not names:
        raise ValueError("no embeddings to project")
    dims = {np.asarray(embeddings[name]).shape[1] for name in names}
    if len(dims) != 1:
        raise ValueError(f"embedding sets have different widths {sorted(dims)}")
    stacked = np.concatenate([np.asarray(embeddings[name], np.float64) for name in names])
    if len(stacked) < 2:
        raise ValueError("need at least two embeddings to project")
    centred = stacked - stacked.mean(axis=0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    n_components = min(n_components, vt.shape[0])
    components = vt[:n_components]
    signs = np.sign(components[np.arange(n_components), np.abs(components).argmax(axis=1)])
    components = components * signs[:, None]
    variance = singular**2
    ratio = variance[:n_components] / max(variance.sum(), np.finfo(float).tiny)
    projected = centred @ components.T
    out, start = {}, 0
    for name in names:
        size = len(embeddings[name])
        out[name] = projected[start : start + size]
        start += size
    return out, ratio


_SET_STYLE = {
    "tier_a": ("Tier-A lenses", "o", "tab:red"),
    "tier_b": ("Tier-B candidates", "s", "tab:orange"),
    "injections": ("Sérsic injections", "^", "tab:blue"),
}


def linear_probe_figure(
    embeddings: Mapping[str, np.ndarray], aucs: Sequence[ProbeAUC], *, title: str
) -> Figure:
    """Figure 3: PCA of the embeddings (a) and linear-probe AUCs with fold scatter (b)."""
    projected, ratio = pca_projection(embeddings)
    fig, axes = plt.subplots(1, 2, figsize=(11.0, 4.6), constrained_layout=True)
    for name, points in projected.items():
        label, marker, colour = _SET_STYLE.get(name, (name, "x", None))
        y = points[:, 1] if points.shape[1] > 1 else np.zeros(len(points))
        axes[0].scatter(
            points[:, 0],
            y,
            s=14,
            marker=marker,
            color=colour,
            alpha=0.7,
            label=f"{label} (n={len(points)})",
        )
    axes[0].set_xlabel(f"PC 1 of the CNN embedding ({100 * ratio[0]:.1f}% of variance)")
    second = f"{100 * ratio[1]:.1f}%" if len(ratio) > 1 else "n/a"
    axes[0].set_ylabel(f"PC 2 of the CNN embedding ({second} of variance)")
    axes[0].legend(loc="best", fontsize=8)
    axes[0].set_title("(a) embeddings, principal-component projection")
    positions = np.arange(len(aucs))
    axes[1].barh(
        positions,
        [a.auc_mean for a in aucs],
        xerr=[a.auc_std for a in aucs],
        color="tab:purple",
        alpha=0.8,
        capsize=4,
    )
    for pos, a in zip(positions, aucs, strict=True):
        axes[1].text(
            0.02,
            pos,
            f"{a.auc_mean:.3f} ± {a.auc_std:.3f} ({a.n_folds} folds)",
            va="center",
            fontsize=8,
            color="black",
        )
    axes[1].axvline(0.5, color="0.3", ls="--", lw=1, label="chance (AUC = 0.5)")
    axes[1].set_yticks(positions)
    axes[1].set_yticklabels([a.label for a in aucs], fontsize=8)
    axes[1].set_xlim(0.0, 1.0)
    axes[1].invert_yaxis()
    axes[1].set_xlabel("linear-probe ROC AUC (mean ± std over CV folds)")
    axes[1].legend(loc="lower right", fontsize=8)
    axes[1].set_title("(b) logistic-regression probe")
    fig.suptitle(title)
    return fig


def score_histogram(scores: npt.ArrayLike, n_bins: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """``(edges, counts)`` of p(lens) scores on ``n_bins`` equal bins of [0, 1] (last closed)."""
    values = np.clip(np.asarray(scores, dtype=np.float64), 0.0, 1.0)
    counts, edges = np.histogram(values, bins=n_bins, range=(0.0, 1.0))
    return edges, counts


def bright_arc_figure(
    rates: pd.DataFrame,
    score_histograms: Mapping[str, tuple[npt.ArrayLike, npt.ArrayLike]],
    *,
    title: str,
) -> Figure:
    """Figure 4: detection rate against threshold (a) and score distributions (b).

    Args:
        rates: one row per (``variant``, ``threshold``) with integer ``k`` detections of
            ``n`` injections (score > threshold); intervals are Wilson 68.27%.
        score_histograms: per variant, ``(edges, counts)`` of its p(lens) scores on bins of
            [0, 1] (:func:`score_histogram`), the same edges for every variant. Panel (b) is
            a heat map of the fraction of each variant's injections per score bin.

    Raises:
        ValueError: missing columns, or histograms with different bin edges.
    """
    require_columns(rates.columns, ("variant", "threshold", "k", "n"), "bright-arc rate table")
    variants = list(dict.fromkeys(rates["variant"]))
    fig, axes = plt.subplots(
        1, 2, figsize=(11.5, 4.6), constrained_layout=True, gridspec_kw={"width_ratios": [1, 1.2]}
    )
    cmap = plt.get_cmap("tab10")
    for i, variant in enumerate(variants):
        rows = rates[rates["variant"] == variant].sort_values("threshold")
        k, n = rows["k"].to_numpy(), rows["n"].to_numpy()
        rate = k / np.maximum(n, 1)
        low, high = wilson_interval(k, n)
        axes[0].errorbar(
            rows["threshold"],
            rate,
            # Wilson bounds equal the rate at k = 0 or n up to rounding: clip at 0
            yerr=[np.clip(rate - low, 0.0, None), np.clip(high - rate, 0.0, None)],
            marker="o",
            ms=4,
            capsize=3,
            color=cmap(i % 10),
            label=f"{variant} (n={int(n.max())})",
        )
    axes[0].set_xlabel("score threshold on p(lens) (dimensionless)")
    axes[0].set_ylabel("detection rate (fraction with p > threshold)")
    axes[0].set_ylim(-0.02, 1.02)
    axes[0].legend(fontsize=8, loc="best")
    axes[0].set_title("(a) detection rate, 68.27% Wilson intervals")
    edges = None
    for variant in variants:
        if variant in score_histograms:
            these = np.asarray(score_histograms[variant][0], dtype=np.float64)
            if edges is not None and (these.shape != edges.shape or not np.allclose(these, edges)):
                raise ValueError(f"score histogram of {variant!r} has different bin edges")
            edges = these
    if edges is None:
        edges = np.linspace(0.0, 1.0, 21)
    fractions = np.full((len(variants), len(edges) - 1), np.nan)
    for i, variant in enumerate(variants):
        if variant in score_histograms:
            counts = np.asarray(score_histograms[variant][1], dtype=np.float64)
            if counts.sum() > 0:
                fractions[i] = counts / counts.sum()
    mesh = axes[1].pcolormesh(
        edges, np.arange(len(variants) + 1), np.ma.masked_invalid(fractions), cmap="cividis"
    )
    fig.colorbar(mesh, ax=axes[1], label="fraction of the variant's injections per bin")
    axes[1].set_yticks(np.arange(len(variants)) + 0.5)
    axes[1].set_yticklabels(variants, fontsize=8)
    axes[1].set_xlabel("CNN score p(lens) (dimensionless)")
    axes[1].set_ylabel("bright-arc variant")
    axes[1].set_title("(b) score distributions")
    fig.suptitle(title)
    return fig


def render_png(fig: Figure, *, dpi: int) -> bytes:
    """PNG of ``fig`` at ``dpi`` (deterministic metadata); the figure stays open."""
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=dpi, metadata=_PNG_METADATA)
    return png.getvalue()


def render_figure(fig: Figure, *, dpi: int = 150) -> tuple[bytes, bytes]:
    """Render ``fig`` to ``(pdf_bytes, png_bytes)`` deterministically and close it.

    The PDF is one page, vector; the PNG is rasterised at ``dpi`` dots per inch.
    """
    try:
        pdf, png = io.BytesIO(), io.BytesIO()
        fig.savefig(pdf, format="pdf", metadata=_PDF_METADATA)
        fig.savefig(png, format="png", dpi=dpi, metadata=_PNG_METADATA)
        return pdf.getvalue(), png.getvalue()
    finally:
        plt.close(fig)
