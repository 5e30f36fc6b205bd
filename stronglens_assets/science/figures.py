"""Figure helpers shared by the paper outputs (matplotlib, Agg backend, no Dagster).

* :func:`pca_projection`: several embedding sets on the principal components of their union
  (the embedding figure of :mod:`~stronglens_assets.science.reporting.paper_figures`);
* :func:`render_figure` / :func:`render_png`: PDF and PNG with fixed metadata (no creation
  date), so the same inputs give the same bytes.
"""

from __future__ import annotations

import io
from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

__all__ = [
    "pca_projection",
    "render_figure",
    "render_png",
]


_PDF_METADATA = {"Creator": "stronglens_assets", "Producer": None, "CreationDate": None}
_PNG_METADATA = {"Software": "stronglens_assets"}


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
