"""N1 / N2 classes of negatives (numbers from :class:`~.negative_config.N1Rule`/``N2Rule``).

* **N1** (representative galaxies): non-PSF TYPE and the DESI LRG (south) colour cuts::

      z - W1 > 0.8 (r - z) - 0.6
      z_fiber < 21.6
      (g - W1 > 2.9) or (r - W1 > 1.8)
      ((r - W1 > 1.8 (W1 - 17.14)) and (r - W1 > W1 - 16.33)) or (r - W1 > 3.3)

* **N2** (hard confusers), any of: ``extended`` (TYPE in EXP/DEV/SER and SHAPE_R >= 2.0"),
  ``high_sersic`` (TYPE SER with SERSIC >= 4), ``blue_extended`` (g - r < 0.5 and
  SHAPE_R >= 1.0", TYPE in REX/EXP/SER: ring/spiral-like discs). A galaxy meeting both the N1
  and an N2 rule gets ``overlap_class`` (default N1).

Magnitudes are extinction corrected (:func:`~.quality.extinction_corrected_mag`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
import pandas as pd

from stronglens_assets.science.catalogs.sweeps import SWEEP_COLUMNS
from stronglens_assets.science.core.columns import require_columns
from stronglens_assets.science.samples.negative_config import NegativeSelectionConfig
from stronglens_assets.science.samples.quality import SweepTable

__all__ = ["CLASS_LABELS", "RULE_LABELS", "classify", "classify_negatives", "magnitudes"]

CLASS_LABELS: tuple[str, ...] = ("", "N1", "N2")
"""Class codes 0, 1, 2 (0 = neither)."""
RULE_LABELS: tuple[str, ...] = ("", "lrg", "extended", "high_sersic", "blue_extended")
"""Rule that assigned the class: code 1 -> N1; 2..4 -> N2 (first matching N2 rule)."""


_MAG_COLUMNS = {
    "g": ("FLUX_G", "MW_TRANSMISSION_G"),
    "r": ("FLUX_R", "MW_TRANSMISSION_R"),
    "z": ("FLUX_Z", "MW_TRANSMISSION_Z"),
    "w1": ("FLUX_W1", "MW_TRANSMISSION_W1"),
    "zfiber": ("FIBERFLUX_Z", "MW_TRANSMISSION_Z"),
}


def magnitudes(t: SweepTable) -> dict[str, npt.NDArray[np.float64]]:
    return {band: t.mag(*cols) for band, cols in _MAG_COLUMNS.items()}


def classify(
    t: SweepTable, cfg: NegativeSelectionConfig, mags: Mapping[str, np.ndarray]
) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.int8]]:
    """(class code 0/1/2, rule code 0..4) per row; see CLASS_LABELS / RULE_LABELS."""
    n1, n2 = cfg.n1, cfg.n2
    g, r, z, w1 = mags["g"], mags["r"], mags["z"], mags["w1"]
    shape_r = t.col("SHAPE_R")
    with np.errstate(invalid="ignore"):
        rw1 = r - w1
        is_n1 = (
            t.type_in(n1.types)
            & (z - w1 > n1.zw1_rz_slope * (r - z) + n1.zw1_rz_intercept)
            & (mags["zfiber"] < n1.max_zfiber_mag)
            & ((g - w1 > n1.min_gw1) | (rw1 > n1.min_rw1))
            & (
                ((rw1 > n1.rw1_w1_slope * (w1 - n1.rw1_w1_pivot)) & (rw1 > w1 - n1.rw1_w1_offset))
                | (rw1 > n1.min_rw1_red)
            )
        )
        extended = t.type_in(n2.extended_types) & (shape_r >= n2.min_shape_r_arcsec)
        high_sersic = t.type_in(n2.sersic_types) & (t.col("SERSIC") >= n2.min_sersic)
        blue = (
            t.type_in(n2.blue_types)
            & (g - r < n2.max_gr_blue)
            & (shape_r >= n2.min_shape_r_blue_arcsec)
        )
    n2_rule = np.zeros(len(t), dtype=np.int8)
    n2_rule[blue] = 4  # later assignments win: the first matching rule in RULE_LABELS order
    n2_rule[high_sersic] = 3
    n2_rule[extended] = 2
    is_n2 = n2_rule > 0
    if cfg.overlap_class == "N1":
        cls = np.where(is_n1, 1, np.where(is_n2, 2, 0)).astype(np.int8)
    else:
        cls = np.where(is_n2, 2, np.where(is_n1, 1, 0)).astype(np.int8)
    rule = np.where(cls == 1, 1, np.where(cls == 2, n2_rule, 0)).astype(np.int8)
    return cls, rule


def classify_negatives(df: pd.DataFrame, cfg: NegativeSelectionConfig) -> npt.NDArray[np.str_]:
    """Class of each row by the N1/N2 rules alone (no quality gates, no exclusion).

    Returns a ``<U2`` array of ``"N1"``, ``"N2"`` or ``""`` (neither).
    """
    require_columns(df.columns, SWEEP_COLUMNS, "sweep table")
    t = SweepTable(df)
    cls, _ = classify(t, cfg, magnitudes(t))
    return np.asarray(CLASS_LABELS, dtype="<U2")[cls]
