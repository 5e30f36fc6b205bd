"""Negative-sample selection configuration (``configs/negatives.yaml``).

Validated by :class:`NegativeSelectionConfig` (unknown fields are errors): the quality gates
(:mod:`.quality`), the N1/N2 rules (:mod:`.classes`), the known-lens exclusion radius, the
HEALPix split and its guard (:mod:`.splits`) and the manifest sample (:mod:`.manifest`).
"""

from __future__ import annotations

import os
from typing import Literal

import healpy as hp
import numpy as np
from pydantic import field_validator, model_validator

from stronglens_assets.config import StrictModel, load_profiled_config
from stronglens_assets.science.catalogs.sweeps import SWEEP_TYPES

__all__ = [
    "NEGATIVES_CONFIG_FILENAME",
    "N1Rule",
    "N2Rule",
    "NegativeSelectionConfig",
    "QualityGates",
    "SplitFractions",
    "load_negative_selection_config",
]

NEGATIVES_CONFIG_FILENAME = "negatives.yaml"
MAX_SPLIT_NSIDE = 8192
GUARD_RESOLUTION_FACTOR = 3.0
"""The split guard's pre-filter pixels are >= this many box half-diagonals across."""


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
        if value < 1 or value & (value - 1) or value > MAX_SPLIT_NSIDE:
            raise ValueError(f"must be a power of two in [1, {MAX_SPLIT_NSIDE}], got {value}")
        return value

    @model_validator(mode="after")
    def _guard_fits_cell(self) -> NegativeSelectionConfig:
        resolution = hp.nside2resol(self.split_nside, arcmin=True) * 60.0
        limit = resolution / (GUARD_RESOLUTION_FACTOR * np.sqrt(2.0))
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
