"""Bright arcs: the paired design, per-bin rates and the Poisson-vs-baseline McNemar tests.

Design (the paper's): ``n_hosts`` hosts drawn once (seeded), the same for every magnitude bin
and every variant; theta_E fixed (1.5"); per unlensed r-magnitude bin ``[lo, hi)`` (18-19 ...
25-26) ``injections_per_bin`` injections, injection ``j`` of a bin into host ``j mod n_hosts``,
source magnitude U(lo, hi), beta_frac from the design's range (area-weighted) unless the
variant sets its own (``unrestricted``: [0.1, 1.0]). The parameters of bin ``b`` come from the
stream ``(seed, "bright_arc", b, beta_lo, beta_hi)``, so variants of one geometry inject the
same arcs into the same hosts and differ only by noise or preprocessing: a paired design.

Variants (``configs/d06.yaml``): ``baseline``; ``poisson`` (gain 150 e-/nmgy); ``clip20`` (the
preprocessing clip range widened to 20); ``gain_1e12`` (Poisson at 1e12, a control equal to the
baseline); ``poisson_clip20``; ``unrestricted``.

Per bin (:func:`bright_arc_results`): detection rates at ``p > 0.3`` and ``p > 0.5``, median
score and median r-band arc S/N, in the published ``bright_arc_results.json`` shape; the
host-only floor (the same hosts scored without an arc) beside it.

Gain sweep (:func:`gain_sweep_rates`): the baseline design again with Poisson noise at another
gain (a fixed one, or each host's own), its rates per bin and its pooled McNemar test against
the baseline on the same injections.

Paired tests (:func:`paired_mcnemar`): per bin, ``b`` = detected only with Poisson noise,
``c`` = only without; McNemar's exact and continuity-corrected tests
(:mod:`~stronglens_assets.science.stats.mcnemar`), pooled over bin ranges by summing b and c.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from stronglens_assets.science.stats.mcnemar import mcnemar_test, pooled_mcnemar

__all__ = [
    "bin_labels",
    "bright_arc_results",
    "detection_rates",
    "gain_sweep_rates",
    "paired_mcnemar",
]


def bin_labels(edges: Sequence[float]) -> list[str]:
    """``["18-19", ...]`` of consecutive edges."""
    return [f"{lo:g}-{hi:g}" for lo, hi in itertools.pairwise(edges)]


def _median(values: np.ndarray) -> float | None:
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(np.median(values)) if len(values) else None


def bright_arc_results(
    *,
    labels: Sequence[str],
    bin_index: np.ndarray,
    scores: np.ndarray,
    arc_snr: np.ndarray,
    host_scores: np.ndarray,
    n_failed: int,
    header: Mapping[str, Any],
) -> dict[str, Any]:
    """``bright_arc_results.json`` body (published shape) of one variant.

    Args:
        bin_index: the magnitude bin of each scored injection.
        scores, arc_snr, host_scores: per scored injection (p(lens); r-band annulus S/N;
            p(lens) of its host without an arc).
        header: the run's description (``preprocessing``, ``phase1_config``, ...), copied.
    """
    scores = np.asarray(scores, dtype=np.float64)
    by_bin = {}
    for b, label in enumerate(labels):
        members = np.asarray(bin_index) == b
        n = int(members.sum())
        s = scores[members]
        entry: dict[str, Any] = {
            "mag_bin": label,
            "n_scored": n,
            "detection_rate_p03": float((s > 0.3).sum() / n) if n else 0.0,
            "detection_rate_p05": float((s > 0.5).sum() / n) if n else 0.0,
            "median_score": _median(s),
            "median_arc_snr": _median(np.asarray(arc_snr)[members]),
            "host_only_rate_p03": float((np.asarray(host_scores)[members] > 0.3).sum() / n)
            if n
            else 0.0,
        }
        by_bin[label] = entry
    n_scored = len(scores)
    return {
        **header,
        "n_total_injections": n_scored + int(n_failed),
        "n_scored": n_scored,
        "n_failed": int(n_failed),
        "magnitude_bins": list(labels),
        "results_by_bin": by_bin,
    }


def paired_mcnemar(
    labels: Sequence[str],
    bin_index: np.ndarray,
    baseline_detected: np.ndarray,
    poisson_detected: np.ndarray,
    pools: Mapping[str, Sequence[str]],
) -> dict[str, Any]:
    """``mcnemar_results.json`` body: per bin and pooled McNemar tests of paired detections.

    ``baseline_detected`` / ``poisson_detected``: booleans of the same injections (same order).
    ``pools``: name -> bin labels summed (written as ``aggregate_<name>``).
    """
    base = np.asarray(baseline_detected, dtype=bool)
    pois = np.asarray(poisson_detected, dtype=bool)
    if base.shape != pois.shape or base.shape != np.asarray(bin_index).shape:
        raise ValueError(
            f"paired detections differ in length: baseline {base.shape}, poisson {pois.shape}"
        )
    per_bin: dict[str, Any] = {}
    counts: dict[str, tuple[int, int]] = {}
    for b, label in enumerate(labels):
        m = np.asarray(bin_index) == b
        gained = int((pois[m] & ~base[m]).sum())
        lost = int((base[m] & ~pois[m]).sum())
        both = int((base[m] & pois[m]).sum())
        neither = int((~base[m] & ~pois[m]).sum())
        n = int(m.sum())
        test = mcnemar_test(gained, lost)
        counts[label] = (gained, lost)
        per_bin[label] = {
            "n_paired": n,
            "gained_b": gained,
            "lost_c": lost,
            "both_detected": both,
            "both_undetected": neither,
            "mcnemar_chi2": test.chi2,
            "mcnemar_p_chi2": test.p_chi2,
            "mcnemar_p_exact": test.p_exact,
            "baseline_det_rate": (both + lost) / n if n else 0.0,
            "poisson_det_rate": (both + gained) / n if n else 0.0,
        }
    out: dict[str, Any] = {"per_bin": per_bin}
    for name, included in pools.items():
        unknown = [b for b in included if b not in counts]
        if unknown:
            raise ValueError(f"pool {name!r} names bins {unknown} that are not magnitude bins")
        test = pooled_mcnemar(counts[b] for b in included)
        out[f"aggregate_{name}"] = {
            "bins_included": list(included),
            "total_gained": test.b,
            "total_lost": test.c,
            "mcnemar_chi2": test.chi2,
            "mcnemar_p_chi2": test.p_chi2,
            "mcnemar_p_exact": test.p_exact,
        }
    return out


def detection_rates(table: pd.DataFrame) -> dict[str, Any]:
    """Detection rates of a per-injection table (``mag_bin``, ``score``) at ``p > 0.3`` and
    ``p > 0.5``: per ``mag_bin`` (in the table's order) and overall."""
    by_bin = table.groupby("mag_bin", sort=False)["score"]
    rates: dict[str, Any] = {}
    for key, threshold in (("p03", 0.3), ("p05", 0.5)):
        rates[f"rate_{key}_by_bin"] = {label: float((g > threshold).mean()) for label, g in by_bin}
        rates[f"rate_{key}"] = float((table["score"] > threshold).mean())
    return rates


def gain_sweep_rates(
    labels: Sequence[str], baseline: pd.DataFrame, noisy: pd.DataFrame
) -> dict[str, Any]:
    """Detection rates of a noisy run of the paired design and its McNemar test against the
    baseline at ``p > 0.3``, pooled over every bin.

    ``baseline`` / ``noisy``: per-injection tables (``bin_index``, ``slot``, ``mag_bin``,
    ``score``); injections pair on ``(bin_index, slot)``. Rates: :func:`detection_rates` of
    ``noisy``; ``pooled_vs_baseline`` is the ``aggregate_all`` entry of :func:`paired_mcnemar`.
    """
    paired = baseline.merge(noisy, on=["bin_index", "slot"], suffixes=("_base", "_gain"))
    test = paired_mcnemar(
        labels,
        paired["bin_index"].to_numpy(),
        paired["score_base"] > 0.3,
        paired["score_gain"] > 0.3,
        {"all": list(labels)},
    )
    return {**detection_rates(noisy), "pooled_vs_baseline": test["aggregate_all"]}
