"""Train/val/test splits by HEALPix cell, and the split guard.

* **split**: NEST cell at ``split_nside`` of (RA, DEC); its split is a hash of
  (``split_seed``, cell) mapped onto the fractions (see :func:`split_of_cells`), so a cell is
  in exactly one split and its split never changes when the footprint grows;
* **split guard**: a galaxy whose cutout box may reach a cell of another split is dropped
  (:func:`split_guard_mask`), so no pixel is in a train and a val/test cutout.
"""

from __future__ import annotations

import healpy as hp
import numpy as np
import numpy.typing as npt

from stronglens_assets.science.catalogs.healpix import healpix_pixel
from stronglens_assets.science.samples.negative_config import (
    GUARD_RESOLUTION_FACTOR,
    NegativeSelectionConfig,
)

__all__ = [
    "SPLIT_LABELS",
    "assign_split",
    "split_codes",
    "split_guard_mask",
    "split_of_cells",
    "splitmix64",
]

SPLIT_LABELS: tuple[str, ...] = ("train", "val", "test")
"""Split codes 0, 1, 2."""
_GUARD_TEST_NSIDE = 2**18  # resolution of the split guard's inclusive polygon test (0.8")
_U64 = np.uint64


def splitmix64(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """SplitMix64 finalizer (uint64 arithmetic modulo 2**64)."""
    with np.errstate(over="ignore"):
        z = x + _U64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> _U64(27))) * _U64(0x94D049BB133111EB)
        return z ^ (z >> _U64(31))


def _uniform_from_hash(h: npt.NDArray[np.uint64]) -> npt.NDArray[np.float64]:
    return (h >> _U64(11)).astype(np.float64) * 2.0**-53


def split_codes(cells: npt.ArrayLike, cfg: NegativeSelectionConfig) -> npt.NDArray[np.int8]:
    cells_u = np.asarray(cells, dtype=np.int64).astype(np.uint64)
    key = splitmix64(np.array([cfg.split_seed], dtype=np.uint64))[0]
    u = _uniform_from_hash(splitmix64(cells_u ^ key))
    fr = cfg.split_fractions
    return np.where(u < fr.train, 0, np.where(u < fr.train + fr.val, 1, 2)).astype(np.int8)


def split_of_cells(cells: npt.ArrayLike, cfg: NegativeSelectionConfig) -> npt.NDArray[np.str_]:
    """Split of NEST cells at ``cfg.split_nside``.

    ``u = (splitmix64(splitmix64(split_seed) XOR cell) >> 11) / 2**53``; train if
    u < f_train, val if u < f_train + f_val, else test. Depends only on (seed, cell).
    """
    return np.asarray(SPLIT_LABELS)[split_codes(cells, cfg)]


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
        >= GUARD_RESOLUTION_FACTOR * half_diagonal
    ):
        fine_nside *= 2
    shift = np.int64(2 * (fine_nside.bit_length() - nside.bit_length()))
    fine = np.asarray(healpix_pixel(ra_a, dec_a, fine_nside), dtype=np.int64).reshape(-1)
    own = split_codes(fine >> shift, cfg)
    neighbours = hp.get_all_neighbours(fine_nside, fine, nest=True)  # (8, n), -1 = none
    neighbour_cells = np.where(neighbours >= 0, neighbours, fine[None, :]) >> shift
    other = split_codes(neighbour_cells.ravel(), cfg).reshape(neighbour_cells.shape)
    fact = max(4, _GUARD_TEST_NSIDE // nside)  # overlap tested on ~0.8" sub-pixels
    for i in np.flatnonzero((other != own).any(axis=0)):
        dra = h / max(np.cos(np.deg2rad(dec_a[i])), 1e-6)
        corners_ra = ra_a[i] + np.array([-dra, dra, dra, -dra])
        corners_dec = np.clip(dec_a[i] + np.array([-h, -h, h, h]), -90.0, 90.0)
        vertices = hp.ang2vec(corners_ra, corners_dec, lonlat=True)
        touched = hp.query_polygon(nside, vertices, inclusive=True, nest=True, fact=fact)
        out[i] = bool((split_codes(touched, cfg) != own[i]).any())
    return out
