"""Tests of stronglens_assets.science.figures (PCA projection, deterministic rendering)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.decomposition import PCA

from stronglens_assets.science import figures as F
from stronglens_assets_tests.paper_tools import pdf_page_count, png_size


def _axis_labels(fig) -> list[str]:
    return [ax.get_xlabel() for ax in fig.axes] + [ax.get_ylabel() for ax in fig.axes]


def _figure():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1], [0, 1])
    return fig


def test_render_figure_is_deterministic():
    first = F.render_figure(_figure(), dpi=60)
    assert first == F.render_figure(_figure(), dpi=60)
    assert pdf_page_count(first[0]) == 1 and png_size(first[1]) == (180, 120)


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
