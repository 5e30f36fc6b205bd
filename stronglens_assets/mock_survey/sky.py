"""The mock sky of one brick: objects, lenses and observing conditions (no pixels).

:func:`draw_brick_sky` is deterministic: every random number comes from
``numpy.random.default_rng([config.seed, brickid])`` and its spawned children (one child
stream per population, so e.g. adding a lenscat position does not move the field galaxies).

Frames and units
----------------
* Positions: RA/Dec (deg, ICRS) and 0-based pixel ``x`` (column) / ``y`` (row) of the brick's
  TAN WCS (:func:`stronglens_assets.science.catalogs.bricks.brick_wcs`); north up, east left.
* Fluxes in nanomaggies (AB zero point 22.5: ``m = 22.5 - 2.5 log10 f``), W1 included (AB).
* Catalog shapes (``shape_r``, ``shape_e1``, ``shape_e2``) follow Tractor/DR10: ``shape_r`` is
  the half-light radius along the **major axis** (arcsec), the major axis has position angle
  ``atan2(e2, e1) / 2`` east of north, ``|e| = (1 - q) / (1 + q)``.
* Render parameters (``c1_*``, ``c2_*``, lens ``e1/e2``, ``gamma1/2``, ``src_*``) use the
  lenstronomy stamp frame of :mod:`stronglens_assets.science.lensing.profiles`: +x = +column = west,
  +y = +row = north, ``R_sersic`` circularised. Hence a catalog shape maps to
  ``r_sersic = shape_r * sqrt(q)`` and ``(e1, e2)_stamp = -(shape_e1, shape_e2)``.

Realism notes
-------------
* Positions: uniform on the sphere inside the brick's unique RA/Dec area (objects of the
  neighbouring bricks are not drawn, so the ~80 px image margin outside the unique area only
  holds spill-over light of this brick's objects).
* Magnitudes: power-law counts ``dN/dm ~ 10^(slope m)`` (slopes in the config module).
* Sizes: ``log10(shape_r / arcsec) = -0.2 (r - 20) + N(0, 0.25 dex)`` (a size-magnitude
  relation typical of r < 24 galaxies; 1" at r = 20), clipped to [0.08", 12"].
* Colours (AB): field disks g-r ~ N(0.65, 0.25), r-z ~ N(0.45, 0.2), z-W1 ~ N(0.2, 0.35);
  LRGs g-r ~ N(1.8, 0.12), r-z ~ N(1.0, 0.1), z-W1 ~ N(1.5, 0.15) (they pass the DESI LRG
  colour cuts); stars on an approximate stellar locus g-r ~ U(0.3, 1.4),
  r-z = 0.8 (g-r) - 0.05, z-W1 = -0.4 + 0.3 (r-z) (+ small scatter); lensed sources as
  measured on Tier-A arcs (below).
* TYPE as DR10: stars PSF; disks EXP (n = 1), SER (0.6 < n < 2.5) or REX (round exponential
  for r > 22.5 and shape_r < 0.6"); LRGs DEV (n = 4) or SER (2.5 < n < 5.5).
* Confusers (hard negatives, never lenses), ``confuser_fraction`` of the field-galaxy density,
  17.5 < r < 21: rings (red n = 4 bulge + blue Gaussian annulus of radius 1.2-3.0"),
  spirals (blue exponential disk with a 2-arm logarithmic-spiral modulation + red bulge),
  mergers (two overlapping Sersics 0.8-2.5" apart). Their catalog entries are single
  SER/EXP models with large ``shape_r`` (and high SERSIC for rings).
* Lenses: an LRG-like deflector of the lens search's sample, z < 20
  (``lenses.deflector_max_mag_z``; Inchausti et al. 2025 searched z < 20 galaxies):
  lenscat positions get magnitudes and sizes drawn like the LRGs' conditioned on z < 20;
  mock lenses are planted on LRGs of the brick with z < 20 chosen uniformly. Deflectors and
  LRG negatives (N1, also z < 20) thus share one magnitude/size distribution and brightness
  is no shortcut. An
  SIE (theta_E 1.0-2.5", mass axis ratio 0.6-1,
  mass position angle = light position angle + N(0, 10 deg)) + external shear
  (|gamma| < 0.08), the injection engine's lens family, lensing a source 22 < r < 24.5
  (unlensed) drawn by :func:`~stronglens_assets.science.lensing.structured_source.draw_sources`:
  the engine's Sersic with the paper_2026 prior's ranges (n 0.5-2, semi-major R_e 0.15-0.5",
  q 0.3-1, offset 0.1-0.4 theta_E uniform in area) plus 2-5 star-forming knots 0.15-0.5"
  from its centre holding ``structure_fraction`` of the flux (``configs/demo_sky.yaml`` says
  why 0.3). Source colours are those measured on Tier-A arcs (PROTOCOL.md: g-r 1.23 +- 0.39,
  r-z 0.95 +- 0.27), one colour per source.
* MASKBITS: BRIGHT (bit 1) within ``1630" x 1.396^-r`` (legacypipe's bright-star mask radius
  formula, applied here to r < 16 stars) of bright stars.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from stronglens_assets.mock_survey.config import DemoSkyConfig
from stronglens_assets.science.catalogs.bricks import (
    BRICK_NPIX,
    PIXEL_SCALE_ARCSEC,
    BrickInfo,
    brick_name,
    brick_wcs,
    parse_brick_name,
)
from stronglens_assets.science.core.columns import require_columns
from stronglens_assets.science.core.units import mag_to_nanomaggies, nanomaggies_to_mag
from stronglens_assets.science.lensing.profiles import ellipticity_from_phi_q
from stronglens_assets.science.lensing.structured_source import (
    LensGeometry,
    SourceParameters,
    draw_sources,
)

__all__ = [
    "BRIGHT_STAR_MAG",
    "CLASS_LABELS",
    "MASKBITS_BRIGHT",
    "PSFSIZE_STEP_ARCSEC",
    "BandConditions",
    "SkyModel",
    "bright_star_mask_radius_arcsec",
    "draw_brick_sky",
    "lens_geometry",
    "lenscat_in_brick",
    "source_parameters",
]

#: Class labels of the objects table (``cls``).
CLASS_LABELS: tuple[str, ...] = (
    "star",
    "lrg",
    "disk",
    "confuser_ring",
    "confuser_spiral",
    "confuser_merger",
)
#: DR10 MASKBITS bit value for BRIGHT (bit 1).
MASKBITS_BRIGHT: int = 1 << 1
#: Stars brighter than this r magnitude set BRIGHT in MASKBITS around them.
BRIGHT_STAR_MAG: float = 16.0

_FIELD_SIZE_SLOPE = -0.2
_SIZE_SCATTER_DEX = 0.25
_N_STREAMS = 16  # child RNG streams; index meanings below
_S_COND, _S_STARS, _S_DISKS, _S_LRGS, _S_CONF, _S_LENSCAT, _S_MOCK, _S_IDS = range(8)
#: PSF FWHMs are multiples of this (2^-13", ~1.2e-4"): exact in float32 and in the
#: absolute-step quantisation of the psfsize maps.
PSFSIZE_STEP_ARCSEC: float = 2.0**-13
#: Noise streams of the renderer start here (one per band, in ALLOWED_BANDS order).
NOISE_STREAM_OFFSET: int = 8
#: Shot-noise streams of the renderer start here (one per band, in ALLOWED_BANDS order).
SHOT_NOISE_STREAM_OFFSET: int = 12


def bright_star_mask_radius_arcsec(mag: np.ndarray | float) -> np.ndarray:
    """Bright-star mask radius (arcsec) of legacypipe: ``1630 * 1.396**(-mag)``."""
    return 1630.0 * 1.396 ** (-np.asarray(mag, dtype=np.float64))


def rng_streams(config: DemoSkyConfig, brickid: int) -> list[np.random.Generator]:
    """The brick's independent child generators of ``default_rng([seed, brickid])``."""
    return np.random.default_rng([config.seed, brickid]).spawn(_N_STREAMS)


@dataclass(frozen=True)
class BandConditions:
    """Observing conditions of one band in one brick.

    Attributes:
        band: band name.
        psf_fwhm_arcsec: PSF FWHM (arcsec), constant over the brick (the ``psfsize`` map).
        psf_depth_mag: 5-sigma point-source depth (AB) where ``nobs`` exposures overlap.
        nobs: number of exposures in the main part of the brick.
        edge: ``None`` or ``(axis, position, side)``: pixels with ``coord >= position``
            (side +1) or ``coord < position`` (side -1) along ``axis`` ('x' = column,
            'y' = row) have ``nobs + 1`` exposures (invvar scaled by (nobs + 1) / nobs).
        bad_strips: ``(axis, start, stop)`` pixel ranges (``axis`` 'x': columns
            ``start:stop``, 'y': rows) with invvar = 0 and image = 0.
    """

    band: str
    psf_fwhm_arcsec: float
    psf_depth_mag: float
    nobs: int
    edge: tuple[str, int, int] | None
    bad_strips: tuple[tuple[str, int, int], ...]

    def nobs_at(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Number of exposures (int16) at 0-based pixel positions (0 on bad strips / off image)."""
        ix = np.rint(np.asarray(x)).astype(np.int64)
        iy = np.rint(np.asarray(y)).astype(np.int64)
        nobs = np.full(ix.shape, self.nobs, dtype=np.int16)
        if self.edge is not None:
            axis, pos, side = self.edge
            coord = ix if axis == "x" else iy
            deeper = coord >= pos if side > 0 else coord < pos
            nobs[deeper] += 1
        for axis, start, stop in self.bad_strips:
            coord = ix if axis == "x" else iy
            nobs[(coord >= start) & (coord < stop)] = 0
        off = (ix < 0) | (iy < 0) | (ix >= BRICK_NPIX) | (iy >= BRICK_NPIX)
        nobs[off] = 0
        return nobs


@dataclass(frozen=True)
class SkyModel:
    """Everything drawn for one brick before rendering.

    Attributes:
        brick: the brick (degrees).
        bands: image bands in wavelength order.
        conditions: per band :class:`BandConditions`.
        objects: one row per catalog object (see module docstring for columns and frames).
        lenses: one row per lens (deflector in ``objects``; ``deflector_objid`` links them).
    """

    brick: BrickInfo
    bands: tuple[str, ...]
    conditions: dict[str, BandConditions]
    objects: pd.DataFrame
    lenses: pd.DataFrame
    meta: dict[str, object] = field(default_factory=dict)


# ----------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------
def _brick_area_deg2(info: BrickInfo) -> float:
    d1, d2 = np.deg2rad(info.dec1), np.deg2rad(info.dec2)
    return float((info.ra2 - info.ra1) * (np.sin(d2) - np.sin(d1)) * 180.0 / np.pi)


def _positions(rng: np.random.Generator, info: BrickInfo, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Uniform positions on the sphere inside the brick's RA/Dec edges (deg)."""
    ra = info.ra1 + rng.random(n) * (info.ra2 - info.ra1)
    s1, s2 = np.sin(np.deg2rad(info.dec1)), np.sin(np.deg2rad(info.dec2))
    dec = np.rad2deg(np.arcsin(s1 + rng.random(n) * (s2 - s1)))
    return ra, dec


def _powerlaw_mags(
    rng: np.random.Generator, n: int, lo: float, hi: float, slope: float
) -> np.ndarray:
    """Magnitudes with ``dN/dm ~ 10^(slope m)`` in ``[lo, hi]``."""
    a, b = 10.0 ** (slope * lo), 10.0 ** (slope * hi)
    return np.log10(a + rng.random(n) * (b - a)) / slope


def _sizes(rng: np.random.Generator, mag_r: np.ndarray, offset_dex: float = 0.0) -> np.ndarray:
    """Major-axis half-light radius (arcsec) from the size-magnitude relation."""
    log_r = (
        _FIELD_SIZE_SLOPE * (mag_r - 20.0)
        + offset_dex
        + rng.normal(0.0, _SIZE_SCATTER_DEX, mag_r.size)
    )
    return np.clip(10.0**log_r, 0.08, 12.0)


def _band_fluxes(
    mag_r: np.ndarray, g_r: np.ndarray, r_z: np.ndarray, z_w1: np.ndarray, bands: tuple[str, ...]
) -> dict[str, np.ndarray]:
    """Fluxes (nanomaggies) in the image bands and W1 from r and colours (i interpolated)."""
    mags = {"g": mag_r + g_r, "r": mag_r, "z": mag_r - r_z}
    mags["i"] = mag_r - 0.55 * r_z
    mags["w1"] = mags["z"] - z_w1
    return {b: mag_to_nanomaggies(mags[b]) for b in (*bands, "w1")}


def _empty_columns(n: int, bands: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Default-valued columns of the objects table for ``n`` rows."""
    cols: dict[str, np.ndarray] = {
        "cls": np.full(n, "disk", dtype=object),
        "type": np.full(n, "EXP", dtype=object),
        "morph": np.full(n, "sersic", dtype=object),
        "shape_r": np.zeros(n),
        "shape_e1": np.zeros(n),
        "shape_e2": np.zeros(n),
        "sersic": np.zeros(n),
        "c1_re": np.zeros(n),
        "c1_n": np.ones(n),
        "c1_e1": np.zeros(n),
        "c1_e2": np.zeros(n),
        "c1_dx": np.zeros(n),
        "c1_dy": np.zeros(n),
        "c2_kind": np.full(n, "none", dtype=object),
        "c2_re": np.zeros(n),
        "c2_n": np.ones(n),
        "c2_e1": np.zeros(n),
        "c2_e2": np.zeros(n),
        "c2_dx": np.zeros(n),
        "c2_dy": np.zeros(n),
        "arm_amp": np.zeros(n),
        "arm_pitch_deg": np.zeros(n),
        "arm_phase": np.zeros(n),
        "is_lens": np.zeros(n, dtype=bool),
        "lens_source": np.full(n, "", dtype=object),
    }
    for b in bands:
        cols[f"frac2_{b}"] = np.zeros(n)
    return cols


def _catalog_shape_from_stamp(
    re_circ: np.ndarray, phi: np.ndarray, q: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Stamp-frame (R_circ, phi, q) -> (shape_r, shape_e1, shape_e2, c_e1, c_e2)."""
    c_e1, c_e2 = ellipticity_from_phi_q(phi, q)
    return re_circ / np.sqrt(q), -c_e1, -c_e2, c_e1, c_e2


# ----------------------------------------------------------------------------------------
# populations
# ----------------------------------------------------------------------------------------
def _stars(
    rng: np.random.Generator, config: DemoSkyConfig, info: BrickInfo, area: float
) -> dict[str, np.ndarray]:
    bands = config.image_bands
    n = int(rng.poisson(config.star_density_per_deg2 * area))
    cols = _empty_columns(n, bands)
    cols["ra"], cols["dec"] = _positions(rng, info, n)
    lo, hi = config.star_magnitude_range_r
    mag_r = _powerlaw_mags(rng, n, lo, hi, config.star_count_slope)
    g_r = rng.uniform(0.3, 1.4, n)
    r_z = 0.8 * g_r - 0.05 + rng.normal(0, 0.05, n)
    z_w1 = -0.4 + 0.3 * r_z + rng.normal(0, 0.1, n)
    for b, f in _band_fluxes(mag_r, g_r, r_z, z_w1, bands).items():
        cols[f"flux_{b}"] = f
    cols["cls"][:] = "star"
    cols["type"][:] = "PSF"
    cols["morph"][:] = "psf"
    cols["c1_re"][:] = 0.0
    cols["c1_n"][:] = 1.0
    return cols


def _disks(
    rng: np.random.Generator, config: DemoSkyConfig, info: BrickInfo, area: float
) -> dict[str, np.ndarray]:
    bands = config.image_bands
    n = int(rng.poisson(config.galaxy_density_per_deg2 * area))
    cols = _empty_columns(n, bands)
    cols["ra"], cols["dec"] = _positions(rng, info, n)
    lo, hi = config.magnitude_range_r
    mag_r = _powerlaw_mags(rng, n, lo, hi, config.galaxy_count_slope)
    g_r = np.clip(rng.normal(0.65, 0.25, n), 0.0, 1.4)
    r_z = np.clip(rng.normal(0.45, 0.2, n), -0.1, 1.2)
    z_w1 = rng.normal(0.2, 0.35, n)
    for b, f in _band_fluxes(mag_r, g_r, r_z, z_w1, bands).items():
        cols[f"flux_{b}"] = f
    shape_r = _sizes(rng, mag_r)
    q = rng.uniform(0.2, 1.0, n)
    phi = rng.uniform(0.0, np.pi, n)
    is_ser = rng.random(n) < 0.25
    n_sersic = np.where(is_ser, rng.uniform(0.6, 2.5, n), 1.0)
    is_rex = (mag_r > 22.5) & (shape_r < 0.6) & ~is_ser
    q = np.where(is_rex, 1.0, q)
    re_circ = shape_r * np.sqrt(q)
    sr, se1, se2, ce1, ce2 = _catalog_shape_from_stamp(re_circ, phi, q)
    cols["type"] = np.where(is_rex, "REX", np.where(is_ser, "SER", "EXP")).astype(object)
    cols["shape_r"], cols["shape_e1"], cols["shape_e2"] = sr, se1, se2
    cols["sersic"] = n_sersic
    cols["c1_re"], cols["c1_n"], cols["c1_e1"], cols["c1_e2"] = re_circ, n_sersic, ce1, ce2
    return cols


def _lrg_table(
    rng: np.random.Generator,
    config: DemoSkyConfig,
    ra: np.ndarray,
    dec: np.ndarray,
    mag_r: np.ndarray,
    max_mag_z: float | None = None,
) -> dict[str, np.ndarray]:
    """LRG-like galaxies at given positions and r magnitudes.

    With ``max_mag_z``, rows whose z magnitude (r minus their drawn r - z) is not below it get
    new r magnitudes from the LRG magnitude law until it is: the LRG distribution conditioned
    on z < ``max_mag_z`` (how lens hosts of a z-limited search are drawn).
    """
    bands = config.image_bands
    n = ra.size
    cols = _empty_columns(n, bands)
    cols["ra"], cols["dec"] = ra, dec
    g_r = rng.normal(1.8, 0.12, n)
    r_z = rng.normal(1.0, 0.1, n)
    z_w1 = rng.normal(1.5, 0.15, n)
    if max_mag_z is not None:
        mag_r = np.array(mag_r, dtype=np.float64)
        lo, hi = config.lrg_magnitude_range_r
        if (lo - r_z >= max_mag_z).any():
            raise ValueError(f"no LRG magnitude in [{lo}, {hi}] gives z < {max_mag_z}")
        bad = mag_r - r_z >= max_mag_z
        while bad.any():
            mag_r[bad] = _powerlaw_mags(rng, int(bad.sum()), lo, hi, config.galaxy_count_slope)
            bad = mag_r - r_z >= max_mag_z
    for b, f in _band_fluxes(mag_r, g_r, r_z, z_w1, bands).items():
        cols[f"flux_{b}"] = f
    shape_r = np.clip(_sizes(rng, mag_r), 0.3, 12.0)
    q = rng.uniform(0.5, 1.0, n)
    phi = rng.uniform(0.0, np.pi, n)
    is_dev = rng.random(n) < 0.6
    n_sersic = np.where(is_dev, 4.0, rng.uniform(2.5, 5.5, n))
    re_circ = shape_r * np.sqrt(q)
    sr, se1, se2, ce1, ce2 = _catalog_shape_from_stamp(re_circ, phi, q)
    cols["cls"][:] = "lrg"
    cols["type"] = np.where(is_dev, "DEV", "SER").astype(object)
    cols["shape_r"], cols["shape_e1"], cols["shape_e2"] = sr, se1, se2
    cols["sersic"] = n_sersic
    cols["c1_re"], cols["c1_n"], cols["c1_e1"], cols["c1_e2"] = re_circ, n_sersic, ce1, ce2
    return cols


def _lrgs(
    rng: np.random.Generator, config: DemoSkyConfig, info: BrickInfo, area: float
) -> dict[str, np.ndarray]:
    n = int(rng.poisson(config.lrg_density_per_deg2 * area))
    ra, dec = _positions(rng, info, n)
    lo, hi = config.lrg_magnitude_range_r
    mag_r = _powerlaw_mags(rng, n, lo, hi, config.galaxy_count_slope)
    return _lrg_table(rng, config, ra, dec, mag_r)


def _two_component_fluxes(
    mag_r: np.ndarray,
    frac2_r: np.ndarray,
    colours1: tuple[np.ndarray, np.ndarray, np.ndarray],
    colours2: tuple[np.ndarray, np.ndarray, np.ndarray],
    bands: tuple[str, ...],
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Total band fluxes and per-band fraction of component 2 for two-colour objects."""
    total_r = mag_to_nanomaggies(mag_r)
    f1 = _band_fluxes(nanomaggies_to_mag(total_r * (1.0 - frac2_r)), *colours1, bands)
    f2 = _band_fluxes(nanomaggies_to_mag(total_r * frac2_r), *colours2, bands)
    total = {b: f1[b] + f2[b] for b in f1}
    frac2 = {b: f2[b] / total[b] for b in bands}
    return total, frac2


def _confusers(
    rng: np.random.Generator, config: DemoSkyConfig, info: BrickInfo, area: float
) -> dict[str, np.ndarray]:
    bands = config.image_bands
    n = int(rng.poisson(config.confuser_fraction * config.galaxy_density_per_deg2 * area))
    cols = _empty_columns(n, bands)
    cols["ra"], cols["dec"] = _positions(rng, info, n)
    lo, hi = config.confuser_magnitude_range_r
    mag_r = _powerlaw_mags(rng, n, lo, hi, config.galaxy_count_slope)
    kind = rng.integers(0, 3, n)  # 0 ring, 1 spiral, 2 merger
    red = (rng.normal(1.5, 0.15, n), rng.normal(0.8, 0.1, n), rng.normal(1.2, 0.15, n))
    blue = (rng.normal(0.4, 0.1, n), rng.normal(0.3, 0.1, n), rng.normal(0.1, 0.2, n))
    # component 1 / component 2 geometry, drawn for all rows then selected per kind
    phi1 = rng.uniform(0.0, np.pi, n)
    phi2 = rng.uniform(0.0, np.pi, n)
    q1 = rng.uniform(0.6, 1.0, n)
    q2 = rng.uniform(0.6, 1.0, n)
    # rings: red bulge (c1) + blue Gaussian annulus (c2: re = radius, n = width sigma)
    ring_bulge_re = rng.uniform(0.4, 1.0, n)
    ring_radius = rng.uniform(1.2, 3.0, n)
    ring_width = rng.uniform(0.15, 0.35, n)
    ring_frac = rng.uniform(0.25, 0.5, n)
    # spirals: blue arm-modulated exponential disk (c1) + red bulge (c2)
    disk_re = rng.uniform(1.2, 3.5, n)
    disk_q = rng.uniform(0.4, 1.0, n)
    arm_amp = rng.uniform(0.5, 0.9, n)
    arm_pitch = rng.uniform(12.0, 30.0, n)
    arm_phase = rng.uniform(0.0, 2.0 * np.pi, n)
    bulge_re = rng.uniform(0.3, 0.8, n)
    bulge_frac = rng.uniform(0.1, 0.3, n)
    # mergers: two Sersics separated by d along angle psi, flux ratio
    sep = rng.uniform(0.8, 2.5, n)
    psi = rng.uniform(0.0, 2.0 * np.pi, n)
    ratio = rng.uniform(0.3, 1.0, n)
    m_re1 = rng.uniform(0.4, 1.2, n)
    m_re2 = rng.uniform(0.3, 1.0, n)
    m_n1 = rng.uniform(1.0, 4.0, n)
    m_n2 = rng.uniform(1.0, 4.0, n)
    first_red = rng.random(n) < 0.5
    second_red = rng.random(n) < 0.3
    cat_n = rng.uniform(3.0, 6.0, n)
    merger_cat_n = rng.uniform(1.0, 2.5, n)

    is_ring, is_spiral, is_merger = kind == 0, kind == 1, kind == 2
    frac2_r = np.where(is_ring, ring_frac, np.where(is_spiral, bulge_frac, ratio / (1 + ratio)))

    def pick(a: tuple[np.ndarray, ...], b: tuple[np.ndarray, ...], m: np.ndarray) -> tuple:
        return tuple(np.where(m, x, y) for x, y in zip(a, b, strict=True))

    col1 = pick(red, blue, is_ring | (is_merger & first_red))
    col2 = pick(blue, red, is_ring | (is_merger & ~second_red))
    total, frac2 = _two_component_fluxes(mag_r, frac2_r, col1, col2, bands)
    for b, f in total.items():
        cols[f"flux_{b}"] = f
    for b in bands:
        cols[f"frac2_{b}"] = frac2[b]

    cols["cls"] = np.array(["confuser_ring", "confuser_spiral", "confuser_merger"], dtype=object)[
        kind
    ]
    cols["morph"] = np.array(["ring", "spiral", "merger"], dtype=object)[kind]
    cols["c2_kind"] = np.where(is_ring, "ring", "sersic").astype(object)
    # component 1
    re1 = np.where(is_ring, ring_bulge_re, np.where(is_spiral, disk_re, m_re1))
    n1 = np.where(is_ring, 4.0, np.where(is_spiral, 1.0, m_n1))
    qq1 = np.where(is_spiral, disk_q, q1)
    ce1, ce2 = ellipticity_from_phi_q(phi1, qq1)
    cols["c1_re"], cols["c1_n"], cols["c1_e1"], cols["c1_e2"] = re1, n1, ce1, ce2
    # component 2 (merger offsets keep the r-band flux-weighted centroid at the position)
    f2 = frac2_r
    cols["c1_dx"] = np.where(is_merger, -f2 * sep * np.cos(psi), 0.0)
    cols["c1_dy"] = np.where(is_merger, -f2 * sep * np.sin(psi), 0.0)
    cols["c2_dx"] = np.where(is_merger, (1 - f2) * sep * np.cos(psi), 0.0)
    cols["c2_dy"] = np.where(is_merger, (1 - f2) * sep * np.sin(psi), 0.0)
    cols["c2_re"] = np.where(is_ring, ring_radius, np.where(is_spiral, bulge_re, m_re2))
    cols["c2_n"] = np.where(is_ring, ring_width, np.where(is_spiral, 4.0, m_n2))
    qq2 = np.where(is_ring, q2, np.where(is_spiral, 1.0, q2))
    phi_c2 = np.where(is_ring, phi1, phi2)
    cols["c2_e1"], cols["c2_e2"] = ellipticity_from_phi_q(phi_c2, qq2)
    cols["arm_amp"] = np.where(is_spiral, arm_amp, 0.0)
    cols["arm_pitch_deg"] = np.where(is_spiral, arm_pitch, 0.0)
    cols["arm_phase"] = np.where(is_spiral, arm_phase, 0.0)
    # single-model catalog entries (what a Tractor fit would roughly report)
    cat_re = np.where(
        is_ring,
        np.sqrt((1 - ring_frac) * ring_bulge_re**2 + ring_frac * ring_radius**2),
        np.where(is_spiral, disk_re, np.hypot(0.5 * (m_re1 + m_re2), 0.5 * sep)),
    )
    cat_phi = np.where(is_merger, psi, phi1)
    e_merger = np.clip(sep / (sep + 2 * (m_re1 + m_re2)), 0.05, 0.6)
    cat_q = np.where(is_merger, (1 - e_merger) / (1 + e_merger), qq1)
    sr, se1, se2, _, _ = _catalog_shape_from_stamp(cat_re, cat_phi, cat_q)
    cols["shape_r"], cols["shape_e1"], cols["shape_e2"] = sr, se1, se2
    cols["type"] = np.where(is_spiral, "EXP", "SER").astype(object)
    cols["sersic"] = np.where(is_ring, cat_n, np.where(is_spiral, 1.0, merger_cat_n))
    return cols


# ----------------------------------------------------------------------------------------
# lenses
# ----------------------------------------------------------------------------------------
def _lens_parameters(
    rng: np.random.Generator,
    config: DemoSkyConfig,
    n: int,
    light_e1: np.ndarray,
    light_e2: np.ndarray,
) -> dict[str, np.ndarray]:
    """SIE + shear + structured-source parameters (stamp frame, arcsec) for ``n`` lenses.

    Sources: :func:`~stronglens_assets.science.lensing.structured_source.draw_sources` of
    ``lenses.source_model()``; ``src_x/src_y`` are offsets from the lens centre, ``knot<k>_*``
    the knots (NaN in unused slots), ``src_flux_<b>`` the unlensed flux per band.
    """
    lc = config.lenses
    bands = config.image_bands
    theta_e = rng.uniform(*lc.theta_e_arcsec, n)
    q_m = rng.uniform(*lc.mass_axis_ratio, n)
    phi_light = 0.5 * np.arctan2(light_e2, light_e1)
    phi_m = np.mod(phi_light + np.deg2rad(rng.normal(0.0, 10.0, n)), np.pi)
    e1, e2 = ellipticity_from_phi_q(phi_m, q_m)
    gamma = lc.shear_max * np.sqrt(rng.random(n))
    phi_g = rng.uniform(0.0, np.pi, n)
    mag_r = rng.uniform(*lc.source_mag_r, n)
    g_r = rng.normal(lc.source_g_r[0], lc.source_g_r[1], n)
    r_z = rng.normal(lc.source_r_z[0], lc.source_r_z[1], n)
    src = draw_sources(lc.source_model(), theta_e, rng)
    flux = _band_fluxes(mag_r, g_r, r_z, r_z * 0, bands)
    out: dict[str, np.ndarray] = {
        "theta_e": theta_e,
        "q": q_m,
        "lens_phi": phi_m,
        "e1": e1,
        "e2": e2,
        "gamma1": gamma * np.cos(2 * phi_g),
        "gamma2": gamma * np.sin(2 * phi_g),
        "src_x": src.source_x,
        "src_y": src.source_y,
        "src_n": src.n_sersic,
        "src_r_e": src.r_e,
        "src_r_eff": src.r_eff,
        "src_q": src.axis_ratio,
        "src_phi": src.position_angle,
        "structure_fraction": src.structure_fraction,
        "n_knots": (src.knot_sigma > 0).sum(axis=1).astype(np.int16),
    }
    for b in bands:
        out[f"src_flux_{b}"] = flux[b]
        out[f"src_mag_{b}"] = nanomaggies_to_mag(flux[b])
    used = src.knot_sigma > 0
    for k in range(src.knot_x.shape[1]):
        for name, values in (
            ("x", src.knot_x),
            ("y", src.knot_y),
            ("sigma", src.knot_sigma),
            ("frac", src.knot_fraction),
        ):
            out[f"knot{k}_{name}"] = np.where(used[:, k], values[:, k], np.nan)
    return out


def lens_geometry(lenses: pd.DataFrame, center_x: np.ndarray, center_y: np.ndarray) -> LensGeometry:
    """The lenses' SIE + shear (truth columns) with their centres at ``center_x/y`` (arcsec,
    stamp frame)."""
    return LensGeometry(
        theta_e=lenses["theta_e"].to_numpy(np.float64),
        axis_ratio=lenses["q"].to_numpy(np.float64),
        position_angle=lenses["lens_phi"].to_numpy(np.float64),
        gamma1=lenses["gamma1"].to_numpy(np.float64),
        gamma2=lenses["gamma2"].to_numpy(np.float64),
        center_x=np.asarray(center_x, dtype=np.float64),
        center_y=np.asarray(center_y, dtype=np.float64),
    )


def source_parameters(lenses: pd.DataFrame) -> SourceParameters:
    """The lenses' structured sources (truth columns written by :func:`draw_brick_sky`)."""
    kmax = sum(1 for c in lenses.columns if c.startswith("knot") and c.endswith("_sigma"))

    def knots(name: str) -> np.ndarray:
        if kmax == 0:
            return np.zeros((len(lenses), 0))
        cols = [lenses[f"knot{k}_{name}"].to_numpy(np.float64) for k in range(kmax)]
        return np.nan_to_num(np.stack(cols, axis=1))

    return SourceParameters(
        source_x=lenses["src_x"].to_numpy(np.float64),
        source_y=lenses["src_y"].to_numpy(np.float64),
        n_sersic=lenses["src_n"].to_numpy(np.float64),
        r_e=lenses["src_r_e"].to_numpy(np.float64),
        r_eff=lenses["src_r_eff"].to_numpy(np.float64),
        axis_ratio=lenses["src_q"].to_numpy(np.float64),
        position_angle=lenses["src_phi"].to_numpy(np.float64),
        structure_fraction=lenses["structure_fraction"].to_numpy(np.float64),
        knot_x=knots("x"),
        knot_y=knots("y"),
        knot_sigma=knots("sigma"),
        knot_fraction=knots("frac"),
    )


def lenscat_in_brick(lenscat_positions: pd.DataFrame | None, brickname: str) -> pd.DataFrame:
    """Rows of ``lenscat_positions`` (name, ra, dec, grading) inside the brick, sorted by name."""
    cols = ["name", "ra", "dec", "grading"]
    if lenscat_positions is None or len(lenscat_positions) == 0:
        return pd.DataFrame(
            {c: pd.Series(dtype=float if c in ("ra", "dec") else object) for c in cols}
        )
    require_columns(lenscat_positions.columns, cols, "lenscat positions", hint=f"need {cols}")
    names = brick_name(
        lenscat_positions["ra"].to_numpy(float), lenscat_positions["dec"].to_numpy(float)
    )
    inside = lenscat_positions.loc[np.asarray(names) == brickname, cols]
    return inside.sort_values(["name", "ra", "dec"], kind="stable").reset_index(drop=True)


# ----------------------------------------------------------------------------------------
# conditions
# ----------------------------------------------------------------------------------------
def _conditions(rng: np.random.Generator, config: DemoSkyConfig) -> dict[str, BandConditions]:
    out: dict[str, BandConditions] = {}
    for band in config.image_bands:
        bc = config.bands[band]
        fwhm = float(
            np.clip(bc.psf_fwhm_arcsec * np.exp(rng.normal(0, bc.psf_fwhm_scatter)), 0.6, 4.0)
        )
        # a multiple of the psfsize map's quantisation step, so the stored map is exact
        fwhm = round(fwhm / PSFSIZE_STEP_ARCSEC) * PSFSIZE_STEP_ARCSEC
        depth = float(bc.psf_depth_mag + rng.normal(0, bc.depth_scatter_mag))
        edge = None
        if rng.random() < config.exposure_edge_probability:
            axis = "x" if rng.random() < 0.5 else "y"
            edge = (axis, int(rng.integers(300, BRICK_NPIX - 300)), 1 if rng.random() < 0.5 else -1)
        strips = []
        for _ in range(config.bad_strips_per_brick):
            axis = "x" if rng.random() < 0.5 else "y"
            width = int(
                rng.integers(config.bad_strip_width_pix[0], config.bad_strip_width_pix[1] + 1)
            )
            start = int(rng.integers(0, BRICK_NPIX - width))
            strips.append((axis, start, start + width))
        out[band] = BandConditions(band, fwhm, depth, bc.nobs, edge, tuple(strips))
    return out


# ----------------------------------------------------------------------------------------
# public API
# ----------------------------------------------------------------------------------------
def draw_brick_sky(
    config: DemoSkyConfig, brickname: str, lenscat_positions: pd.DataFrame | None
) -> SkyModel:
    """Draw the objects, lenses and observing conditions of one brick (deterministic).

    Args:
        config: the mock-sky configuration.
        brickname: DR10 brick name (need not be in ``config.bricks``).
        lenscat_positions: DataFrame with columns ``name, ra, dec, grading`` (deg); rows
            inside the brick become lenses with ``source = "lenscat"``. ``None`` = none.

    Returns:
        :class:`SkyModel` with ``objects`` (OBJID-ordered) and ``lenses`` tables.
    """
    info = parse_brick_name(brickname)
    bands = config.image_bands
    streams = rng_streams(config, info.brickid)
    area = _brick_area_deg2(info)
    conditions = _conditions(streams[_S_COND], config)

    parts = [
        _stars(streams[_S_STARS], config, info, area),
        _disks(streams[_S_DISKS], config, info, area),
        _lrgs(streams[_S_LRGS], config, info, area),
        _confusers(streams[_S_CONF], config, info, area),
    ]
    lenscat = lenscat_in_brick(lenscat_positions, brickname)
    rng_lc = streams[_S_LENSCAT]
    n_lc = len(lenscat)
    if n_lc:
        defl = _lrg_table(
            rng_lc,
            config,
            lenscat["ra"].to_numpy(float),
            lenscat["dec"].to_numpy(float),
            _powerlaw_mags(rng_lc, n_lc, *config.lrg_magnitude_range_r, config.galaxy_count_slope),
            config.lenses.deflector_max_mag_z,
        )
        defl["is_lens"][:] = True
        defl["lens_source"][:] = "lenscat"
        parts.append(defl)
    objects = pd.concat([pd.DataFrame(p) for p in parts], ignore_index=True)
    wcs = brick_wcs(info)
    x, y = wcs.all_world2pix(objects["ra"].to_numpy(), objects["dec"].to_numpy(), 0)
    objects["x"], objects["y"] = x, y
    objects["mag_r"] = nanomaggies_to_mag(objects["flux_r"].to_numpy())

    # mock lenses: planted on the brick's own LRGs (not on lenscat deflectors) of the lens
    # search's sample (z < deflector_max_mag_z), chosen uniformly: deflectors have the
    # magnitude and size distribution of the LRGs a z-limited search (and N1) selects
    rng_mock = streams[_S_MOCK]
    mag_z = nanomaggies_to_mag(objects["flux_z"].to_numpy())
    lrg_idx = np.flatnonzero(
        (objects["cls"] == "lrg").to_numpy()
        & ~objects["is_lens"].to_numpy()
        & (mag_z < config.lenses.deflector_max_mag_z)
    )
    k = min(config.lenses.mock_lenses_per_brick, lrg_idx.size)
    chosen = np.sort(rng_mock.permutation(lrg_idx)[:k])
    objects.loc[chosen, "is_lens"] = True
    objects.loc[chosen, "lens_source"] = "mock"

    # OBJID: a random permutation, so OBJID order does not reveal the population
    objid = np.empty(len(objects), dtype=np.int64)
    objid[streams[_S_IDS].permutation(len(objects))] = np.arange(len(objects))
    objects.insert(0, "objid", objid)

    # lens table: lenscat rows first (in name order), then mock lenses
    lc_rows = np.flatnonzero((objects["lens_source"] == "lenscat").to_numpy())
    lens_rows = np.concatenate([lc_rows, chosen]).astype(np.int64)
    n_lens = lens_rows.size
    lens = {
        "lens_id": np.arange(n_lens, dtype=np.int32),
        "source": np.array(["lenscat"] * n_lc + ["mock"] * chosen.size, dtype=object),
        "name": np.array(
            list(lenscat["name"]) + [f"MOCK-{brickname}-{i:03d}" for i in range(chosen.size)],
            dtype=object,
        ),
        "grading": np.array(list(lenscat["grading"]) + [""] * chosen.size, dtype=object),
        "ra": objects["ra"].to_numpy()[lens_rows],
        "dec": objects["dec"].to_numpy()[lens_rows],
        "x": objects["x"].to_numpy()[lens_rows],
        "y": objects["y"].to_numpy()[lens_rows],
        "deflector_objid": objects["objid"].to_numpy()[lens_rows],
        "deflector_mag_r": objects["mag_r"].to_numpy()[lens_rows],
    }
    params_lc = _lens_parameters(
        rng_lc,
        config,
        n_lc,
        objects["c1_e1"].to_numpy()[lc_rows],
        objects["c1_e2"].to_numpy()[lc_rows],
    )
    params_mock = _lens_parameters(
        rng_mock,
        config,
        chosen.size,
        objects["c1_e1"].to_numpy()[chosen],
        objects["c1_e2"].to_numpy()[chosen],
    )
    for key in params_lc:
        lens[key] = np.concatenate([params_lc[key], params_mock[key]])
    lenses = pd.DataFrame(lens)

    # catalog-level flags
    objects["maskbits"] = _bright_star_maskbits(objects)
    objects = objects.sort_values("objid", kind="stable").reset_index(drop=True)
    return SkyModel(
        brick=info,
        bands=bands,
        conditions=conditions,
        objects=objects,
        lenses=lenses,
        meta={"area_deg2": area, "n_lenscat_in_brick": n_lc},
    )


def _bright_star_maskbits(objects: pd.DataFrame) -> np.ndarray:
    """MASKBITS with BRIGHT set within the bright-star mask radius of r < 16 stars."""
    maskbits = np.zeros(len(objects), dtype=np.int32)
    is_bright = (objects["cls"] == "star").to_numpy() & (
        objects["mag_r"].to_numpy() < BRIGHT_STAR_MAG
    )
    if not is_bright.any():
        return maskbits
    x, y = objects["x"].to_numpy(), objects["y"].to_numpy()
    sx, sy = x[is_bright], y[is_bright]
    radius_pix = bright_star_mask_radius_arcsec(objects["mag_r"].to_numpy()[is_bright])
    radius_pix = radius_pix / PIXEL_SCALE_ARCSEC
    d2 = (x[:, None] - sx[None, :]) ** 2 + (y[:, None] - sy[None, :]) ** 2
    inside = (d2 <= radius_pix[None, :] ** 2).any(axis=1)
    maskbits[inside] |= MASKBITS_BRIGHT
    return maskbits
