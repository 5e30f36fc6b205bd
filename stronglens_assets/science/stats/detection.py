"""Detection at a score threshold: the convention, counts and recall.

**A cutout is detected at threshold t when its score p(lens) is strictly greater than t**
(``p > t``, the paper's convention). Every count of detections in the project goes through
:func:`detected` / :func:`count_detected`: D06 completeness grids and bright arcs, recall at a
threshold, spectroscopic validation and the per-stratum fractions of the calibration report.
A score exactly at the threshold is not a detection.

Recall of lenses at a threshold is ``k / n`` with ``k`` = lenses detected, with a Wilson
interval (:func:`~stronglens_assets.science.stats.intervals.wilson_interval`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from stronglens_assets.science.catalogs.crossmatch import within_radius
from stronglens_assets.science.stats.intervals import DEFAULT_CONFIDENCE_LEVEL, wilson_interval

__all__ = [
    "DETECTION_COMPARISON",
    "DETECTION_RULE",
    "count_detected",
    "detected",
    "recall_at",
    "spectroscopic_recall",
]

DETECTION_RULE = "p > t"
"""The detection rule in words: score strictly greater than the threshold."""

DETECTION_COMPARISON = "p(lens) > threshold (strict)"
"""The rule as written into result files (D06 ``comparison`` fields)."""


def detected(scores: npt.ArrayLike, threshold: float) -> npt.NDArray[np.bool_]:
    """Whether each score is a detection at ``threshold`` (``p > t``, strict)."""
    return np.asarray(scores) > threshold


def count_detected(scores: npt.ArrayLike, threshold: float) -> int:
    """Number of detections among ``scores`` at ``threshold`` (``p > t``, strict)."""
    return int(np.count_nonzero(detected(scores, threshold)))


def recall_at(
    scores: Sequence[float] | np.ndarray,
    threshold: float = 0.5,
    confidence: float = DEFAULT_CONFIDENCE_LEVEL,
) -> dict[str, Any]:
    """Recall of lenses with scores ``scores`` at ``threshold`` (``p > t``), Wilson interval.

    Returns ``{"n", "k", "recall", "ci_low", "ci_high", "threshold", "confidence"}`` (recall
    and interval are ``None`` when ``n == 0``).
    """
    scores = np.asarray(scores, dtype=np.float64)
    n, k = len(scores), count_detected(scores, threshold)
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


def spectroscopic_recall(
    scores: pd.DataFrame,
    vac: pd.DataFrame,
    *,
    radius_arcsec: float = 1.0,
    threshold: float = 0.5,
    confidence: float = DEFAULT_CONFIDENCE_LEVEL,
    tier: str = "A",
) -> dict[str, Any]:
    """Recall at ``threshold`` (``p > t``) of ``tier`` lenses with a spectroscopic VAC
    counterpart within ``radius_arcsec``.

    ``scores``: rows with ``ra``, ``dec``, ``tier``, ``label``, ``score``; ``vac``: DESI DR1
    strong-lens VAC rows (``TARGET_RA``, ``TARGET_DEC``, deg). Returns :func:`recall_at`'s
    dict plus ``n_tier`` (lenses of the tier scored) and the matched ``object_ids``.
    """
    lenses = scores[(scores["tier"] == tier) & (scores["label"] == 1)]
    matched = within_radius(
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
