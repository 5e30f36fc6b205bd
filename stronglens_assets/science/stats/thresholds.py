"""Score thresholds: fixed ones and those derived from a false-positive-rate target.

Detection is ``p > t`` (strict; :mod:`~stronglens_assets.science.stats.detection`). A threshold
for a false-positive-rate target ``f`` is derived from the scores of ``n`` negatives (the
validation split's, in the paper): ``t`` is the ``floor(f * n) + 1``-th highest negative score,
so at most ``floor(f * n)`` negatives score strictly above it and the empirical FPR at ``t`` is
``<= f``. A target the negatives cannot resolve (``f * n < 1``: not one false positive allowed)
is an error, never a silently coarse threshold.

Labels: ``p>0.3`` for a fixed threshold, ``FPR=1e-3`` for a derived one.

A model's evaluation stores its thresholds as JSON entries (:func:`threshold_entries`, read
back by :func:`thresholds_from_entries`): one per threshold with ``label``, ``value``,
``fpr_target``, ``n_negatives``, ``resolved`` and, for an unresolved FPR target, its
``reason`` (``value`` null). Consumers skip unresolved entries and say so.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from stronglens_assets.errors import StronglensError

__all__ = [
    "DEFAULT_FIXED_THRESHOLDS",
    "DEFAULT_FPR_TARGETS",
    "ThresholdResolutionError",
    "ThresholdSpec",
    "ThresholdsFormatError",
    "derive_thresholds",
    "fixed_label",
    "fpr_label",
    "fpr_threshold",
    "minimum_negatives",
    "threshold_entries",
    "thresholds_from_entries",
]

DEFAULT_FIXED_THRESHOLDS: tuple[float, ...] = (0.3, 0.5, 0.7)
"""The paper's fixed score thresholds (detection ``p > t``)."""

DEFAULT_FPR_TARGETS: tuple[float, ...] = (1e-3, 1e-4)
"""The paper's false-positive-rate targets for derived thresholds."""


class ThresholdResolutionError(StronglensError, ValueError):
    """An FPR target that the given negatives cannot resolve, or unusable negative scores."""


class ThresholdsFormatError(StronglensError, ValueError):
    """Stored threshold entries that are not in the documented form."""


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


def threshold_entries(
    negative_scores: npt.ArrayLike,
    fixed: Sequence[float] = DEFAULT_FIXED_THRESHOLDS,
    fpr_targets: Iterable[float] = DEFAULT_FPR_TARGETS,
) -> list[dict[str, Any]]:
    """JSON entries of the fixed thresholds then one per FPR target (module docstring).

    Unlike :func:`derive_thresholds`, an FPR target the negatives cannot resolve does not
    raise: its entry has ``value`` null, ``resolved`` false and the ``reason``. Unusable
    scores (none, or non-finite) still raise :class:`ThresholdResolutionError`.
    """
    scores = np.asarray(negative_scores, dtype=np.float64).ravel()
    if scores.size == 0 or not np.all(np.isfinite(scores)):
        fpr_threshold(scores, 0.5)  # raises with the reason
    entries: list[dict[str, Any]] = [
        {
            "label": fixed_label(v),
            "value": float(v),
            "fpr_target": None,
            "n_negatives": None,
            "resolved": True,
        }
        for v in fixed
    ]
    for fpr in fpr_targets:
        entry: dict[str, Any] = {
            "label": fpr_label(fpr),
            "value": None,
            "fpr_target": float(fpr),
            "n_negatives": int(scores.size),
            "resolved": True,
        }
        try:
            entry["value"] = fpr_threshold(scores, fpr)
        except ThresholdResolutionError as exc:
            entry.update({"resolved": False, "reason": str(exc)})
        entries.append(entry)
    return entries


def thresholds_from_entries(
    entries: Any, source: str = "thresholds"
) -> tuple[list[ThresholdSpec], list[dict[str, Any]]]:
    """``(resolved specs, unresolved entries)`` of :func:`threshold_entries` output.

    Raises :class:`ThresholdsFormatError` naming ``source`` and the entry when an entry is
    not a mapping, lacks a field, or a resolved entry has no finite value in [0, 1].
    """
    if not isinstance(entries, list):
        raise ThresholdsFormatError(f"{source}: 'thresholds' must be a list of entries")
    specs: list[ThresholdSpec] = []
    unresolved: list[dict[str, Any]] = []
    required = ("label", "value", "fpr_target", "n_negatives", "resolved")
    for number, entry in enumerate(entries):
        where = f"{source}: thresholds[{number}]"
        if not isinstance(entry, dict):
            raise ThresholdsFormatError(f"{where} is not a mapping")
        missing = [name for name in required if name not in entry]
        if missing:
            raise ThresholdsFormatError(f"{where} lacks field(s) {missing}")
        if entry["resolved"] is not True:
            if "reason" not in entry:
                raise ThresholdsFormatError(f"{where}: an unresolved entry needs a 'reason'")
            unresolved.append(dict(entry))
            continue
        value = entry["value"]
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not 0.0 <= float(value) <= 1.0
        ):
            raise ThresholdsFormatError(f"{where}: value {value!r} is not a score in [0, 1]")
        fpr, n_neg = entry["fpr_target"], entry["n_negatives"]
        specs.append(
            ThresholdSpec(
                str(entry["label"]),
                float(value),
                None if fpr is None else float(fpr),
                None if n_neg is None else int(n_neg),
            )
        )
    return specs, unresolved
