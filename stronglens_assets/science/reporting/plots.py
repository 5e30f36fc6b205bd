"""Diagnostic plots as PNG bytes for the Dagster UI (matplotlib, Agg backend).

The paper's figures live in :mod:`stronglens_assets.science.reporting.paper_figures`; these
are the training, evaluation and D06 diagnostics attached to asset metadata. The UI shows a
markdown image in a dialog at most 80% of the window wide, at its pixel size: the plots are
drawn :data:`UI_WIDTH_IN` inches wide at :data:`UI_DPI` (about 900 px, fully visible on a
laptop screen) with fonts of :data:`UI_FONT_PT` points (about 17 px).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "UI_DPI",
    "UI_FONT_PT",
    "UI_WIDTH_IN",
    "completeness_grid_png",
    "figure_png",
    "png_data_uri_markdown",
    "reliability_diagram_png",
    "score_change_png",
    "training_curve_png",
]


UI_DPI = 100
"""Resolution of the UI plots, pixels per inch."""
UI_WIDTH_IN = 9.0
"""Width of a UI plot, inches (900 px at :data:`UI_DPI`)."""
UI_FONT_PT = 12.0
"""Base font size of the UI plots, points (ticks and legends one point smaller)."""
UI_STYLE: Mapping[str, object] = {
    "font.size": UI_FONT_PT,
    "axes.titlesize": UI_FONT_PT,
    "axes.labelsize": UI_FONT_PT,
    "xtick.labelsize": UI_FONT_PT - 1,
    "ytick.labelsize": UI_FONT_PT - 1,
    "legend.fontsize": UI_FONT_PT - 1,
    "figure.titlesize": UI_FONT_PT + 1,
}


def png_data_uri_markdown(png: bytes, title: str) -> str:
    """Markdown showing a PNG inline (Dagster UI: ``MetadataValue.md`` with a data URI)."""
    return f"![{title}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"


def figure_png(fig: Any, dpi: int = UI_DPI) -> bytes:
    """PNG bytes of a matplotlib figure (no software tag, so the same plot gives the same
    bytes); the figure is closed."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buffer.getvalue()


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _ui_style() -> Any:
    """``rc_context`` of the UI plots' font sizes (figures must be drawn inside it)."""
    import matplotlib

    return matplotlib.rc_context(dict(UI_STYLE))


def reliability_diagram_png(bins: pd.DataFrame, title: str) -> bytes:
    """Reliability diagram (accuracy vs confidence per bin, counts below) as PNG bytes.

    ``bins``: :func:`~stronglens_assets.science.stats.calibration.reliability_bins`.
    """
    plt = _pyplot()
    with _ui_style():
        fig, (top, bottom) = plt.subplots(
            2,
            1,
            figsize=(0.8 * UI_WIDTH_IN, 0.75 * UI_WIDTH_IN),
            sharex=True,
            gridspec_kw={"height_ratios": [3, 1]},
        )
        populated = bins[bins["n"] > 0]
        centres = (bins["lower"] + bins["upper"]) / 2
        width = bins["upper"].iloc[0] - bins["lower"].iloc[0]
        top.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="perfect calibration")
        top.bar(
            (populated["lower"] + populated["upper"]) / 2,
            populated["accuracy"],
            width=width,
            edgecolor="k",
            alpha=0.7,
            label="lens fraction per bin",
        )
        top.plot(populated["confidence"], populated["accuracy"], "o", color="C3", ms=5)
        top.set_ylabel("fraction of lenses")
        top.set_xlim(0, 1)
        top.set_ylim(0, 1)
        top.set_title(title)
        top.legend(loc="upper left")
        bottom.bar(centres, bins["n"], width=width)
        bottom.set_yscale("log" if bins["n"].max() > 50 else "linear")
        bottom.set_xlabel("p(lens)")
        bottom.set_ylabel("objects")
        fig.tight_layout()
        return figure_png(fig)


def training_curve_png(history: Sequence[Mapping[str, Any]], title: str) -> bytes:
    """Loss and validation AUC per epoch as PNG bytes."""
    plt = _pyplot()
    epochs = [h["epoch"] for h in history]
    with _ui_style():
        fig, loss_ax = plt.subplots(figsize=(UI_WIDTH_IN, 0.5 * UI_WIDTH_IN))
        loss_ax.plot(epochs, [h["loss"] for h in history], "o-", color="C0", label="train loss")
        loss_ax.set_xlabel("epoch")
        loss_ax.set_ylabel("train loss (BCE, weighted mean)", color="C0")
        auc_ax = loss_ax.twinx()
        aucs = [np.nan if h.get("val_auc") is None else h["val_auc"] for h in history]
        auc_ax.plot(epochs, aucs, "s-", color="C1", label="val AUC")
        auc_ax.set_ylabel("validation AUC", color="C1")
        loss_ax.set_title(title)
        fig.tight_layout()
        return figure_png(fig)


def completeness_grid_png(table: pd.DataFrame, threshold: float, title: str) -> bytes:
    """Completeness vs Einstein radius from a D06 selection-function table as PNG bytes.

    ``table``: the published ``selection_function.csv`` schema (one row per cell, threshold
    and source-magnitude bin). Its ``all`` rows at ``threshold`` are drawn: one panel per PSF
    FWHM bin (arcsec), one line per 5-sigma depth bin (AB mag), completeness k/n (p > t)
    with the cell's 68% Jeffreys interval; cells below the table's ``sufficient`` count are
    hollow and empty cells are left out. The first panel pools every cell per theta_E
    (sum of k over sum of n).
    """
    plt = _pyplot()
    rows = table[(table["source_mag_bin"] == "all") & np.isclose(table["threshold"], threshold)]
    if rows.empty:
        raise ValueError(f"no 'all' rows at threshold {threshold} in the selection-function table")
    filled = rows[rows["n_injections"] > 0]
    psf_bins = sorted(rows["psf_fwhm"].unique())
    depth_bins = sorted(rows["depth_5sig"].unique())
    columns = min(4, len(psf_bins) + 1)
    n_rows = -(-(len(psf_bins) + 1) // columns)
    colours = plt.get_cmap("viridis")(np.linspace(0.0, 0.9, max(len(depth_bins), 1)))
    with _ui_style():
        fig, axes = plt.subplots(
            n_rows,
            columns,
            figsize=(UI_WIDTH_IN, 0.3 * UI_WIDTH_IN * n_rows + 0.6),
            sharex=True,
            sharey=True,
            squeeze=False,
        )
        pooled = filled.groupby("theta_e")[["n_detected", "n_injections"]].sum()
        first = axes[0][0]
        first.plot(pooled.index, pooled["n_detected"] / pooled["n_injections"], "o-", color="k")
        first.set_title("all cells")
        for panel, psf in enumerate(psf_bins, start=1):
            ax = axes[panel // columns][panel % columns]
            ax.set_title(f'PSF FWHM {psf:g}"')
            if not np.isclose(filled["psf_fwhm"], psf).any():
                ax.text(
                    0.5, 0.5, "no hosts\nin this bin", ha="center", va="center",
                    transform=ax.transAxes, color="0.4",
                )  # fmt: skip
            for colour, depth in zip(colours, depth_bins, strict=False):
                cells = filled[
                    np.isclose(filled["psf_fwhm"], psf) & np.isclose(filled["depth_5sig"], depth)
                ].sort_values("theta_e")
                if cells.empty:
                    continue
                rate = cells["completeness"].to_numpy(dtype=float)
                # an equal-tailed Jeffreys interval need not contain k/n (k = 0 or n)
                errors = np.clip(
                    np.vstack(
                        [
                            rate - cells["ci68_lo"].to_numpy(dtype=float),
                            cells["ci68_hi"].to_numpy(dtype=float) - rate,
                        ]
                    ),
                    0.0,
                    None,
                )
                ax.errorbar(
                    cells["theta_e"], rate, yerr=errors, color=colour, lw=1, capsize=2, ls="-"
                )
                sufficient = cells["sufficient"].to_numpy(dtype=bool)
                ax.plot(cells["theta_e"][sufficient], rate[sufficient], "o", color=colour, ms=5)
                ax.plot(
                    cells["theta_e"][~sufficient],
                    rate[~sufficient],
                    "o",
                    mfc="white",
                    color=colour,
                    ms=5,
                )
        for index, ax in enumerate(axes.flat):
            if index > len(psf_bins):
                ax.set_visible(False)
                continue
            ax.set_ylim(-0.03, 1.03)
            ax.grid(alpha=0.3)
        for ax in axes[:, 0]:
            ax.set_ylabel(f"completeness (p > {threshold:g})")
        for ax in axes[-1]:
            ax.set_xlabel(r"$\theta_E$ (arcsec)")
        from matplotlib.lines import Line2D

        drawn = set(filled["depth_5sig"].round(6))
        handles = [
            Line2D([], [], color=colour, marker="o", label=f"{depth:g}")
            for colour, depth in zip(colours, depth_bins, strict=False)
            if round(depth, 6) in drawn
        ]
        legend_width = 0.0
        if handles:
            fig.legend(
                handles=handles,
                loc="center right",
                title="5-sigma depth\n(AB mag)",
                frameon=False,
            )
            legend_width = 0.15
        fig.suptitle(title)
        fig.tight_layout(rect=(0.0, 0.0, 1.0 - legend_width, 1.0))
        return figure_png(fig)


def score_change_png(baseline: np.ndarray, poisson: np.ndarray, bins: int = 40) -> bytes:
    """Paired Poisson diagnostics as PNG bytes: histogram of ``poisson - baseline`` score per
    injection (the same arc and host) and both p(lens) distributions (log counts)."""
    plt = _pyplot()
    with _ui_style():
        fig, (left, right) = plt.subplots(1, 2, figsize=(UI_WIDTH_IN, 0.42 * UI_WIDTH_IN))
        left.hist(np.asarray(poisson) - np.asarray(baseline), bins=bins, color="0.3")
        left.set_xlabel("score change (Poisson - baseline)")
        left.set_ylabel("injections")
        edges = np.linspace(0, 1, bins + 1)
        right.hist(baseline, bins=edges, histtype="step", label="baseline")
        right.hist(poisson, bins=edges, histtype="step", label="Poisson")
        right.set_yscale("log")
        right.set_xlabel("p(lens)")
        right.set_ylabel("injections")
        right.legend()
        fig.tight_layout()
        return figure_png(fig)
