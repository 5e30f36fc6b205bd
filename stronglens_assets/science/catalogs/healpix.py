"""NEST HEALPix helpers (healpy), vectorized.

Conventions: all pixel indices are in the NESTED scheme; coordinates are (RA, Dec) in degrees
(``lonlat=True``); ``nside`` must be a power of two in [1, 2**29].
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import healpy as hp
import numpy as np
import numpy.typing as npt

from stronglens_assets.science.catalogs.bricks import BRICK_SIZE_DEG, bricks_table

__all__ = [
    "MAX_NSIDE",
    "MAX_PARTITION_NSIDE",
    "coarse_pixel",
    "healpix_pixel",
    "pixel_area_deg2",
    "pixels_covering_bricks",
    "validate_nside",
]

MAX_PARTITION_NSIDE: int = 32
"""Largest nside used for partition keys (12 * 32**2 = 12,288 NEST pixels)."""
MAX_NSIDE: int = 2**29
"""Largest nside supported by HEALPix / healpy."""

# Maximum RA span (deg) of one polygon segment along a constant-Dec brick edge.
_MAX_SEGMENT_DEG = 1.0


def validate_nside(nside: Any, name: str = "nside") -> int:
    """Return ``nside`` as int if it is a power of two in [1, 2**29], else raise ValueError."""
    if isinstance(nside, bool) or not isinstance(nside, int | np.integer):
        raise ValueError(f"{name} must be an integer power of two in [1, 2**29], got {nside!r}")
    n = int(nside)
    if n < 1 or n > MAX_NSIDE or (n & (n - 1)) != 0:
        raise ValueError(f"{name} must be a power of two in [1, 2**29], got {n}")
    return n


def healpix_pixel(ra: npt.ArrayLike, dec: npt.ArrayLike, nside: int) -> Any:
    """NEST pixel index of (ra, dec) [deg] at ``nside`` (int64 array; int for scalar input)."""
    n = validate_nside(nside)
    ra_a = np.asarray(ra, dtype=np.float64)
    dec_a = np.asarray(dec, dtype=np.float64)
    bad = ~np.isfinite(ra_a + dec_a) | (np.abs(dec_a) > 90.0)
    if np.any(bad):
        raise ValueError("RA/Dec must be finite with Dec in [-90, 90] deg")
    pix = np.asarray(hp.ang2pix(n, ra_a, dec_a, nest=True, lonlat=True), dtype=np.int64)
    if ra_a.ndim == 0 and dec_a.ndim == 0:
        return int(pix)
    return pix


def pixel_area_deg2(nside: int) -> float:
    """Area of one HEALPix pixel at ``nside`` in square degrees."""
    return float(hp.nside2pixarea(validate_nside(nside), degrees=True))


def coarse_pixel(pixel: npt.ArrayLike, nside_fine: int, nside_coarse: int) -> Any:
    """NEST parent pixel at ``nside_coarse`` of NEST ``pixel`` at ``nside_fine``.

    Uses ``pixel >> 2 * log2(nside_fine / nside_coarse)``; requires nside_coarse <= nside_fine.
    """
    fine = validate_nside(nside_fine, "nside_fine")
    coarse = validate_nside(nside_coarse, "nside_coarse")
    if coarse > fine:
        raise ValueError(f"nside_coarse ({coarse}) must be <= nside_fine ({fine})")
    pix = np.asarray(pixel)
    if pix.dtype.kind not in "iu":
        raise ValueError(f"pixel indices must be integers, got dtype {pix.dtype}")
    pix = pix.astype(np.int64)
    npix = 12 * fine * fine
    if np.any((pix < 0) | (pix >= npix)):
        raise ValueError(f"pixel indices must be in [0, {npix}) for nside_fine={fine}")
    shift = 2 * (fine.bit_length() - coarse.bit_length())
    out = pix >> shift
    return int(out) if out.ndim == 0 else out


def _equatorward_vertex_dec(edge_dec: float, dlon_deg: float) -> float:
    """Dec for chord end points so that the great-circle chord stays outside the brick.

    A great circle between two points at the same Dec bows towards the nearer pole. For a brick
    edge whose brick lies on the pole side (e.g. a northern brick's lower edge) we move the end
    points equatorward so that the chord's mid-point lies exactly on the original edge:
    ``tan(colat') = tan(colat) / cos(dlon / 2)`` (colatitude from the nearer pole).
    """
    colat = np.deg2rad(90.0 - abs(edge_dec))
    colat_new = np.arctan(np.tan(colat) / np.cos(np.deg2rad(dlon_deg) / 2.0))
    return float(np.copysign(90.0 - np.rad2deg(colat_new), edge_dec))


def _brick_polygon(ra1: float, ra2: float, dec1: float, dec2: float) -> np.ndarray:
    """Convex (x, y, z) polygon (N, 3) enclosing the brick [ra1, ra2] x [dec1, dec2]."""
    span = ra2 - ra1
    nseg = max(1, int(np.ceil(span / _MAX_SEGMENT_DEG)))
    ras = np.linspace(ra1, ra2, nseg + 1)
    dlon = span / nseg
    if dec1 > 0.0:  # northern brick: lower edge chord would cut into the brick
        lo = np.full(nseg + 1, _equatorward_vertex_dec(dec1, dlon))
        hi_ra, hi_dec = np.array([ra2, ra1]), np.array([dec2, dec2])
        lon = np.concatenate([ras, hi_ra])
        lat = np.concatenate([lo, hi_dec])
    elif dec2 < 0.0:  # southern brick: upper edge chord would cut into the brick
        hi = np.full(nseg + 1, _equatorward_vertex_dec(dec2, dlon))
        lon = np.concatenate([[ra1, ra2], ras[::-1]])
        lat = np.concatenate([[dec1, dec1], hi])
    else:  # straddles the equator: both chords bow outward
        lon = np.array([ra1, ra2, ra2, ra1])
        lat = np.array([dec1, dec1, dec2, dec2])
    return np.asarray(hp.ang2vec(lon, lat, lonlat=True))


def pixels_covering_bricks(brick_names: Iterable[str], nside: int) -> np.ndarray:
    """Sorted unique NEST pixels at ``nside`` overlapping any of the named DR10 bricks.

    Each brick is queried with ``healpy.query_polygon(..., inclusive=True, nest=True)`` on a
    convex polygon enclosing it (constant-Dec edges are approximated from outside); pole bricks
    use ``query_disc`` of radius 0.125 deg about the pole. The result is a (slight) superset of
    the exact cover and always contains the pixel of every brick centre.
    """
    n = validate_nside(nside)
    table = bricks_table(brick_names).drop_duplicates("brickname")  # validates names
    if table.empty:
        return np.empty(0, dtype=np.int64)
    ra_c, dec_c = table["ra"].to_numpy(), table["dec"].to_numpy()
    ra1, ra2 = table["ra1"].to_numpy(), table["ra2"].to_numpy()
    dec1, dec2 = table["dec1"].to_numpy(), table["dec2"].to_numpy()
    parts: list[np.ndarray] = [
        np.asarray(hp.ang2pix(n, ra_c, dec_c, nest=True, lonlat=True), dtype=np.int64)
    ]
    radius = np.deg2rad(BRICK_SIZE_DEG / 2.0)
    # one healpy query per brick (healpy has no batched polygon query)
    for i in range(len(table)):
        if abs(dec_c[i]) == 90.0:
            pole = hp.ang2vec(0.0, float(dec_c[i]), lonlat=True)
            pix = hp.query_disc(n, pole, radius, inclusive=True, nest=True)
        else:
            poly = _brick_polygon(float(ra1[i]), float(ra2[i]), float(dec1[i]), float(dec2[i]))
            pix = hp.query_polygon(n, poly, inclusive=True, nest=True)
        parts.append(np.asarray(pix, dtype=np.int64))
    return np.unique(np.concatenate(parts))
