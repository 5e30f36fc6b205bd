"""The D06 completeness grid: theta_E x PSF FWHM x 5-sigma depth, and its published table.

Cells (:func:`grid_cells`): the Cartesian product of the axes, theta_E slowest, depth fastest
(385 cells in the paper). A cell's hosts are those whose observing conditions fall in its PSF
and depth bins (:mod:`.hosts`); a cell without hosts is empty (no injections). Each non-empty
cell gets ``injections_per_cell`` injections with theta_E fixed to the cell's and the source
drawn per injection from the prior (source magnitude U(23, 26) in the paper).

The table (:func:`selection_function_table`, the published ``selection_function.csv``): one
row per (cell, threshold, source-magnitude bin) with the published columns
(:data:`~stronglens_assets.science.reporting.d06_results.SELECTION_FUNCTION_COLUMNS`):

* bins ``all``; the unlensed r magnitude bins ``23-24``, ``24-25``, ``25-26``; the lensed
  (image-plane) r magnitude bins ``lensed_18-20`` ... ``lensed_24-27``; each ``[lo, hi)``;
* ``n_injections`` (successful), ``n_detected`` (``p > threshold``), ``n_failed`` (the cell's
  failed injections, on its ``all`` rows; 0 on the bin rows), ``completeness`` = k/n;
* ``ci68_*``, ``ci95_*``: equal-tailed Jeffreys intervals, Beta(k + 1/2, n - k + 1/2)
  quantiles at 68% and 95% (:func:`~stronglens_assets.science.stats.binomial.jeffreys_interval`);
* ``mean_score``, ``mean_arc_snr`` (r-band annulus S/N), ``sufficient`` = ``n_injections >=
  sufficient_min_injections`` (10 in the published table);
* beside the published columns, the false-positive floor: ``n_host_detected`` (of the same
  injections, how many hosts score ``p > threshold`` with no arc) and ``host_only_rate``.

Empty cells and empty bins keep ``n_injections = 0`` and NaN rates. Marginal rates
(:func:`marginal_rates`) carry 95% Wilson intervals.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from stronglens_assets.errors import StronglensError
from stronglens_assets.science.stats.binomial import jeffreys_interval
from stronglens_assets.science.stats.detection import DETECTION_RULE
from stronglens_assets.science.stats.intervals import wilson_interval
from stronglens_assets.science.stats.thresholds import ThresholdSpec

__all__ = [
    "AXES",
    "GridError",
    "grid_cells",
    "magnitude_bins",
    "marginal_rates",
    "selection_function_table",
    "threshold_type",
]

AXES: tuple[str, ...] = ("theta_e", "psf_fwhm", "depth_5sig")
"""The grid's axes, slowest-varying first (arcsec, arcsec FWHM, AB mag)."""
CI68 = 0.68
CI95 = 0.95


class GridError(StronglensError, ValueError):
    """The grid cannot run (e.g. every cell is empty); the message says why."""


def grid_cells(theta_e: Sequence[float], psf_fwhm: Sequence[float], depth: Sequence[float]):
    """One row per cell: ``cell`` (0-based), the three axis values and the PSF / depth bin
    indices ``psf_bin``, ``depth_bin``."""
    rows = [
        (t, p, d, pi, di)
        for t, (pi, p), (di, d) in itertools.product(theta_e, enumerate(psf_fwhm), enumerate(depth))
    ]
    table = pd.DataFrame(rows, columns=[*AXES, "psf_bin", "depth_bin"])
    table.insert(0, "cell", np.arange(len(table), dtype=np.int64))
    return table


def _edge(value: float) -> str:
    return f"{value:g}"


def magnitude_bins(
    source_edges: Sequence[float], lensed_edges: Sequence[float]
) -> list[tuple[str, str | None, float, float]]:
    """``(label, column, lo, hi)`` per bin: ``all`` (column None), the source bins (column
    ``source_mag``) and the lensed bins (column ``lensed_mag``)."""
    out: list[tuple[str, str | None, float, float]] = [("all", None, -np.inf, np.inf)]
    for lo, hi in itertools.pairwise(source_edges):
        out.append((f"{_edge(lo)}-{_edge(hi)}", "source_mag", lo, hi))
    for lo, hi in itertools.pairwise(lensed_edges):
        out.append((f"lensed_{_edge(lo)}-{_edge(hi)}", "lensed_mag", lo, hi))
    return out


def threshold_type(spec: ThresholdSpec) -> str:
    """``fixed`` or ``FPR=1.0e-03`` (the published spelling)."""
    return "fixed" if spec.fpr_target is None else f"FPR={spec.fpr_target:.1e}"


def _rows_for(
    cell: Mapping[str, Any],
    injections: pd.DataFrame,
    n_failed: int,
    thresholds: Sequence[ThresholdSpec],
    bins: Sequence[tuple[str, str | None, float, float]],
    sufficient_min: int,
) -> list[dict[str, Any]]:
    rows = []
    for spec in thresholds:
        for label, column, lo, hi in bins:
            if column is None:
                sub = injections
            else:
                values = injections[column].to_numpy(np.float64)
                sub = injections[(values >= lo) & (values < hi)]
            n = len(sub)
            k = int((sub["score"].to_numpy() > spec.value).sum())
            k_host = int((sub["host_score"].to_numpy() > spec.value).sum())
            row: dict[str, Any] = {
                "theta_e": cell["theta_e"],
                "psf_fwhm": cell["psf_fwhm"],
                "depth_5sig": cell["depth_5sig"],
                "threshold": spec.value,
                "threshold_type": threshold_type(spec),
                "fpr_target": spec.fpr_target,
                "source_mag_bin": label,
                "n_injections": n,
                "n_detected": k,
                "n_failed": n_failed if column is None else 0,
            }
            if n:
                lo68, hi68 = jeffreys_interval(k, n, CI68)
                lo95, hi95 = jeffreys_interval(k, n, CI95)
                row.update(
                    completeness=k / n,
                    ci68_lo=float(lo68),
                    ci68_hi=float(hi68),
                    ci95_lo=float(lo95),
                    ci95_hi=float(hi95),
                    mean_score=float(sub["score"].mean()),
                    mean_arc_snr=float(sub["arc_snr"].mean()),
                )
            else:
                row.update(
                    completeness=np.nan,
                    ci68_lo=np.nan,
                    ci68_hi=np.nan,
                    ci95_lo=np.nan,
                    ci95_hi=np.nan,
                    mean_score=np.nan,
                    mean_arc_snr=np.nan,
                )
            row["sufficient"] = bool(n >= sufficient_min)
            row["n_host_detected"] = k_host
            row["host_only_rate"] = k_host / n if n else np.nan
            rows.append(row)
    return rows


def selection_function_table(
    cells: pd.DataFrame,
    injections: pd.DataFrame,
    failed: Mapping[int, int],
    thresholds: Sequence[ThresholdSpec],
    *,
    source_mag_bins: Sequence[float],
    lensed_mag_bins: Sequence[float],
    sufficient_min: int = 10,
) -> pd.DataFrame:
    """The published table (module docstring).

    Args:
        cells: :func:`grid_cells`.
        injections: one row per successful injection: ``cell``, ``score``, ``host_score``
            (the host without an arc), ``source_mag``, ``lensed_mag`` (r, AB), ``arc_snr``.
        failed: failed injections per cell.
    """
    if not thresholds:
        raise GridError("no threshold to evaluate")
    bins = magnitude_bins(source_mag_bins, lensed_mag_bins)
    by_cell = dict(tuple(injections.groupby("cell", sort=True)))
    empty = injections.iloc[0:0]
    rows: list[dict[str, Any]] = []
    for cell in cells.to_dict("records"):
        sub = by_cell.get(int(cell["cell"]), empty)
        rows += _rows_for(
            cell, sub, int(failed.get(int(cell["cell"]), 0)), thresholds, bins, sufficient_min
        )
    table = pd.DataFrame(rows)
    for column in ("n_injections", "n_detected", "n_failed", "n_host_detected"):
        table[column] = table[column].astype(np.int64)
    return table


def marginal_rates(
    table: pd.DataFrame, thresholds: Sequence[ThresholdSpec], axis: str | None = None
) -> dict[str, Any]:
    """Completeness over all cells (``axis`` None) or per value of ``axis``, at each
    threshold, from the ``all`` rows: ``{label: {k, n, rate, wilson95, host_k,
    host_rate}}`` (per axis value one level deeper, keyed by ``f"{value:g}"``)."""
    rows = table[table["source_mag_bin"] == "all"]

    def rate(sub: pd.DataFrame) -> dict[str, Any]:
        k, n = int(sub["n_detected"].sum()), int(sub["n_injections"].sum())
        host = int(sub["n_host_detected"].sum()) if "n_host_detected" in sub else None
        lo, hi = wilson_interval(k, n, CI95) if n else (np.nan, np.nan)
        return {
            "k": k,
            "n": n,
            "rate": k / n if n else None,
            "wilson95": [float(lo), float(hi)] if n else None,
            "host_k": host,
            "host_rate": (host / n) if (n and host is not None) else None,
        }

    out: dict[str, Any] = {"rule": DETECTION_RULE}
    for spec in thresholds:
        mine = rows[
            (rows["threshold_type"] == threshold_type(spec))
            & np.isclose(rows["threshold"], spec.value, rtol=0, atol=1e-12)
        ]
        if axis is None:
            out[spec.label] = rate(mine)
        else:
            out[spec.label] = {
                f"{value:g}": rate(group) for value, group in mine.groupby(axis, sort=True)
            }
    return out
