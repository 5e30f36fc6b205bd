"""Score thresholds: fixed ones and those derived from a false-positive-rate target.

Detection is ``p > t`` (strict; :mod:`~stronglens_assets.science.stats.detection`). A threshold
for a false-positive-rate target ``f`` is derived from the scores of ``n`` negatives (the
validation split's, in the paper): ``t`` is the ``floor(f * n) + 1``-th highest negative score,
so at most ``floor(f * n)`` negatives score strictly above it and the empirical FPR at ``t`` is
``<= f``. A target the negatives cannot resolve (``f * n < 1``: not one false positive allowed)
is an error, never a silently coarse threshold.

Labels: ``p>0.3`` for a fixed threshold, ``FPR=1e-3`` for a derived one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from stronglens_assets.errors import StronglensError

__all__ = [
    "DEFAULT_FIXED_THRESHOLDS",
    "DEFAULT_FPR_TARGETS",
    "ThresholdResolutionError",
    "ThresholdSpec",
    "derive_thresholds",
    "fixed_label",
    "fpr_label",
    "fpr_threshold",
    "minimum_negatives",
]

DEFAULT_FIXED_THRESHOLDS: tuple[float, ...] = (0.3, 0.5, 0.7)
"""The paper's fixed score thresholds (detection ``p > t``)."""

DEFAULT_FPR_TARGETS: tuple[float, ...] = (1e-3, 1e-4)
"""The paper's false-positive-rate targets for derived thresholds."""


class ThresholdResolutionError(StronglensError, ValueError):
    """An FPR target that the given negatives cannot resolve, or unusable negative scores."""


@dataclass(frozen=True)
class ThresholdSpec:
    """A score threshold: detection is ``p > value``.

    ``label`` is ``p>0.3`` for a fixed threshold and ``FPR=1e-3`` for one derived from a
    false-positive-rate target ``fpr_target`` on ``n_negatives`` negatives (``None`` for a
    fixed threshold, or where the source does not say).
    """

    label: str
    value: float
    fpr_target: float | None = None
    n_negatives: int | None = None


def fixed_label(value: float) -> str:
    """``p>0.3`` style label of a fixed threshold."""
    return f"p>{float(value):g}"


def fpr_label(fpr: float) -> str:
    """``1e-3`` style label of a false-positive-rate target (``FPR=1e-3``)."""
    mantissa, exponent = f"{fpr:.0e}".split("e")
    return f"FPR={mantissa}e{int(exponent)}"


def minimum_negatives(fpr: float) -> int:
    """Fewest negatives that resolve the target ``fpr`` (one false positive allowed)."""
    if not 0.0 < fpr < 1.0:
        raise ThresholdResolutionError(f"fpr_target: {fpr!r} is not in (0, 1)")
    return math.ceil(1.0 / fpr - 1e-9)


def fpr_threshold(negative_scores: npt.ArrayLike, fpr: float) -> float:
    """Threshold ``t`` with at most ``floor(fpr * n)`` of the ``n`` negatives at ``p > t``.

    ``t`` is the ``floor(fpr * n) + 1``-th highest score. Raises
    :class:`ThresholdResolutionError` when ``fpr * n < 1`` (the message gives the number of
    negatives needed), when there are no scores, or when a score is not finite.
    """
    scores = np.asarray(negative_scores, dtype=np.float64).ravel()
    needed = minimum_negatives(fpr)
    if scores.size == 0:
        raise ThresholdResolutionError("negative_scores: empty, no threshold can be derived")
    if not np.all(np.isfinite(scores)):
        raise ThresholdResolutionError(
            f"negative_scores: {int(np.count_nonzero(~np.isfinite(scores)))} non-finite score(s)"
        )
    if scores.size < needed:
        raise ThresholdResolutionError(
            f"fpr_target {fpr:g} needs at least {needed} negatives to resolve; "
            f"only {scores.size} negative score(s) were given"
        )
    allowed = math.floor(fpr * scores.size + 1e-9)
    ranked = np.sort(scores)[::-1]
    return float(ranked[allowed])


def derive_thresholds(
    negative_scores: npt.ArrayLike,
    fixed: Sequence[float] = DEFAULT_FIXED_THRESHOLDS,
    fpr_targets: Iterable[float] = DEFAULT_FPR_TARGETS,
) -> list[ThresholdSpec]:
    """The fixed thresholds then one per FPR target, in that order; see :func:`fpr_threshold`."""
    scores = np.asarray(negative_scores, dtype=np.float64).ravel()
    specs = [ThresholdSpec(fixed_label(v), float(v)) for v in fixed]
    for fpr in fpr_targets:
        specs.append(
            ThresholdSpec(fpr_label(fpr), fpr_threshold(scores, fpr), float(fpr), int(scores.size))
        )
    return specs
