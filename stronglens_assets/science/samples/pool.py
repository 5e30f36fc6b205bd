"""The negative pool of one sweep partition: quality gates, N1/N2 classes, known-lens
exclusion (:func:`~stronglens_assets.science.catalogs.crossmatch.within_radius`) and the
HEALPix split with its guard. Columnar NumPy throughout (no per-row Python)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from stronglens_assets.science.catalogs.crossmatch import within_radius
from stronglens_assets.science.catalogs.healpix import healpix_pixel
from stronglens_assets.science.catalogs.sweeps import SWEEP_COLUMNS
from stronglens_assets.science.core.columns import require_columns
from stronglens_assets.science.samples.classes import (
    CLASS_LABELS,
    RULE_LABELS,
    classify,
    magnitudes,
)
from stronglens_assets.science.samples.negative_config import NegativeSelectionConfig
from stronglens_assets.science.samples.quality import GATE_REASONS, SweepTable, quality_codes
from stronglens_assets.science.samples.splits import SPLIT_LABELS, split_codes, split_guard_mask

__all__ = ["POOL_EXTRA_COLUMNS", "build_negative_pool"]

POOL_EXTRA_COLUMNS: tuple[str, ...] = (
    "FLUX_I",
    "FLUX_IVAR_I",
    "MW_TRANSMISSION_I",
    "PSFSIZE_I",
    "PSFDEPTH_G",
    "PSFDEPTH_R",
    "PSFDEPTH_Z",
    "GALDEPTH_G",
    "GALDEPTH_R",
    "GALDEPTH_Z",
)
"""Optional sweep columns copied into the pool when present."""


def _categorical(codes: np.ndarray, labels: Sequence[str]) -> pd.Categorical:
    return pd.Categorical.from_codes(codes.astype(np.int8, copy=False), categories=list(labels))


def build_negative_pool(
    sweep_df: pd.DataFrame,
    known_lens_ra: npt.ArrayLike,
    known_lens_dec: npt.ArrayLike,
    cfg: NegativeSelectionConfig,
    partition_key: str,
) -> pd.DataFrame:
    """Negative pool of one sweep partition: quality gates, N1/N2 classes, known-lens exclusion
    and the HEALPix split.

    Returns the kept rows (input order) with the sweep columns (:data:`SWEEP_COLUMNS` plus
    :data:`POOL_EXTRA_COLUMNS` present), extinction-corrected AB magnitudes ``mag_g``,
    ``mag_r``, ``mag_z``, ``mag_w1`` (float32), ``pool_class`` (N1/N2), ``pool_rule`` (lrg,
    extended, high_sersic, blue_extended), ``split`` (train/val/test) - all three categorical -
    ``split_cell`` (int64 NEST at ``split_nside``), ``source_partition`` and
    ``selection_version``. Counts per stage are in ``result.attrs["pool_stats"]``.
    """
    require_columns(sweep_df.columns, SWEEP_COLUMNS, f"sweep partition {partition_key}")
    n_in = len(sweep_df)
    table = SweepTable(sweep_df)
    gate_codes = quality_codes(table, cfg)
    gate_counts = np.bincount(gate_codes, minlength=len(GATE_REASONS))
    table = table.take(np.flatnonzero(gate_codes == 0))
    n_quality = len(table)
    mags = magnitudes(table)
    cls, rule = classify(table, cfg, mags)
    sel = np.flatnonzero(cls > 0)
    n_classified = sel.size
    ra = table.col("RA")[sel].astype(np.float64, copy=False)
    dec = table.col("DEC")[sel].astype(np.float64, copy=False)
    near = within_radius(ra, dec, known_lens_ra, known_lens_dec, cfg.exclusion_radius_arcsec)
    if near.any():
        far = ~near
        sel, ra, dec = sel[far], ra[far], dec[far]
    guarded = split_guard_mask(ra, dec, cfg)
    if guarded.any():
        keep = ~guarded
        sel, ra, dec = sel[keep], ra[keep], dec[keep]
    idx = table.rows()[sel]
    cls, rule = cls[sel], rule[sel]
    cells = np.asarray(healpix_pixel(ra, dec, cfg.split_nside), dtype=np.int64).reshape(-1)
    split = split_codes(cells, cfg)

    columns: dict[str, Any] = {}
    for name in (*SWEEP_COLUMNS, *POOL_EXTRA_COLUMNS):
        if name in sweep_df.columns:
            col = sweep_df[name]
            if isinstance(col.dtype, np.dtype):
                columns[name] = col.to_numpy()[idx]
            else:
                columns[name] = col.take(idx).reset_index(drop=True)
    for band in ("g", "r", "z", "w1"):
        columns[f"mag_{band}"] = mags[band][sel].astype(np.float32)
    n_out = idx.size
    columns["pool_class"] = _categorical(cls - 1, CLASS_LABELS[1:])
    columns["pool_rule"] = _categorical(rule - 1, RULE_LABELS[1:])
    columns["split"] = _categorical(split, SPLIT_LABELS)
    columns["split_cell"] = cells
    columns["source_partition"] = pd.Categorical.from_codes(
        np.zeros(n_out, dtype=np.int8), categories=[str(partition_key)]
    )
    columns["selection_version"] = pd.Categorical.from_codes(
        np.zeros(n_out, dtype=np.int8), categories=[cfg.selection_version]
    )
    pool = pd.DataFrame(columns)
    counts = np.bincount(cls, minlength=3)
    pool.attrs["pool_stats"] = {
        "partition": str(partition_key),
        "selection_version": cfg.selection_version,
        "n_input": int(n_in),
        "n_quality": n_quality,
        "n_rejected_by_gate": {
            reason: int(gate_counts[code]) for code, reason in enumerate(GATE_REASONS) if code
        },
        "n_classified": int(n_classified),
        "n_excluded_near_known_lens": int(near.sum()),
        "n_excluded_split_guard": int(guarded.sum()),
        "n_pool": int(n_out),
        "n_n1": int(counts[1]),
        "n_n2": int(counts[2]),
    }
    return pool
