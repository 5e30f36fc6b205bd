"""Quality gates of DR10 sources (negatives and positives alike).

Magnitudes are AB, extinction corrected: ``m = 22.5 - 2.5 log10(FLUX / MW_TRANSMISSION)``
with fluxes in nanomaggies (non-positive flux -> NaN magnitude, which fails every cut).
Gates (numbers from :class:`~.negative_config.QualityGates`): FLUX_G, FLUX_R, FLUX_Z > 0;
MW_TRANSMISSION_G/R/Z > 0 (finite); NOBS_G/R/Z >= ``min_nobs``; no MASKBITS bit of
``exclude_maskbits`` set (default BRIGHT=1, GALAXY=12, CLUSTER=13); z < ``max_mag_z`` (20,
the DR10 lens-search limit); TYPE not in ``exclude_types`` (PSF, DUP). The first failing gate
of a row is its reason (:data:`GATE_REASONS`, :func:`quality_reasons`).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt
import pandas as pd

from stronglens_assets.science.catalogs.sweeps import SWEEP_COLUMNS
from stronglens_assets.science.core.columns import require_columns
from stronglens_assets.science.core.units import nanomaggies_to_mag
from stronglens_assets.science.samples.negative_config import NegativeSelectionConfig

__all__ = [
    "GATE_REASONS",
    "SweepTable",
    "extinction_corrected_mag",
    "quality_codes",
    "quality_mask",
    "quality_reasons",
]


def extinction_corrected_mag(
    flux: npt.ArrayLike, mw_transmission: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """AB magnitude ``22.5 - 2.5 log10(flux / mw_transmission)``; flux in nanomaggies.

    Non-positive or non-finite flux gives NaN, and so does a non-positive or non-finite
    ``mw_transmission`` (a zero transmission must not become an infinitely bright source).
    """
    mw = np.asarray(mw_transmission, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.asarray(flux, dtype=np.float64) / np.where(mw > 0, mw, np.nan)
    return nanomaggies_to_mag(f)


class SweepTable:
    """NumPy view of sweep columns restricted to row positions ``idx`` (None = all rows).

    TYPE is factorized once; membership tests are table look-ups on the integer codes.
    """

    def __init__(self, df: pd.DataFrame) -> None:
        self.df = df
        self.idx: npt.NDArray[np.intp] | None = None
        codes, uniques = pd.factorize(df["TYPE"], use_na_sentinel=True)
        self.type_codes = np.asarray(codes)
        self.type_names = [str(u).strip() for u in uniques]
        self._cache: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.df) if self.idx is None else self.idx.size

    def rows(self) -> npt.NDArray[np.intp]:
        """Positions (into the DataFrame) of the rows in view."""
        return np.arange(len(self.df)) if self.idx is None else self.idx

    def col(self, name: str) -> np.ndarray:
        if name not in self._cache:
            arr = self.df[name].to_numpy()
            self._cache[name] = arr if self.idx is None else arr[self.idx]
        return self._cache[name]

    def take(self, positions: npt.NDArray[np.intp]) -> SweepTable:
        """View of the rows at ``positions`` (relative to this view)."""
        out = object.__new__(SweepTable)
        out.df = self.df
        out.idx = positions if self.idx is None else self.idx[positions]
        out.type_codes = self.type_codes[positions]
        out.type_names = self.type_names
        out._cache = {k: v[positions] for k, v in self._cache.items()}
        return out

    def type_in(self, names: Iterable[str]) -> npt.NDArray[np.bool_]:
        wanted = set(names)
        table = np.array([u in wanted for u in self.type_names] + [False], dtype=bool)
        return table[self.type_codes]  # code -1 (missing TYPE) -> last entry, False

    def mag(self, flux: str, mw: str) -> npt.NDArray[np.float64]:
        return extinction_corrected_mag(self.col(flux), self.col(mw))


GATE_REASONS: tuple[str, ...] = ("", "flux", "mw_transmission", "nobs", "maskbits", "type", "mag_z")
"""Quality-gate failure reasons by code (0 = passes), in the order the gates are tested: the
first failing gate names the row. ``flux``: FLUX_G/R/Z not finite and > 0;
``mw_transmission``: MW_TRANSMISSION_G/R/Z not finite and > 0 (a zero transmission would give
an infinitely bright, -inf magnitude); ``nobs``: NOBS_G/R/Z < ``min_nobs`` (or missing);
``maskbits``; ``type``; ``mag_z``: not z < ``max_mag_z``."""


def quality_codes(t: SweepTable, cfg: NegativeSelectionConfig) -> npt.NDArray[np.int8]:
    """First failing gate per row as a code into :data:`GATE_REASONS` (0 = passes)."""
    q = cfg.quality
    code = np.zeros(len(t), dtype=np.int8)

    def fail(bad: np.ndarray, reason: str) -> None:
        code[(code == 0) & bad] = GATE_REASONS.index(reason)

    with np.errstate(invalid="ignore"):
        for band in "GRZ":
            flux = t.col(f"FLUX_{band}")
            fail(~(np.isfinite(flux) & (flux > 0)), "flux")
        for band in "GRZ":
            mw = t.col(f"MW_TRANSMISSION_{band}")
            fail(~(np.isfinite(mw) & (mw > 0)), "mw_transmission")
        for band in "GRZ":
            fail(~(t.col(f"NOBS_{band}") >= q.min_nobs), "nobs")
        bits = 0
        for b in q.exclude_maskbits:
            bits |= 1 << b
        if bits:
            fail((t.col("MASKBITS").astype(np.int64, copy=False) & bits) != 0, "maskbits")
        if q.exclude_types:
            fail(t.type_in(q.exclude_types), "type")
        # the magnitude cut on the survivors only (logarithms are the expensive part)
        alive = np.flatnonzero(code == 0)
        mag_z = extinction_corrected_mag(t.col("FLUX_Z")[alive], t.col("MW_TRANSMISSION_Z")[alive])
        code[alive[~(mag_z < q.max_mag_z)]] = GATE_REASONS.index("mag_z")
    return code


def quality_mask(df: pd.DataFrame, cfg: NegativeSelectionConfig) -> npt.NDArray[np.bool_]:
    """Rows passing the quality gates (see module docstring): bool array, True = keep."""
    require_columns(df.columns, SWEEP_COLUMNS, "sweep table")
    return quality_codes(SweepTable(df), cfg) == 0


def quality_reasons(df: pd.DataFrame, cfg: NegativeSelectionConfig) -> npt.NDArray[np.str_]:
    """Why each row fails the quality gates: ``""`` (passes) or a :data:`GATE_REASONS` name.

    The same gates as :func:`quality_mask` (``quality_reasons(df) == ""`` equals it), so
    positives can be gated exactly like negatives. Nullable columns (e.g. NOBS of a
    crossmatch) may hold missing values: they fail their gate.
    """
    columns = ("FLUX_G", "FLUX_R", "FLUX_Z", "MW_TRANSMISSION_G", "MW_TRANSMISSION_R")
    columns += ("MW_TRANSMISSION_Z", "NOBS_G", "NOBS_R", "NOBS_Z", "MASKBITS", "TYPE")
    require_columns(df.columns, columns, "table to gate")
    clean = pd.DataFrame(index=pd.RangeIndex(len(df)))
    for name in columns:
        col = df[name].reset_index(drop=True)
        if name == "TYPE":
            clean[name] = col.astype(object).where(col.notna(), None)
        elif name == "MASKBITS":
            clean[name] = col.to_numpy(dtype=np.float64, na_value=np.nan)
            clean[name] = np.where(np.isfinite(clean[name]), clean[name], 0).astype(np.int64)
            missing = col.isna().to_numpy()
            if missing.any():  # unknown MASKBITS: every bit set, so it fails the gate
                clean.loc[missing, name] = -1
        else:
            clean[name] = col.to_numpy(dtype=np.float64, na_value=np.nan)
    codes = quality_codes(SweepTable(clean), cfg)
    return np.asarray(GATE_REASONS, dtype=object)[codes].astype(str)
