"""The UI's diagnostic plots (science/reporting/plots.py): drawn at the UI's size, from the
published selection-function table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stronglens_assets.science.reporting.plots import (
    UI_DPI,
    UI_WIDTH_IN,
    completeness_grid_png,
    reliability_diagram_png,
    score_change_png,
    training_curve_png,
)
from stronglens_assets.science.stats.calibration import reliability_bins
from stronglens_assets_tests.paper_tools import png_size
from stronglens_assets_tests.science.reporting.published import PUBLISHED_DIR

UI_WIDTH_PX = round(UI_WIDTH_IN * UI_DPI)


def test_completeness_plot_of_the_published_grid() -> None:
    table = pd.read_csv(PUBLISHED_DIR / "grid_no_poisson_selection_function.csv")
    png = completeness_grid_png(table, 0.3, "published grid, p > 0.3")
    width, height = png_size(png)
    assert width == UI_WIDTH_PX and 0.4 * width < height < width
    # same table, same bytes (no timestamps in the PNG)
    assert completeness_grid_png(table, 0.3, "published grid, p > 0.3") == png


def test_completeness_plot_needs_rows_at_the_threshold() -> None:
    table = pd.read_csv(PUBLISHED_DIR / "grid_no_poisson_selection_function.csv")
    with pytest.raises(ValueError, match=r"threshold 0\.42"):
        completeness_grid_png(table, 0.42, "absent threshold")


def test_training_and_reliability_plots_are_drawn_at_ui_size() -> None:
    history = [{"epoch": e, "loss": 1.0 / e, "val_auc": 0.5 + 0.1 * e} for e in (1, 2, 3)]
    assert png_size(training_curve_png(history, "curve"))[0] == UI_WIDTH_PX
    scores = pd.Series([0.1, 0.4, 0.6, 0.9] * 5).to_numpy()
    labels = pd.Series([0, 0, 1, 1] * 5).to_numpy()
    bins = reliability_bins(scores, labels, 10)
    width, _ = png_size(reliability_diagram_png(bins, "reliability"))
    assert 0.7 * UI_WIDTH_PX <= width <= UI_WIDTH_PX


def test_score_change_plot_is_drawn_at_ui_size() -> None:
    baseline = np.linspace(0.0, 1.0, 50)
    poisson = np.clip(baseline - 0.05, 0.0, 1.0)
    png = score_change_png(baseline, poisson, bins=20)
    assert png_size(png)[0] == UI_WIDTH_PX
    assert score_change_png(baseline, poisson, bins=20) == png
