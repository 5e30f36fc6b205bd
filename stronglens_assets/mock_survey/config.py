"""Configuration of the embedded mock DR10 sky (``configs/demo_sky.yaml``).

Realism notes (where the defaults come from; all approximate, chosen to be DR10/DECaLS-like)
------------------------------------------------------------------------------------------
* **PSF**: DECaLS / DR10 south delivered seeing is ~1.3-1.5" FWHM (Dey et al. 2019,
  AJ 157, 168); defaults g 1.50", r 1.40", z 1.30" (median), with a 10% lognormal brick to
  brick scatter. The PSF is a Moffat with beta = 3.5.
* **Depth**: Dey et al. 2019 quote DECaLS 5-sigma depths g = 24.0, r = 23.4, z = 22.5 for a
  0.45" round exponential galaxy; point-source depths are ~0.5-0.6 mag deeper, so the
  defaults are ``psf_depth_mag`` g 24.6, r 24.0, z 23.0 (AB, 5 sigma, in the part of the brick
  covered by ``nobs`` exposures), with 0.15 mag brick-to-brick scatter.
* **Number counts**: galaxies dlogN/dm = 0.35 (observed 0.3-0.45 in r at 17 < r < 24),
  stars dlogN/dm = 0.15 (high Galactic latitude). Densities are per deg^2 over the configured
  magnitude ranges: 20,000 field galaxies (15 < r < 24; real DR10 catalogues go ~1 mag deeper
  and are ~2-3x denser), 800 LRG-like galaxies (18 < r < 21.5; DESI LRG density is
  ~600 deg^-2), 1,500 stars (14 < r < 23, high latitude).
* **Shot noise**: the sky (dark-time DECam: g 22.0, r 21.0, z 19.9 mag/arcsec^2) sets the
  noise, so the gain is ``g = sky per pixel / sigma_pix^2`` (e-/nanomaggy; ~1e4, 7e3, 3e3 in
  g, r, z for the default depths); object and arc light add variance ``light / g`` per pixel
  (DR10 pixels carry it; DR10 invvar, like the mock's, does not).
* Colours, sizes and lens parameters: see :mod:`stronglens_assets.mock_survey.sky`.

Bands: only DR10 south bands (g, r, i, z) are allowed; g, r and z are required (the coadd
products and the sweep flux columns of this project).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from stronglens_assets.config import StrictModel, load_config, validate_brick_names
from stronglens_assets.science.catalogs.bricks import brick_center, brick_name
from stronglens_assets.science.catalogs.healpix import healpix_pixel
from stronglens_assets.science.core.hashing import sha256_bytes
from stronglens_assets.science.imaging.gain import DECAM_DARK_SKY_MAG_ARCSEC2 as DARK_SKY
from stronglens_assets.science.lensing.structured_source import SourceModel
from stronglens_assets.settings import PROJECT_ROOT

__all__ = [
    "ALLOWED_BANDS",
    "DEFAULT_DEMO_SKY_PATH",
    "DEMO_HELD_OUT_TIER_A",
    "REQUIRED_BANDS",
    "BandConfig",
    "DemoSkyConfig",
    "LensConfig",
    "config_checksum",
    "demo_bricks",
    "densest_candidate_bricks",
    "held_out_tier_a",
    "load_demo_sky",
]

#: Bands of DR10 south (DECam), in wavelength order.
ALLOWED_BANDS: tuple[str, ...] = ("g", "r", "i", "z")
#: Bands every mock sky must render.
REQUIRED_BANDS: tuple[str, ...] = ("g", "r", "z")
#: The default embedded sky.
DEFAULT_DEMO_SKY_PATH: Path = PROJECT_ROOT / "configs" / "demo_sky.yaml"

#: Bump when the writer's output for a given config changes (invalidates complete bricks).
MOCK_SURVEY_VERSION: str = "3"

Range = tuple[float, float]


def _check_range(value: Range, *, low: float | None = None, high: float | None = None) -> Range:
    lo, hi = value
    if lo > hi:
        raise ValueError(f"range must be [low, high] with low <= high, got [{lo}, {hi}]")
    if low is not None and lo < low:
        raise ValueError(f"lower end must be >= {low}, got {lo}")
    if high is not None and hi > high:
        raise ValueError(f"upper end must be <= {high}, got {hi}")
    return value


class BandConfig(StrictModel):
    """Observing conditions of one band (medians over bricks; each brick draws its own).

    Attributes:
        psf_fwhm_arcsec: median PSF FWHM (arcsec), > 0.
        psf_fwhm_scatter: fractional (lognormal sigma) brick-to-brick FWHM scatter, in [0, 1).
        psf_depth_mag: median 5-sigma point-source depth (AB mag), > 0.
        depth_scatter_mag: brick-to-brick depth scatter (mag, Gaussian sigma), >= 0.
        nobs: number of exposures in the main part of a brick (>= 1); a random exposure edge
            may add one more exposure to part of the brick (deeper there).
        sky_mag_arcsec2: sky surface brightness (AB mag / arcsec^2).
    """

    psf_fwhm_arcsec: float = Field(gt=0, le=5.0)
    psf_fwhm_scatter: float = Field(default=0.1, ge=0, lt=1)
    psf_depth_mag: float = Field(gt=0, le=35.0)
    depth_scatter_mag: float = Field(default=0.15, ge=0, le=2.0)
    nobs: int = Field(default=3, ge=1, le=100)
    sky_mag_arcsec2: float = Field(default=21.0, gt=10.0, le=30.0)
    """Sky surface brightness (AB mag / arcsec^2): with the per-pixel noise it sets the gain
    of the shot noise on object and arc light (``render``)."""


class LensConfig(StrictModel):
    """Lenses rendered into the mock sky (real lenscat positions and planted mock lenses).

    Angles in arcsec, magnitudes AB. Ranges are ``[low, high]`` drawn uniformly. Deflectors
    have no distribution of their own: they are drawn like the sky's LRGs with
    z < ``deflector_max_mag_z`` (magnitude and size), the sample a z-limited search (and the
    N1 negatives) draws from, so brightness or size alone does not tell a lens from an LRG
    negative.

    Sources (:mod:`stronglens_assets.science.lensing.structured_source`): the injection
    engine's Sersic (the ``paper_2026`` prior's ranges by default: ``source_n_sersic``,
    semi-major ``source_r_e_arcsec``, ``source_axis_ratio``, ``source_beta_frac`` uniform in
    annulus area) plus 2-5 star-forming knots 0.15-0.5" from its centre carrying
    ``structure_fraction`` of the flux; ``structure_fraction = 0`` is the engine's plain
    Sersic. One colour per source (``source_g_r``, ``source_r_z``: mean and std of a normal).
    """

    mock_lenses_per_brick: int = Field(default=20, ge=0, le=500)
    theta_e_arcsec: Range = (1.0, 2.5)
    mass_axis_ratio: Range = (0.6, 1.0)
    shear_max: float = Field(default=0.08, ge=0, lt=0.5)
    source_mag_r: Range = (22.0, 24.5)
    source_n_sersic: Range = (0.5, 2.0)
    source_r_e_arcsec: Range = (0.15, 0.5)
    source_axis_ratio: Range = (0.3, 1.0)
    source_beta_frac: Range = (0.1, 0.4)
    source_g_r: tuple[float, float] = (1.23, 0.39)
    """Arc g - r colour: (mean, std) of a normal (PROTOCOL.md: measured on Tier-A arcs)."""
    source_r_z: tuple[float, float] = (0.95, 0.27)
    """Arc r - z colour: (mean, std) of a normal (PROTOCOL.md)."""
    structure_fraction: float = Field(default=0.3, ge=0.0, lt=1.0)
    """Fraction of each source's flux in star-forming knots (0 = the engine's Sersic)."""
    knots: tuple[int, int] = (2, 5)
    knot_radius_arcsec: Range = (0.15, 0.5)
    knot_sigma_arcsec: Range = (0.04, 0.1)
    deflector_max_mag_z: float = Field(default=20.0, ge=10.0, le=30.0)
    """Lens hosts are LRGs of a z-limited lens search: z < this (AB). 20 is the DR10 search's
    limit and the negatives' ``max_mag_z``."""
    grading_residual_fraction: float = Field(default=0.1, ge=0, le=1)
    """Fraction of the deflector's (and neighbours') light left by a grader's model
    subtraction: sets the residual arc S/N that grades mock lenses (see ``render``)."""

    @field_validator("theta_e_arcsec")
    @classmethod
    def _theta_e(cls, v: Range) -> Range:
        return _check_range(v, low=0.1, high=10.0)

    @field_validator("mass_axis_ratio", "source_axis_ratio")
    @classmethod
    def _q(cls, v: Range) -> Range:
        return _check_range(v, low=0.1, high=1.0)

    @field_validator("source_mag_r")
    @classmethod
    def _mags(cls, v: Range) -> Range:
        return _check_range(v, low=10.0, high=30.0)

    @field_validator("source_r_e_arcsec", "knot_radius_arcsec", "knot_sigma_arcsec")
    @classmethod
    def _sizes(cls, v: Range) -> Range:
        return _check_range(v, low=0.005, high=5.0)

    @field_validator("source_n_sersic")
    @classmethod
    def _sersic(cls, v: Range) -> Range:
        return _check_range(v, low=0.2, high=10.0)

    @field_validator("source_beta_frac")
    @classmethod
    def _beta(cls, v: Range) -> Range:
        return _check_range(v, low=0.0, high=1.5)

    @field_validator("source_g_r", "source_r_z")
    @classmethod
    def _colour(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not v[1] >= 0:
            raise ValueError(f"colour must be [mean, std] with std >= 0, got {list(v)}")
        return v

    @field_validator("knots")
    @classmethod
    def _knots(cls, v: tuple[int, int]) -> tuple[int, int]:
        lo, hi = v
        if not 1 <= lo <= hi <= 8:
            raise ValueError(f"need 1 <= low <= high <= 8 knots, got [{lo}, {hi}]")
        return v

    def source_model(self, structure_fraction: float | None = None) -> SourceModel:
        """The structured-source model of these settings (optionally another fraction)."""
        return SourceModel(
            structure_fraction=self.structure_fraction
            if structure_fraction is None
            else structure_fraction,
            knots=self.knots,
            knot_radius_arcsec=self.knot_radius_arcsec,
            knot_sigma_arcsec=self.knot_sigma_arcsec,
            n_sersic=self.source_n_sersic,
            r_e_arcsec=self.source_r_e_arcsec,
            axis_ratio=self.source_axis_ratio,
            beta_frac=self.source_beta_frac,
        )


class DemoSkyConfig(StrictModel):
    """The embedded mock DR10 sky: bricks, seed, observing conditions, populations, lenses.

    Densities are per deg^2 over the corresponding magnitude range; magnitudes are AB r-band.
    ``processes`` only sets parallelism and does not change any output byte.
    """

    bricks: list[str] = Field(min_length=1)
    seed: int = 20250101
    bands: dict[str, BandConfig] = Field(
        default_factory=lambda: {
            "g": BandConfig(psf_fwhm_arcsec=1.5, psf_depth_mag=24.6, sky_mag_arcsec2=DARK_SKY["g"]),
            "r": BandConfig(psf_fwhm_arcsec=1.4, psf_depth_mag=24.0, sky_mag_arcsec2=DARK_SKY["r"]),
            "z": BandConfig(psf_fwhm_arcsec=1.3, psf_depth_mag=23.0, sky_mag_arcsec2=DARK_SKY["z"]),
        }
    )
    w1_depth_mag: float = Field(default=20.5, gt=0, le=35.0)
    galaxy_density_per_deg2: float = Field(default=20000.0, ge=0, le=500000.0)
    lrg_density_per_deg2: float = Field(default=800.0, ge=0, le=50000.0)
    star_density_per_deg2: float = Field(default=1500.0, ge=0, le=200000.0)
    confuser_fraction: float = Field(default=0.02, ge=0, le=0.5)
    magnitude_range_r: Range = (15.0, 24.0)
    lrg_magnitude_range_r: Range = (18.0, 21.5)
    confuser_magnitude_range_r: Range = (17.5, 21.0)
    star_magnitude_range_r: Range = (14.0, 23.0)
    galaxy_count_slope: float = Field(default=0.35, gt=0, le=1.0)
    star_count_slope: float = Field(default=0.15, gt=0, le=1.0)
    exposure_edge_probability: float = Field(default=0.5, ge=0, le=1)
    bad_strips_per_brick: int = Field(default=2, ge=0, le=50)
    bad_strip_width_pix: tuple[int, int] = (8, 40)
    lenses: LensConfig = Field(default_factory=LensConfig)
    processes: int = Field(default=2, ge=1, le=256)

    @field_validator("bricks")
    @classmethod
    def _valid_bricks(cls, value: list[str]) -> list[str]:
        return validate_brick_names(value)

    @field_validator("bands", mode="before")
    @classmethod
    def _known_bands(cls, value: object) -> object:
        if isinstance(value, dict):
            unknown = [str(b) for b in value if b not in ALLOWED_BANDS]
            if unknown:
                raise ValueError(
                    f"unknown band(s) {', '.join(repr(b) for b in unknown)}: "
                    f"DR10 south bands are {', '.join(ALLOWED_BANDS)}"
                )
            missing = [b for b in REQUIRED_BANDS if b not in value]
            if missing:
                raise ValueError(f"band(s) {', '.join(missing)} missing: g, r and z are required")
        return value

    @field_validator("magnitude_range_r", "lrg_magnitude_range_r", "confuser_magnitude_range_r")
    @classmethod
    def _gal_mags(cls, v: Range) -> Range:
        return _check_range(v, low=10.0, high=30.0)

    @field_validator("star_magnitude_range_r")
    @classmethod
    def _star_mags(cls, v: Range) -> Range:
        return _check_range(v, low=8.0, high=30.0)

    @field_validator("bad_strip_width_pix")
    @classmethod
    def _strip_width(cls, v: tuple[int, int]) -> tuple[int, int]:
        lo, hi = v
        if not 1 <= lo <= hi <= 600:
            raise ValueError(f"need 1 <= low <= high <= 600 pixels, got [{lo}, {hi}]")
        return v

    @property
    def image_bands(self) -> tuple[str, ...]:
        """Configured bands in wavelength order (g, r, [i,] z)."""
        return tuple(b for b in ALLOWED_BANDS if b in self.bands)


def load_demo_sky(path: str | os.PathLike[str] | None = None) -> DemoSkyConfig:
    """Load and validate a mock-sky YAML (default ``configs/demo_sky.yaml``).

    Raises :class:`stronglens_assets.config.ConfigError` naming the file and the field.
    """
    return load_config(DEFAULT_DEMO_SKY_PATH if path is None else path, DemoSkyConfig)


def config_checksum(config: DemoSkyConfig) -> str:
    """sha256 (hex) of everything in ``config`` that changes output bytes.

    ``bricks`` (which bricks to build) and ``processes`` (parallelism) are excluded: a brick's
    products depend only on the other fields, its name and the lenscat positions inside it.
    """
    data = config.model_dump(mode="json", exclude={"bricks", "processes"})
    data["_mock_survey_version"] = MOCK_SURVEY_VERSION
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return sha256_bytes(text.encode())


def densest_candidate_bricks(
    candidates: pd.DataFrame,
    nside: int = 16,
    n_cells: int = 2,
    bricks_per_cell: int = 8,
    min_tier_a: int = 5,
) -> list[str]:
    """The demo's brick choice rule: where real lens candidates are densest, plus the fewest
    bricks that bring in ``min_tier_a`` confident (Tier-A) candidates.

    A brick belongs to the HEALPix NEST cell (at ``nside``) of its centre. Take the
    ``n_cells`` cells whose bricks hold the most candidates (``candidates``: columns ra, dec
    in deg, tier A/B), and in each the ``bricks_per_cell`` bricks holding the most
    candidates; ties are broken by cell number and brick name. Then, while the chosen bricks
    hold fewer than ``min_tier_a`` Tier-A candidates, add bricks holding Tier-A candidates
    from the cell holding the most of them (then the next cell), most Tier-A candidates
    first, ties by brick name: the fewest extra bricks, in as few new partitions as
    possible (each brick costs mock rendering and cutouts). With a boolean column
    ``held_out`` (:func:`held_out_tier_a`: in the test split, clear of the split guard), only
    those Tier-A candidates count, so the test split holds real confident lenses. Returns
    brick names, cell by cell.
    """
    ra, dec = candidates["ra"].to_numpy(), candidates["dec"].to_numpy()
    names = np.asarray(brick_name(ra, dec))
    ra_c, dec_c = brick_center(ra, dec)
    table = pd.DataFrame(
        {
            "brick": names,
            "cell": np.asarray(healpix_pixel(ra_c, dec_c, nside)),
            "a": (
                (candidates["tier"] == "A").to_numpy(dtype=bool)
                & (
                    candidates["held_out"].to_numpy(dtype=bool)
                    if "held_out" in candidates
                    else True
                )
            ).astype(int)
            if "tier" in candidates
            else np.zeros(len(candidates), dtype=int),
        }
    )
    counts = table.groupby(["cell", "brick"]).agg(n=("a", "size"), a=("a", "sum")).reset_index()
    per_cell = counts.groupby("cell")[["n", "a"]].sum().reset_index()
    top_cells = per_cell.sort_values(["n", "cell"], ascending=[False, True])["cell"][:n_cells]
    chosen: list[str] = []
    for cell in top_cells:
        in_cell = counts[counts["cell"] == cell].sort_values(
            ["n", "brick"], ascending=[False, True]
        )
        chosen.extend(in_cell["brick"][:bricks_per_cell].tolist())
    have = int(counts.loc[counts["brick"].isin(chosen), "a"].sum())
    for cell in per_cell.sort_values(["a", "cell"], ascending=[False, True])["cell"]:
        if have >= min_tier_a:
            break
        extra = counts[(counts["cell"] == cell) & (counts["a"] > 0) & ~counts["brick"].isin(chosen)]
        for brick, a in extra.sort_values(["a", "brick"], ascending=[False, True])[
            ["brick", "a"]
        ].itertuples(index=False):
            if have >= min_tier_a:
                break
            chosen.append(str(brick))
            have += int(a)
    return chosen


def held_out_tier_a(candidates: pd.DataFrame, split_config: Any) -> np.ndarray:
    """Tier-A candidates that the training manifest puts in the **test** split: the sky cell
    of (ra, dec) is a test cell and the cutout box stays clear of other splits (the split
    guard), with ``split_config`` the negatives' split settings of the demo profile
    (:func:`~stronglens_assets.science.samples.splits.assign_split`). The demo's brick rule
    counts these (:func:`densest_candidate_bricks`), so spectroscopic validation (seeds' 4.6)
    is measured on held-out real lenses."""
    from stronglens_assets.science.samples.splits import assign_split, split_guard_mask

    ra = candidates["ra"].to_numpy(dtype=np.float64)
    dec = candidates["dec"].to_numpy(dtype=np.float64)
    tier_a = (candidates["tier"] == "A").to_numpy(dtype=bool)
    out = np.zeros(len(candidates), dtype=bool)
    if tier_a.any():
        test = assign_split(ra[tier_a], dec[tier_a], split_config) == "test"
        out[np.flatnonzero(tier_a)] = test & ~split_guard_mask(
            ra[tier_a], dec[tier_a], split_config
        )
    return out


DEMO_HELD_OUT_TIER_A = 8
"""Held-out (test-split) real Tier-A candidates the demo sky brings in: 5 for spectroscopic
validation on n >= 5, plus 3 for the mock's losses (zero-invvar strips cost 2 of the 5 Tier-A
cutouts of the previous demo sky)."""


def demo_bricks(candidates: pd.DataFrame, split_config: Any) -> list[str]:
    """The demo sky's bricks (``configs/demo_sky.yaml``): :func:`densest_candidate_bricks`
    with the default densest cells and :data:`DEMO_HELD_OUT_TIER_A` held-out Tier-A
    candidates (:func:`held_out_tier_a` under the demo profile's ``split_config``)."""
    held_out = held_out_tier_a(candidates, split_config)
    return densest_candidate_bricks(
        candidates.assign(held_out=held_out), min_tier_a=DEMO_HELD_OUT_TIER_A
    )
