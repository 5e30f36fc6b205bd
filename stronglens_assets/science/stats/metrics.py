"""Evaluation metrics (seeds' checks 4.4 to 4.8): thin over scikit-learn, torchmetrics, astropy.

Conventions:

* AUC: ``sklearn.metrics.roc_auc_score`` of p(lens) against the label (1 lens, 0 non-lens).
* Calibration: torchmetrics' **binary** convention (``BinaryCalibrationError``): confidence =
  p(lens) (not the top-label confidence), accuracy = the label, ``n_bins`` equal-width bins
  on [0, 1]; ``ECE = sum_b (n_b / N) |acc_b - conf_b|`` (``norm="l1"``) and
  ``MCE = max_b |acc_b - conf_b|`` over populated bins (``norm="max"``).
* Recall at a threshold: ``k / n`` with ``k`` = lenses with ``p >= threshold``; interval:
  Wilson score interval (``astropy.stats.binom_conf_interval``), 68.27% by default.
* Bootstrap: rows resampled with replacement (seeded); percentile interval; resamples with a
  single class are redrawn.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from astropy.stats import binom_conf_interval
from sklearn.metrics import roc_auc_score
from torchmetrics.classification import BinaryCalibrationError

CALIBRATION_CONVENTION = (
    "torchmetrics BinaryCalibrationError: confidence = p(lens), accuracy = label, "
    "equal-width bins on [0, 1]; ECE = sum_b n_b/N |acc_b - conf_b| (norm l1), "
    "MCE = max_b |acc_b - conf_b| (norm max)"
)


def auc(labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray) -> float:
    """ROC AUC; NaN when only one class is present."""
    labels = np.asarray(labels)
    if len(np.unique(labels)) < 2:
        return float("nan")
    return float(roc_auc_score(labels, np.asarray(scores, dtype=np.float64)))


def calibration_errors(
    scores: Sequence[float] | np.ndarray, labels: Sequence[int] | np.ndarray, n_bins: int = 15
) -> tuple[float, float]:
    """``(ECE, MCE)`` in torchmetrics' binary convention (module docstring)."""
    scores_t = torch.as_tensor(np.asarray(scores, dtype=np.float32))
    labels_t = torch.as_tensor(np.asarray(labels, dtype=np.int64))
    if len(scores_t) == 0:
        return float("nan"), float("nan")
    ece = BinaryCalibrationError(n_bins=n_bins, norm="l1")(scores_t, labels_t)
    mce = BinaryCalibrationError(n_bins=n_bins, norm="max")(scores_t, labels_t)
    return float(ece), float(mce)


def reliability_bins(
    scores: Sequence[float] | np.ndarray, labels: Sequence[int] | np.ndarray, n_bins: int = 15
) -> pd.DataFrame:
    """Per equal-width bin: ``lower, upper, n, confidence`` (mean p), ``accuracy`` (lens
    fraction), ``gap`` = |accuracy - confidence|. Bin ``b`` holds ``lower <= p < upper``
    as in torchmetrics' bucketing (p = 1 goes to the last bin here)."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.clip(np.searchsorted(edges, scores, side="right") - 1, 0, n_bins - 1)
    counts = np.bincount(index, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.bincount(index, weights=scores, minlength=n_bins) / counts
        accuracy = np.bincount(index, weights=labels, minlength=n_bins) / counts
    return pd.DataFrame(
        {
            "lower": edges[:-1],
            "upper": edges[1:],
            "n": counts,
            "confidence": confidence,
            "accuracy": accuracy,
            "gap": np.abs(accuracy - confidence),
        }
    )


def wilson_interval(k: int, n: int, confidence: float = 0.6827) -> tuple[float, float]:
    """Wilson score interval of ``k`` successes in ``n`` trials (astropy); NaNs when n = 0."""
    if n == 0:
        return float("nan"), float("nan")
    low, high = binom_conf_interval(k, n, confidence_level=confidence, interval="wilson")
    return float(low), float(high)


def recall_at(
    scores: Sequence[float] | np.ndarray, threshold: float = 0.5, confidence: float = 0.6827
) -> dict[str, Any]:
    """Recall of lenses with scores ``scores`` at ``p >= threshold``, with a Wilson interval.

    Returns ``{"n", "k", "recall", "ci_low", "ci_high", "threshold", "confidence"}`` (recall
    and interval are ``None`` when ``n == 0``).
    """
    scores = np.asarray(scores, dtype=np.float64)
    n, k = len(scores), int(np.count_nonzero(scores >= threshold))
    low, high = wilson_interval(k, n, confidence)
    return {
        "n": n,
        "k": k,
        "recall": k / n if n else None,
        "ci_low": low if n else None,
        "ci_high": high if n else None,
        "threshold": threshold,
        "confidence": confidence,
    }


def bootstrap_auc(
    labels: np.ndarray,
    score_sets: Mapping[str, np.ndarray],
    *,
    samples: int = 1000,
    confidence: float = 0.6827,
    seed: int = 0,
    reference: str | None = None,
) -> dict[str, dict[str, float]]:
    """AUC of each score set with a paired bootstrap percentile interval.

    All score sets are resampled with the same row indices. With ``reference``, each other
    set also gets ``delta`` = AUC(reference) - AUC(set) and its interval.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    n = len(labels)
    draws: dict[str, list[float]] = {name: [] for name in score_sets}
    attempts = 0
    while len(next(iter(draws.values()))) < samples and attempts < 20 * samples:
        attempts += 1
        rows = rng.integers(0, n, n)
        if len(np.unique(labels[rows])) < 2:
            continue
        for name, scores in score_sets.items():
            draws[name].append(roc_auc_score(labels[rows], np.asarray(scores)[rows]))
    tail = (1.0 - confidence) / 2.0 * 100.0
    out: dict[str, dict[str, float]] = {}
    for name, scores in score_sets.items():
        values = np.asarray(draws[name])
        entry = {"auc": auc(labels, scores), "n_bootstrap": len(values)}
        if len(values):
            entry["ci_low"], entry["ci_high"] = (
                float(v) for v in np.percentile(values, [tail, 100 - tail])
            )
        if reference is not None and name != reference and len(values):
            delta = np.asarray(draws[reference]) - values
            entry["delta_vs_" + reference] = auc(labels, score_sets[reference]) - entry["auc"]
            low, high = np.percentile(delta, [tail, 100 - tail])
            entry["delta_ci_low"], entry["delta_ci_high"] = float(low), float(high)
        out[name] = entry
    return out


def quantile_bins(values: np.ndarray, n_bins: int) -> tuple[np.ndarray, list[str]]:
    """Label each value with its quantile bin (``"[lo, hi]"`` strings); NaN -> ``"unknown"``."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    labels = np.full(len(values), "unknown", dtype=object)
    if not finite.any():
        return labels, ["unknown"]
    edges = np.unique(np.quantile(values[finite], np.linspace(0, 1, n_bins + 1)))
    if len(edges) < 2:
        edges = np.array([values[finite].min(), values[finite].max()])
    index = np.clip(np.searchsorted(edges, values[finite], side="right") - 1, 0, len(edges) - 2)
    names = [f"[{edges[i]:.3g}, {edges[i + 1]:.3g}]" for i in range(len(edges) - 1)]
    labels[finite] = np.asarray(names, dtype=object)[index]
    return labels, names


def stratum_summary(
    scores: np.ndarray, labels: np.ndarray, n_bins: int, threshold: float
) -> dict[str, Any]:
    """n, lenses, ECE/MCE, mean score and the fraction at ``p >= threshold`` of one stratum."""
    ece, mce = calibration_errors(scores, labels, n_bins)
    return {
        "n": len(scores),
        "n_lens": int(np.sum(labels)),
        "ece": ece,
        "mce": mce,
        "mean_score": float(np.mean(scores)) if len(scores) else float("nan"),
        "fraction_above_threshold": (
            float(np.mean(scores >= threshold)) if len(scores) else float("nan")
        ),
    }


def png_data_uri_markdown(png: bytes, title: str) -> str:
    """Markdown showing a PNG inline (Dagster UI: ``MetadataValue.md`` with a data URI)."""
    return f"![{title}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"


def _figure_png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80, metadata={"Software": None})
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buffer.getvalue()


def reliability_diagram_png(bins: pd.DataFrame, title: str) -> bytes:
    """Reliability diagram (accuracy vs confidence per bin, counts below) as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    return _figure_png(fig)


def training_curve_png(history: Sequence[Mapping[str, Any]], title: str) -> bytes:
    """Loss and validation AUC per epoch as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    return _figure_png(fig)


def match_to_catalog(
    ra: np.ndarray, dec: np.ndarray, cat_ra: np.ndarray, cat_dec: np.ndarray, radius_arcsec: float
) -> np.ndarray:
    """Whether each (ra, dec) [deg] has a catalog position within ``radius_arcsec`` (astropy)."""
    ra, dec = np.asarray(ra, float), np.asarray(dec, float)
    if len(ra) == 0 or len(cat_ra) == 0:
        return np.zeros(len(ra), dtype=bool)
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    objects = SkyCoord(ra * u.deg, dec * u.deg)
    catalog = SkyCoord(np.asarray(cat_ra, float) * u.deg, np.asarray(cat_dec, float) * u.deg)
    _, separation, _ = objects.match_to_catalog_sky(catalog)
    return np.asarray(separation.arcsec <= radius_arcsec)


def spectroscopic_recall(
    scores: pd.DataFrame,
    vac: pd.DataFrame,
    *,
    radius_arcsec: float = 1.0,
    threshold: float = 0.5,
    confidence: float = 0.6827,
    tier: str = "A",
) -> dict[str, Any]:
    """Recall at ``p >= threshold`` of ``tier`` lenses with a spectroscopic VAC counterpart.

    ``scores``: rows with ``ra``, ``dec``, ``tier``, ``label``, ``score``; ``vac``: DESI DR1
    strong-lens VAC rows (``TARGET_RA``, ``TARGET_DEC``, deg). Returns :func:`recall_at`'s
    dict plus ``n_tier`` (lenses of the tier scored) and the matched ``object_ids``.
    """
    lenses = scores[(scores["tier"] == tier) & (scores["label"] == 1)]
    matched = match_to_catalog(
        lenses["ra"].to_numpy(),
        lenses["dec"].to_numpy(),
        vac["TARGET_RA"].to_numpy(),
        vac["TARGET_DEC"].to_numpy(),
        radius_arcsec,
    )
    present = lenses[matched]
    result = recall_at(present["score"].to_numpy(), threshold, confidence)
    result.update(
        {
            "tier": tier,
            "n_tier": len(lenses),
            "match_radius_arcsec": radius_arcsec,
            "object_ids": sorted(present["object_id"].astype(str)),
        }
    )
    return result
