"""Negative-sample selection: quality gates, N1/N2 classes, known-lens exclusion, HEALPix
splits and the stratified manifest sampler. Columnar NumPy throughout (no per-row Python).

Definitions (all numbers come from :class:`NegativeSelectionConfig`, ``configs/negatives.yaml``):

* magnitudes are AB, extinction corrected: ``m = 22.5 - 2.5 log10(FLUX / MW_TRANSMISSION)``
  with fluxes in nanomaggies (non-positive flux -> NaN magnitude, which fails every cut);
* **quality gates**: FLUX_G, FLUX_R, FLUX_Z > 0; MW_TRANSMISSION_G/R/Z > 0 (finite); NOBS_G/R/Z
  >= ``min_nobs``; no MASKBITS bit of
  ``exclude_maskbits`` set (default BRIGHT=1, GALAXY=12, CLUSTER=13); z < ``max_mag_z`` (20, the
  DR10 lens-search limit); TYPE not in ``exclude_types`` (PSF, DUP). The first failing gate
  of a row is its reason (:data:`GATE_REASONS`, :func:`quality_reasons`); positives are gated
  by the same function;
* **N1** (representative galaxies): non-PSF TYPE and the DESI LRG (south) colour cuts::

      z - W1 > 0.8 (r - z) - 0.6
      z_fiber < 21.6
      (g - W1 > 2.9) or (r - W1 > 1.8)
      ((r - W1 > 1.8 (W1 - 17.14)) and (r - W1 > W1 - 16.33)) or (r - W1 > 3.3)

* **N2** (hard confusers), any of: ``extended`` (TYPE in EXP/DEV/SER and SHAPE_R >= 2.0"),
  ``high_sersic`` (TYPE SER with SERSIC >= 4), ``blue_extended`` (g - r < 0.5 and
  SHAPE_R >= 1.0", TYPE in REX/EXP/SER: ring/spiral-like discs). A galaxy meeting both the N1
  and an N2 rule gets ``overlap_class`` (default N1);
* **exclusion**: galaxies within ``exclusion_radius_arcsec`` of any known lens are dropped;
* **split**: NEST cell at ``split_nside`` of (RA, DEC); its split is a hash of
  (``split_seed``, cell) mapped onto the fractions (see :func:`split_of_cells`), so a cell is
  in exactly one split and its split never changes when the footprint grows;
* **split guard**: a galaxy whose cutout box may reach a cell of another split is dropped
  (:func:`split_guard_mask`), so no pixel is in a train and a val/test cutout.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import healpy as hp
import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import field_validator, model_validator
from scipy.spatial import cKDTree

from stronglens_assets.config import StrictModel, load_profiled_config
from stronglens_assets.science.catalogs.healpix import healpix_pixel
from stronglens_assets.science.catalogs.lenscat import check_required_columns
from stronglens_assets.science.catalogs.sweeps import SWEEP_COLUMNS, SWEEP_TYPES

__all__ = [
    "CLASS_LABELS",
    "GATE_REASONS",
    "NEGATIVES_CONFIG_FILENAME",
    "POOL_EXTRA_COLUMNS",
    "RULE_LABELS",
    "SPLIT_LABELS",
    "ManifestPlan",
    "N1Rule",
    "N2Rule",
    "NegativeSelectionConfig",
    "QualityGates",
    "SplitFractions",
    "assign_split",
    "build_negative_pool",
    "classify_negatives",
    "extinction_corrected_mag",
    "known_lens_exclusion_mask",
    "load_negative_selection_config",
    "plan_negative_manifest",
    "quality_mask",
    "quality_reasons",
    "sample_negative_manifest",
    "split_guard_mask",
    "split_of_cells",
]

NEGATIVES_CONFIG_FILENAME = "negatives.yaml"
AB_ZEROPOINT_MAG = 22.5
CLASS_LABELS: tuple[str, ...] = ("", "N1", "N2")
"""Class codes 0, 1, 2 (0 = neither)."""
RULE_LABELS: tuple[str, ...] = ("", "lrg", "extended", "high_sersic", "blue_extended")
"""Rule that assigned the class: code 1 -> N1; 2..4 -> N2 (first matching N2 rule)."""
SPLIT_LABELS: tuple[str, ...] = ("train", "val", "test")
"""Split codes 0, 1, 2."""
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

_MAX_SPLIT_NSIDE = 8192
_GUARD_TEST_NSIDE = 2**18  # resolution of the split guard's inclusive polygon test (0.8")
_GUARD_RESOLUTION_FACTOR = 3.0  # pre-filter pixels are >= 3 box half-diagonals across
_MAX_PREFILTER_NSIDE = 1024  # lookup table of 12 * 1024**2 booleans (12.6 MB)
_U64 = np.uint64


# ----------------------------------------------------------------------------------------------
# configuration
# ----------------------------------------------------------------------------------------------
def _check_types(value: tuple[str, ...]) -> tuple[str, ...]:
    unknown = sorted(set(value) - set(SWEEP_TYPES))
    if unknown:
        raise ValueError(f"unknown Tractor TYPE(s) {unknown}; known: {list(SWEEP_TYPES)}")
    return value


class QualityGates(StrictModel):
    """Quality gates applied before classification (positive g/r/z flux is always required)."""

    min_nobs: int = 1
    """Minimum NOBS in each of g, r, z."""
    exclude_maskbits: tuple[int, ...] = (1, 12, 13)
    """MASKBITS bit numbers that reject a source (1 BRIGHT, 12 GALAXY, 13 CLUSTER)."""
    max_mag_z: float = 20.0
    """Extinction-corrected AB z magnitude limit (z < max_mag_z)."""
    exclude_types: tuple[str, ...] = ("PSF", "DUP")
    """Tractor TYPEs rejected outright (point sources, Gaia duplicates)."""

    @field_validator("exclude_maskbits")
    @classmethod
    def _bits(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        bad = [b for b in value if not 0 <= b <= 31]
        if bad:
            raise ValueError(f"MASKBITS bit numbers must be in [0, 31], got {bad}")
        return value

    @field_validator("exclude_types")
    @classmethod
    def _types(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _check_types(value)

    @field_validator("min_nobs")
    @classmethod
    def _nobs(cls, value: int) -> int:
        if value < 0:
            raise ValueError("must be >= 0")
        return value


class N1Rule(StrictModel):
    """N1: DESI LRG-like colour cuts (south, extinction-corrected AB magnitudes)."""

    types: tuple[str, ...] = ("REX", "EXP", "DEV", "SER")
    zw1_rz_slope: float = 0.8
    """z - W1 > zw1_rz_slope (r - z) + zw1_rz_intercept."""
    zw1_rz_intercept: float = -0.6
    max_zfiber_mag: float = 21.6
    """z_fiber (from FIBERFLUX_Z) < max_zfiber_mag."""
    min_gw1: float = 2.9
    """(g - W1 > min_gw1) or (r - W1 > min_rw1)."""
    min_rw1: float = 1.8
    rw1_w1_slope: float = 1.8
    """(r - W1 > rw1_w1_slope (W1 - rw1_w1_pivot) and r - W1 > W1 - rw1_w1_offset) or
    r - W1 > min_rw1_red."""
    rw1_w1_pivot: float = 17.14
    rw1_w1_offset: float = 16.33
    min_rw1_red: float = 3.3

    @field_validator("types")
    @classmethod
    def _types(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _check_types(value)


class N2Rule(StrictModel):
    """N2: hard confusers; a galaxy is N2 when any enabled branch applies."""

    extended_types: tuple[str, ...] = ("EXP", "DEV", "SER")
    min_shape_r_arcsec: float = 2.0
    """``extended``: TYPE in extended_types and SHAPE_R >= this [arcsec]."""
    sersic_types: tuple[str, ...] = ("SER",)
    min_sersic: float = 4.0
    """``high_sersic``: TYPE in sersic_types and SERSIC >= this."""
    blue_types: tuple[str, ...] = ("REX", "EXP", "SER")
    max_gr_blue: float = 0.5
    """``blue_extended``: g - r < max_gr_blue and SHAPE_R >= min_shape_r_blue_arcsec."""
    min_shape_r_blue_arcsec: float = 1.0

    @field_validator("extended_types", "sersic_types", "blue_types")
    @classmethod
    def _types(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _check_types(value)


class SplitFractions(StrictModel):
    """Fractions of coarse cells in each split (sum to 1)."""

    train: float = 0.70
    val: float = 0.15
    test: float = 0.15

    @model_validator(mode="after")
    def _sum_to_one(self) -> SplitFractions:
        values = (self.train, self.val, self.test)
        if any(v < 0 for v in values) or abs(sum(values) - 1.0) > 1e-9:
            raise ValueError(f"fractions must be >= 0 and sum to 1, got {values}")
        return self


class NegativeSelectionConfig(StrictModel):
    """Negative pool and manifest configuration (``configs/negatives.yaml``)."""

    selection_version: str
    """Written into every pool row; change it whenever a rule or threshold changes."""
    quality: QualityGates = QualityGates()
    exclusion_radius_arcsec: float = 20.0
    """Galaxies closer than this to any known lens are dropped [arcsec]."""
    n1: N1Rule = N1Rule()
    n2: N2Rule = N2Rule()
    overlap_class: Literal["N1", "N2"] = "N1"
    """Class of a galaxy meeting both N1 and an N2 rule."""
    split_nside: int = 128
    """nside of the coarse NEST cells that carry the split."""
    split_seed: int = 20260210
    split_fractions: SplitFractions = SplitFractions()
    split_guard_half_width_arcsec: float = 13.231
    """Half the side of a cutout box [arcsec] (101 px x 0.262"/2): an object whose box may reach
    a split cell of another split is dropped (:func:`split_guard_mask`); 0 disables."""
    manifest_size: int = 510_000
    """Requested number of negatives in the manifest."""
    n1_n2_ratio: tuple[float, float] = (75.0, 25.0)
    ratio_tolerance: float = 0.02
    """Allowed |achieved - target| of the N2 fraction."""
    shortfall: Literal["keep_ratio", "keep_size"] = "keep_ratio"
    """Too few of a class: shrink the manifest to keep the ratio, or fill with the other class."""
    sampling_seed: int = 20260209

    @field_validator("selection_version")
    @classmethod
    def _version(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must be a non-empty string")
        return value

    @field_validator("exclusion_radius_arcsec")
    @classmethod
    def _radius(cls, value: float) -> float:
        if not np.isfinite(value) or value < 0:
            raise ValueError("must be finite and >= 0 arcsec")
        return value

    @field_validator("split_nside")
    @classmethod
    def _nside(cls, value: int) -> int:
        if value < 1 or value & (value - 1) or value > _MAX_SPLIT_NSIDE:
            raise ValueError(f"must be a power of two in [1, {_MAX_SPLIT_NSIDE}], got {value}")
        return value

    @model_validator(mode="after")
    def _guard_fits_cell(self) -> NegativeSelectionConfig:
        resolution = hp.nside2resol(self.split_nside, arcmin=True) * 60.0
        limit = resolution / (_GUARD_RESOLUTION_FACTOR * np.sqrt(2.0))
        if not 0 <= self.split_guard_half_width_arcsec <= limit:
            raise ValueError(
                f"split_guard_half_width_arcsec must be in [0, {limit:.1f}] (the box's "
                f"half-diagonal at most a third of a split cell at split_nside "
                f"{self.split_nside}), got {self.split_guard_half_width_arcsec}"
            )
        return self

    @field_validator("split_seed", "sampling_seed")
    @classmethod
    def _seed(cls, value: int) -> int:
        if not 0 <= value < 2**63:
            raise ValueError("must be in [0, 2**63)")
        return value

    @field_validator("manifest_size")
    @classmethod
    def _size(cls, value: int) -> int:
        if value < 0:
            raise ValueError("must be >= 0")
        return value

    @field_validator("n1_n2_ratio")
    @classmethod
    def _ratio(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not all(np.isfinite(v) and v > 0 for v in value):
            raise ValueError(f"both parts must be > 0, got {value}")
        return value

    @property
    def n2_fraction(self) -> float:
        """Target N2 share of the manifest (0.25 for 75:25)."""
        return self.n1_n2_ratio[1] / (self.n1_n2_ratio[0] + self.n1_n2_ratio[1])


def load_negative_selection_config(
    path: str | os.PathLike[str], profile: str = "full"
) -> NegativeSelectionConfig:
    """Load and validate ``negatives.yaml`` for a size ``profile`` (its ``profiles:``
    overrides, e.g. the demo's finer ``split_nside``); :class:`~stronglens_assets.config.
    ConfigError` names the file and fields on error."""
    return load_profiled_config(path, NegativeSelectionConfig, profile)


# ----------------------------------------------------------------------------------------------
# columnar helpers
# ----------------------------------------------------------------------------------------------
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
        return np.where(np.isfinite(f) & (f > 0), AB_ZEROPOINT_MAG - 2.5 * np.log10(f), np.nan)


class _Table:
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

    def take(self, positions: npt.NDArray[np.intp]) -> _Table:
        """View of the rows at ``positions`` (relative to this view)."""
        out = object.__new__(_Table)
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


def _quality_codes(t: _Table, cfg: NegativeSelectionConfig) -> npt.NDArray[np.int8]:
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


def _quality(t: _Table, cfg: NegativeSelectionConfig) -> npt.NDArray[np.bool_]:
    return _quality_codes(t, cfg) == 0


def quality_mask(df: pd.DataFrame, cfg: NegativeSelectionConfig) -> npt.NDArray[np.bool_]:
    """Rows passing the quality gates (see module docstring): bool array, True = keep."""
    check_required_columns(df.columns, SWEEP_COLUMNS, "sweep table")
    return _quality(_Table(df), cfg)


def quality_reasons(df: pd.DataFrame, cfg: NegativeSelectionConfig) -> npt.NDArray[np.str_]:
    """Why each row fails the quality gates: ``""`` (passes) or a :data:`GATE_REASONS` name.

    The same gates as :func:`quality_mask` (``quality_reasons(df) == ""`` equals it), so
    positives can be gated exactly like negatives. Nullable columns (e.g. NOBS of a
    crossmatch) may hold missing values: they fail their gate.
    """
    columns = ("FLUX_G", "FLUX_R", "FLUX_Z", "MW_TRANSMISSION_G", "MW_TRANSMISSION_R")
    columns += ("MW_TRANSMISSION_Z", "NOBS_G", "NOBS_R", "NOBS_Z", "MASKBITS", "TYPE")
    check_required_columns(df.columns, columns, "table to gate")
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
    codes = _quality_codes(_Table(clean), cfg)
    return np.asarray(GATE_REASONS, dtype=object)[codes].astype(str)


_MAG_COLUMNS = {
    "g": ("FLUX_G", "MW_TRANSMISSION_G"),
    "r": ("FLUX_R", "MW_TRANSMISSION_R"),
    "z": ("FLUX_Z", "MW_TRANSMISSION_Z"),
    "w1": ("FLUX_W1", "MW_TRANSMISSION_W1"),
    "zfiber": ("FIBERFLUX_Z", "MW_TRANSMISSION_Z"),
}


def _mags(t: _Table) -> dict[str, npt.NDArray[np.float64]]:
    return {band: t.mag(*cols) for band, cols in _MAG_COLUMNS.items()}


def _classify(
    t: _Table, cfg: NegativeSelectionConfig, mags: Mapping[str, np.ndarray]
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
    check_required_columns(df.columns, SWEEP_COLUMNS, "sweep table")
    t = _Table(df)
    cls, _ = _classify(t, cfg, _mags(t))
    return np.asarray(CLASS_LABELS, dtype="<U2")[cls]


# ----------------------------------------------------------------------------------------------
# known-lens exclusion
# ----------------------------------------------------------------------------------------------
def _unit_vectors(ra: np.ndarray, dec: np.ndarray) -> npt.NDArray[np.float64]:
    ra_r = np.deg2rad(ra)
    dec_r = np.deg2rad(dec)
    cos_d = np.cos(dec_r)
    return np.stack([cos_d * np.cos(ra_r), cos_d * np.sin(ra_r), np.sin(dec_r)], axis=1)


def _prefilter_nside(radius_arcsec: float) -> int:
    """Largest nside <= 1024 whose pixel size is >= 8x the radius, so a lens's pixel plus its
    8 neighbours contain the whole exclusion disc; 0 if even nside 1 is too fine."""
    nside = _MAX_PREFILTER_NSIDE
    while nside >= 1 and hp.nside2resol(nside, arcmin=True) * 60.0 < 8.0 * radius_arcsec:
        nside //= 2
    return nside


def known_lens_exclusion_mask(
    ra: npt.ArrayLike,
    dec: npt.ArrayLike,
    lens_ra: npt.ArrayLike,
    lens_dec: npt.ArrayLike,
    radius_arcsec: float,
) -> npt.NDArray[np.bool_]:
    """True where (ra, dec) [deg] lies within ``radius_arcsec`` (inclusive) of a known lens.

    Two stages, both vectorized: a NEST HEALPix look-up table marks the pixels holding a lens
    or adjacent to one (pixel size >= 8 radii); only sources in marked pixels are queried in a
    KD-tree (``scipy.spatial.cKDTree``) of the lens unit vectors with the chord distance
    ``2 sin(radius / 2)``. Exact on the sphere, RA wrap and poles included. Non-finite lens
    positions are ignored; invalid source positions (NaN, |dec| > 90) are never flagged.
    """
    ra_a = np.asarray(ra, dtype=np.float64).ravel()
    dec_a = np.asarray(dec, dtype=np.float64).ravel()
    lra = np.asarray(lens_ra, dtype=np.float64).ravel()
    ldec = np.asarray(lens_dec, dtype=np.float64).ravel()
    if ra_a.shape != dec_a.shape or lra.shape != ldec.shape:
        raise ValueError("ra/dec (and lens_ra/lens_dec) must have the same length")
    if not np.isfinite(radius_arcsec) or radius_arcsec < 0:
        raise ValueError(f"radius_arcsec must be finite and >= 0, got {radius_arcsec}")
    out = np.zeros(ra_a.size, dtype=bool)
    good = np.isfinite(lra) & np.isfinite(ldec) & (np.abs(ldec) <= 90.0)
    lra, ldec = lra[good], ldec[good]
    if ra_a.size == 0 or lra.size == 0:
        return out
    valid = np.isfinite(ra_a) & np.isfinite(dec_a) & (np.abs(dec_a) <= 90.0)
    nside = _prefilter_nside(radius_arcsec)
    if nside == 0:  # radius of many degrees: no pre-filter, query every source
        cand = np.flatnonzero(valid)
    else:
        lens_pix = hp.ang2pix(nside, lra, ldec, nest=True, lonlat=True)
        neighbours = hp.get_all_neighbours(nside, lens_pix, nest=True).ravel()
        table = np.zeros(12 * nside * nside + 1, dtype=bool)  # last entry: invalid position
        table[lens_pix] = True
        table[neighbours[neighbours >= 0]] = True
        if valid.all():
            src_pix = hp.ang2pix(nside, ra_a, dec_a, nest=True, lonlat=True)
        else:
            src_pix = np.full(ra_a.size, table.size - 1, dtype=np.int64)
            src_pix[valid] = hp.ang2pix(nside, ra_a[valid], dec_a[valid], nest=True, lonlat=True)
        cand = np.flatnonzero(table[src_pix])
    if cand.size == 0:
        return out
    chord = 2.0 * np.sin(np.deg2rad(radius_arcsec / 3600.0) / 2.0)
    tree = cKDTree(_unit_vectors(lra, ldec))
    dist, _ = tree.query(
        _unit_vectors(ra_a[cand], dec_a[cand]), k=1, distance_upper_bound=chord * (1 + 1e-9)
    )
    out[cand] = dist <= chord
    return out


# ----------------------------------------------------------------------------------------------
# HEALPix splits
# ----------------------------------------------------------------------------------------------
def _splitmix64(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """SplitMix64 finalizer (uint64 arithmetic modulo 2**64)."""
    with np.errstate(over="ignore"):
        z = x + _U64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> _U64(27))) * _U64(0x94D049BB133111EB)
        return z ^ (z >> _U64(31))


def _uniform_from_hash(h: npt.NDArray[np.uint64]) -> npt.NDArray[np.float64]:
    return (h >> _U64(11)).astype(np.float64) * 2.0**-53


def _split_codes(cells: npt.ArrayLike, cfg: NegativeSelectionConfig) -> npt.NDArray[np.int8]:
    cells_u = np.asarray(cells, dtype=np.int64).astype(np.uint64)
    key = _splitmix64(np.array([cfg.split_seed], dtype=np.uint64))[0]
    u = _uniform_from_hash(_splitmix64(cells_u ^ key))
    fr = cfg.split_fractions
    return np.where(u < fr.train, 0, np.where(u < fr.train + fr.val, 1, 2)).astype(np.int8)


def split_of_cells(cells: npt.ArrayLike, cfg: NegativeSelectionConfig) -> npt.NDArray[np.str_]:
    """Split of NEST cells at ``cfg.split_nside``.

    ``u = (splitmix64(splitmix64(split_seed) XOR cell) >> 11) / 2**53``; train if
    u < f_train, val if u < f_train + f_val, else test. Depends only on (seed, cell).
    """
    return np.asarray(SPLIT_LABELS)[_split_codes(cells, cfg)]


def assign_split(
    ra: npt.ArrayLike, dec: npt.ArrayLike, cfg: NegativeSelectionConfig
) -> npt.NDArray[np.str_]:
    """Split ("train" / "val" / "test") of each position [deg] via its NEST cell at
    ``cfg.split_nside`` (see :func:`split_of_cells`)."""
    cells = np.atleast_1d(healpix_pixel(ra, dec, cfg.split_nside))
    return split_of_cells(cells, cfg)


def split_guard_mask(
    ra: npt.ArrayLike, dec: npt.ArrayLike, cfg: NegativeSelectionConfig
) -> npt.NDArray[np.bool_]:
    """True where an object's cutout box may reach a split cell of another split.

    The box: half-width ``h = cfg.split_guard_half_width_arcsec`` around (ra, dec) [deg]
    along RA and Dec (DR10 coadds are north up, so cutouts are). Dropping these objects
    makes leakage impossible: every pixel of a kept cutout lies in cells of its own split, so
    no sky (no galaxy, no pixel) is shared by a train and a val/test cutout. Two stages:
    vectorized, at the finest NEST level whose pixels are at least 3 box half-diagonals
    across (>= ``split_nside``), an object whose pixel and its 8 neighbours all lie in cells
    of its split is safe (the box cannot reach beyond them: HEALPix pixels are at least
    ~0.6 of their resolution wide); for the others (near a border between splits)
    ``healpy.query_polygon(..., inclusive=True)``, testing overlap on ~0.8" sub-pixels, lists
    every cell the box may overlap (conservative: it may list a few more, never fewer).
    """
    ra_a = np.atleast_1d(np.asarray(ra, dtype=np.float64))
    dec_a = np.atleast_1d(np.asarray(dec, dtype=np.float64))
    out = np.zeros(ra_a.size, dtype=bool)
    h = cfg.split_guard_half_width_arcsec / 3600.0
    if ra_a.size == 0 or h == 0:
        return out
    nside = cfg.split_nside
    fine_nside = nside
    half_diagonal = cfg.split_guard_half_width_arcsec * np.sqrt(2.0)
    while (
        fine_nside < 2**29
        and hp.nside2resol(2 * fine_nside, arcmin=True) * 60.0
        >= _GUARD_RESOLUTION_FACTOR * half_diagonal
    ):
        fine_nside *= 2
    shift = np.int64(2 * (fine_nside.bit_length() - nside.bit_length()))
    fine = np.asarray(healpix_pixel(ra_a, dec_a, fine_nside), dtype=np.int64).reshape(-1)
    own = _split_codes(fine >> shift, cfg)
    neighbours = hp.get_all_neighbours(fine_nside, fine, nest=True)  # (8, n), -1 = none
    neighbour_cells = np.where(neighbours >= 0, neighbours, fine[None, :]) >> shift
    other = _split_codes(neighbour_cells.ravel(), cfg).reshape(neighbour_cells.shape)
    fact = max(4, _GUARD_TEST_NSIDE // nside)  # overlap tested on ~0.8" sub-pixels
    for i in np.flatnonzero((other != own).any(axis=0)):
        dra = h / max(np.cos(np.deg2rad(dec_a[i])), 1e-6)
        corners_ra = ra_a[i] + np.array([-dra, dra, dra, -dra])
        corners_dec = np.clip(dec_a[i] + np.array([-h, -h, h, h]), -90.0, 90.0)
        vertices = hp.ang2vec(corners_ra, corners_dec, lonlat=True)
        touched = hp.query_polygon(nside, vertices, inclusive=True, nest=True, fact=fact)
        out[i] = bool((_split_codes(touched, cfg) != own[i]).any())
    return out


# ----------------------------------------------------------------------------------------------
# the pool
# ----------------------------------------------------------------------------------------------
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
    check_required_columns(sweep_df.columns, SWEEP_COLUMNS, f"sweep partition {partition_key}")
    n_in = len(sweep_df)
    table = _Table(sweep_df)
    gate_codes = _quality_codes(table, cfg)
    gate_counts = np.bincount(gate_codes, minlength=len(GATE_REASONS))
    table = table.take(np.flatnonzero(gate_codes == 0))
    n_quality = len(table)
    mags = _mags(table)
    cls, rule = _classify(table, cfg, mags)
    sel = np.flatnonzero(cls > 0)
    n_classified = sel.size
    ra = table.col("RA")[sel].astype(np.float64, copy=False)
    dec = table.col("DEC")[sel].astype(np.float64, copy=False)
    near = known_lens_exclusion_mask(
        ra, dec, known_lens_ra, known_lens_dec, cfg.exclusion_radius_arcsec
    )
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
    split = _split_codes(cells, cfg)

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


# ----------------------------------------------------------------------------------------------
# the manifest
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ManifestPlan:
    """How many negatives of each class and split the manifest takes, and why.

    ``per_stratum`` maps ``"N1/train"`` etc. to counts; ``available`` likewise for the pool.
    ``notes`` explains any shortfall (too few of a class in the pool).
    """

    requested_size: int
    n1: int
    n2: int
    n2_fraction_target: float
    n2_fraction: float
    ratio_tolerance: float
    ratio_ok: bool
    shortfall_policy: str
    per_stratum: dict[str, int] = field(default_factory=dict)
    available: dict[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        """Number of rows in the manifest."""
        return self.n1 + self.n2

    def as_dict(self) -> dict[str, Any]:
        """JSON-serializable form (for asset metadata)."""
        out = asdict(self)
        out["size"] = self.size
        out["notes"] = list(self.notes)
        return out


def _largest_remainder(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` proportionally to ``weights`` (integers, sums to ``total``, each part
    <= its weight when total <= sum(weights))."""
    wsum = sum(weights)
    if total <= 0 or wsum == 0:
        return [0] * len(weights)
    exact = [total * w / wsum for w in weights]
    parts = [int(np.floor(e)) for e in exact]
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - parts[i]), i))
    for i in order[: total - sum(parts)]:
        parts[i] += 1
    return parts


def plan_negative_manifest(
    available: Mapping[tuple[str, str], int], cfg: NegativeSelectionConfig
) -> ManifestPlan:
    """Per (class, split) sample sizes for the pool counts ``available[(cls, split)]``.

    Targets: ``n2 = round(manifest_size * n2_fraction)``, ``n1 = manifest_size - n2``. When
    the pool has too few of a class, all of it is taken and, with ``shortfall: keep_ratio``,
    the other class is cut to keep the N1:N2 ratio (the manifest shrinks); with
    ``keep_size`` the other class fills up to ``manifest_size`` (the ratio drifts; ``ratio_ok``
    says whether it stays within ``ratio_tolerance``). Within a class, the sample is split
    across train/val/test in proportion to the pool (largest remainder).
    """
    avail = {(c, s): int(available.get((c, s), 0)) for c in ("N1", "N2") for s in SPLIT_LABELS}
    a1 = sum(avail[("N1", s)] for s in SPLIT_LABELS)
    a2 = sum(avail[("N2", s)] for s in SPLIT_LABELS)
    f2 = cfg.n2_fraction
    size = cfg.manifest_size
    t2 = round(size * f2)
    t1 = size - t2
    n1, n2 = min(a1, t1), min(a2, t2)
    notes: list[str] = []
    if a2 < t2:
        notes.append(f"too few N2: pool has {a2} < target {t2}")
    if a1 < t1:
        notes.append(f"too few N1: pool has {a1} < target {t1}")
    if notes:
        if cfg.shortfall == "keep_ratio":
            n1 = min(n1, round(n2 * (1.0 - f2) / f2))
            n2 = min(n2, round(n1 * f2 / (1.0 - f2)))
        else:
            n1 = min(a1, size - n2)
            n2 = min(a2, size - n1)
        notes.append(
            f"{cfg.shortfall}: took N1 {n1} of {a1}, N2 {n2} of {a2}; "
            f"manifest {n1 + n2} of {size} requested"
        )
    frac = n2 / (n1 + n2) if n1 + n2 else 0.0
    ratio_ok = n1 + n2 > 0 and abs(frac - f2) <= cfg.ratio_tolerance
    if not ratio_ok:
        notes.append(f"N2 fraction {frac:.4f} outside {f2:.4f} +/- {cfg.ratio_tolerance}")
    per: dict[str, int] = {}
    for cls, n in (("N1", n1), ("N2", n2)):
        parts = _largest_remainder(n, [avail[(cls, s)] for s in SPLIT_LABELS])
        per.update({f"{cls}/{s}": p for s, p in zip(SPLIT_LABELS, parts, strict=True)})
    return ManifestPlan(
        requested_size=size,
        n1=n1,
        n2=n2,
        n2_fraction_target=f2,
        n2_fraction=frac,
        ratio_tolerance=cfg.ratio_tolerance,
        ratio_ok=bool(ratio_ok),
        shortfall_policy=cfg.shortfall,
        per_stratum=per,
        available={f"{c}/{s}": v for (c, s), v in avail.items()},
        notes=tuple(notes),
    )


def _sample_priority(pool_df: pd.DataFrame, seed: int) -> npt.NDArray[np.uint64]:
    """Per-row pseudo-random priority from (seed, BRICKNAME, OBJID): independent of row order
    and of which other rows are in the pool."""
    brick = pd.util.hash_array(pool_df["BRICKNAME"].astype(str).to_numpy(dtype=object))
    objid = pool_df["OBJID"].to_numpy(dtype=np.int64).astype(np.uint64)
    key = _splitmix64(np.array([seed], dtype=np.uint64))[0]
    return _splitmix64(_splitmix64(brick.astype(np.uint64) ^ key) ^ objid)


def sample_negative_manifest(pool_df: pd.DataFrame, cfg: NegativeSelectionConfig) -> pd.DataFrame:
    """Stratified sample of the pool by (pool_class, split) per :func:`plan_negative_manifest`.

    In each stratum the rows with the smallest priority (a hash of ``sampling_seed``,
    BRICKNAME, OBJID) are taken, so the result depends only on the pool's content, not its row
    order. Output: the pool columns, sorted by class, split, priority, index reset; the plan is
    in ``result.attrs["manifest_plan"]`` (dict).
    """
    check_required_columns(
        pool_df.columns, ("pool_class", "split", "BRICKNAME", "OBJID"), "negative pool"
    )
    cls = pool_df["pool_class"].astype(str).to_numpy(dtype=object)
    spl = pool_df["split"].astype(str).to_numpy(dtype=object)
    strata = [(c, s) for c in ("N1", "N2") for s in SPLIT_LABELS]
    cls_code = np.full(len(pool_df), -1, dtype=np.int64)
    for i, c in enumerate(("N1", "N2")):
        cls_code[cls == c] = i
    spl_code = np.full(len(pool_df), -1, dtype=np.int64)
    for i, s in enumerate(SPLIT_LABELS):
        spl_code[spl == s] = i
    stratum = np.where((cls_code >= 0) & (spl_code >= 0), cls_code * 3 + spl_code, -1)
    counts = np.bincount(stratum[stratum >= 0], minlength=6)
    plan = plan_negative_manifest({k: int(counts[i]) for i, k in enumerate(strata)}, cfg)
    quota = np.array([plan.per_stratum[f"{c}/{s}"] for c, s in strata] + [0], dtype=np.int64)
    priority = _sample_priority(pool_df, cfg.sampling_seed)
    st = np.where(stratum >= 0, stratum, 6)
    order = np.lexsort((priority, st))
    st_sorted = st[order]
    starts = np.searchsorted(st_sorted, np.arange(7))
    rank = np.arange(order.size) - starts[st_sorted]
    chosen = order[rank < quota[st_sorted]]
    manifest = pool_df.iloc[chosen].reset_index(drop=True)
    manifest.attrs = {"manifest_plan": plan.as_dict()}
    return manifest
