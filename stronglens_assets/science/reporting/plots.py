"""Small diagnostic plots as PNG bytes for the Dagster UI (matplotlib, Agg backend).

The paper's figures live in :mod:`stronglens_assets.science.figures`; these are the
evaluation and training diagnostics attached to asset metadata.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "figure_png",
    "png_data_uri_markdown",
    "reliability_diagram_png",
    "training_curve_png",
]


def png_data_uri_markdown(png: bytes, title: str) -> str:
    """Markdown showing a PNG inline (Dagster UI: ``MetadataValue.md`` with a data URI)."""
    return f"![{title}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"


def figure_png(fig: Any, dpi: int = 80) -> bytes:
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


def reliability_diagram_png(bins: pd.DataFrame, title: str) -> bytes:
    """Reliability diagram (accuracy vs confidence per bin, counts below) as PNG bytes.

    ``bins``: :func:`~stronglens_assets.science.stats.calibration.reliability_bins`.
    """
    plt = _pyplot()
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(4.5, 5.0), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    populated = bins[bins["n"] > 0]
    centres = (bins["lower"] + bins["upper"]) / 2
    top.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="perfect")
    top.bar(
        (populated["lower"] + populated["upper"]) / 2,
        populated["accuracy"],
        width=bins["upper"].iloc[0] - bins["lower"].iloc[0],
        edgecolor="k",
        alpha=0.7,
        label="lens fraction",
    )
    top.plot(populated["confidence"], populated["accuracy"], "o", color="C3", ms=3)
    top.set_ylabel("fraction of lenses")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_title(title, fontsize=9)
    top.legend(loc="upper left", fontsize=8)
    bottom.bar(centres, bins["n"], width=bins["upper"].iloc[0] - bins["lower"].iloc[0])
    bottom.set_yscale("log" if bins["n"].max() > 50 else "linear")
    bottom.set_xlabel("p(lens)")
    bottom.set_ylabel("n")
    fig.tight_layout()
    return figure_png(fig)


def training_curve_png(history: Sequence[Mapping[str, Any]], title: str) -> bytes:
    """Loss and validation AUC per epoch as PNG bytes."""
    plt = _pyplot()
    epochs = [h["epoch"] for h in history]
    fig, loss_ax = plt.subplots(figsize=(5.0, 3.2))
    loss_ax.plot(epochs, [h["loss"] for h in history], "o-", color="C0", label="train loss")
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("weighted BCE", color="C0")
    auc_ax = loss_ax.twinx()
    aucs = [np.nan if h.get("val_auc") is None else h["val_auc"] for h in history]
    auc_ax.plot(epochs, aucs, "s-", color="C1", label="val AUC")
    auc_ax.set_ylabel("validation AUC", color="C1")
    loss_ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return figure_png(fig)
