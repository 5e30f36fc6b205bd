"""The realism-controls figure draws every row, including a CI that misses the estimate."""

from __future__ import annotations

from stronglens_assets.science.reporting.plots import figure_png
from stronglens_assets.science.reporting.realism_controls_figure import realism_controls_figure


def test_figure_draws_rows_and_controls() -> None:
    rows = [
        {"structure_fraction": f, "probe_auc": a, "null_band": [0.4, 0.5], "auc_ci": ci,
         "detection_ratio": r}
        for f, a, ci, r in [(0.0, 0.45, [0.47, 0.6], 1.0), (0.3, 0.7, [0.6, 0.8], None)]
    ]  # fmt: skip
    negative = {"probe_auc": 0.46, "detection_ratio": 1.02}
    positive = {"probe_auc": 0.8, "detection_ratio": 0.5}
    fig = realism_controls_figure(rows, negative, positive, title="controls")
    ax_auc, ax_ratio = fig.axes
    assert list(ax_auc.lines[0].get_xdata()) == [0.0, 0.3]
    assert len(ax_auc.collections) == 3  # null band + two CI lines
    assert len(ax_ratio.lines) == 1 + 1 + 2  # one finite ratio row, the 1 line, two controls
    assert figure_png(fig).startswith(b"\x89PNG")


def test_figure_says_when_no_ratio_is_defined() -> None:
    rows = [{"structure_fraction": 0.0, "probe_auc": 0.4, "null_band": [0.3, 0.5],
             "auc_ci": None, "detection_ratio": None}]  # fmt: skip
    control = {"probe_auc": 0.4, "detection_ratio": None}
    fig = realism_controls_figure(rows, control, control, title="controls")
    assert "undefined" in fig.axes[1].texts[0].get_text()
