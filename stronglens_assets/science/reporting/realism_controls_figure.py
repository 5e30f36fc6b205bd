"""Figure of the realism controls: probe AUC and detection ratio against the structure knob."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from stronglens_assets.science.reporting.plots import UI_FONT_PT, _pyplot


def realism_controls_figure(
    dose_response: Sequence[Mapping[str, Any]],
    negative: Mapping[str, Any],
    positive: Mapping[str, Any],
    *,
    title: str,
) -> Any:
    """Two panels over ``structure_fraction`` of the dose-response rows: (a) probe AUC (twins
    vs originals) with each row's permutation null band shaded and its bootstrap CI as a
    vertical line, the negative (same-model) and positive (Sersic) controls as horizontal
    lines; (b) the detection ratio twins / originals at p > 0.3 (1 = no deficit)."""
    plt = _pyplot()
    x = [float(r["structure_fraction"]) for r in dose_response]
    auc = [float(r["probe_auc"]) for r in dose_response]
    fig, (ax_auc, ax_ratio) = plt.subplots(1, 2, figsize=(9.0, 4.2), constrained_layout=True)
    lo = [r["null_band"][0] for r in dose_response]
    hi = [r["null_band"][1] for r in dose_response]
    ax_auc.fill_between(x, lo, hi, color="0.85", label="permutation null (95%)")
    ax_auc.plot(x, auc, "o-", color="tab:blue", label="dose-response")
    for xi, row in zip(x, dose_response, strict=True):
        if row.get("auc_ci"):  # the bootstrap interval need not contain the CV estimate
            ax_auc.vlines(xi, *row["auc_ci"], color="tab:blue", lw=1.0)
    ax_auc.axhline(negative["probe_auc"], color="tab:green", ls="--", label="same-model twins")
    ax_auc.axhline(positive["probe_auc"], color="tab:red", ls=":", label="Sersic twins")
    ax_auc.set_xlabel("twins' structure fraction")
    ax_auc.set_ylabel("probe AUC, twins vs originals")
    ax_auc.legend(fontsize=UI_FONT_PT - 2)
    ax_auc.set_title("(a) linear probe on the embedding", fontsize=UI_FONT_PT)
    ratios = [r["detection_ratio"] for r in dose_response]
    shown = [(xi, ri) for xi, ri in zip(x, ratios, strict=True) if ri is not None]
    if shown:
        ax_ratio.plot(*zip(*shown, strict=True), "o-", color="tab:blue", label="dose-response")
    if not shown:
        ax_ratio.text(
            0.5, 0.5, "no original detected at p > 0.3:\nthe ratio is undefined",
            ha="center", va="center", transform=ax_ratio.transAxes, fontsize=UI_FONT_PT - 1,
        )  # fmt: skip
    ax_ratio.axhline(1.0, color="0.5", lw=0.8)
    for control, colour, style, name in (
        (negative, "tab:green", "--", "same-model twins"),
        (positive, "tab:red", ":", "Sersic twins"),
    ):
        if control.get("detection_ratio") is not None:
            ax_ratio.axhline(control["detection_ratio"], color=colour, ls=style, label=name)
    ax_ratio.set_xlabel("twins' structure fraction")
    ax_ratio.set_ylabel("detection ratio twins / originals (p > 0.3)")
    if ax_ratio.get_legend_handles_labels()[0]:  # nothing to label when no ratio is defined
        ax_ratio.legend(fontsize=UI_FONT_PT - 2)
    ax_ratio.set_title("(b) detection", fontsize=UI_FONT_PT)
    fig.suptitle(title, fontsize=UI_FONT_PT + 1)
    return fig
