"""Positional cross-matching on the sky (ICRS, degrees in, arcsec separations out).

The one home of sky matching. Two questions, two functions:

* :func:`nearest_match`: for every source of catalogue 1, the nearest source of catalogue 2
  and its separation (:meth:`astropy.coordinates.SkyCoord.match_to_catalog_sky`, a KD-tree
  on unit vectors); a match when the great-circle separation is <= ``radius_arcsec``. Used
  where the counterpart itself is needed (positives -> DR10 sources).
* :func:`within_radius`: only whether a catalogue-2 source lies within ``radius_arcsec``
  (inclusive) of each catalogue-1 source, built for survey-size catalogue 1 (18.6M pool rows
  against a few thousand known lenses): a HEALPix pre-filter, then a KD-tree query of the
  candidates only with the chord distance. Used by the known-lens exclusion and the
  spectroscopic validation.
"""

from __future__ import annotations

from collections.abc import Sequence

import astropy.units as u
import healpy as hp
import numpy as np
import numpy.typing as npt
import pandas as pd
from astropy.coordinates import SkyCoord
from scipy.spatial import cKDTree

from stronglens_assets.science.catalogs.lenscat import CatalogSchemaError
from stronglens_assets.science.core.columns import require_columns

__all__ = [
    "DEFAULT_SOURCE_COLUMNS",
    "crossmatch_positives",
    "match_counts_by_tier",
    "nearest_match",
    "within_radius",
]

_MAX_PREFILTER_NSIDE = 1024  # lookup table of 12 * 1024**2 booleans (12.6 MB)

DEFAULT_SOURCE_COLUMNS: tuple[str, ...] = (
    "RA",
    "DEC",
    "BRICKNAME",
    "OBJID",
    "TYPE",
    "FLUX_G",
    "FLUX_R",
    "FLUX_Z",
    "FLUX_W1",
    "MW_TRANSMISSION_G",
    "MW_TRANSMISSION_R",
    "MW_TRANSMISSION_Z",
    "SHAPE_R",
    "SERSIC",
    "MASKBITS",
    "NOBS_G",
    "NOBS_R",
    "NOBS_Z",
    "PSFSIZE_G",
    "PSFSIZE_R",
    "PSFSIZE_Z",
    "PSFDEPTH_G",
    "PSFDEPTH_R",
    "PSFDEPTH_Z",
)
"""Sweep columns joined onto matched positives (those present in the sources are used): all
the quality gates need (fluxes, MW_TRANSMISSION, NOBS, MASKBITS, TYPE) plus the per-object
columns of the training manifest (SHAPE_R, PSFSIZE_*, PSFDEPTH_*)."""


def nearest_match(
    ra1: npt.ArrayLike,
    dec1: npt.ArrayLike,
    ra2: npt.ArrayLike,
    dec2: npt.ArrayLike,
    radius_arcsec: float,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Nearest neighbour in catalogue 2 of every source of catalogue 1.

    Args:
        ra1, dec1: catalogue 1 positions, deg.
        ra2, dec2: catalogue 2 positions, deg.
        radius_arcsec: match radius, arcsec (inclusive).

    Returns:
        ``(index, sep_arcsec)``: index into catalogue 2 of the nearest source, or -1 when it is
        farther than the radius (or catalogue 2 is empty); separation to the nearest source in
        arcsec (``inf`` when catalogue 2 is empty).
    """
    if not np.isfinite(radius_arcsec) or radius_arcsec < 0:
        raise ValueError(f"radius_arcsec must be finite and >= 0, got {radius_arcsec}")
    r1 = np.atleast_1d(np.asarray(ra1, dtype=np.float64))
    d1 = np.atleast_1d(np.asarray(dec1, dtype=np.float64))
    r2 = np.atleast_1d(np.asarray(ra2, dtype=np.float64))
    d2 = np.atleast_1d(np.asarray(dec2, dtype=np.float64))
    if r1.shape != d1.shape or r2.shape != d2.shape:
        raise ValueError("ra and dec of a catalogue must have the same shape")
    n1 = r1.size
    if n1 == 0 or r2.size == 0:
        return np.full(n1, -1, dtype=np.int64), np.full(n1, np.inf, dtype=np.float64)
    c1 = SkyCoord(r1.ravel() * u.deg, d1.ravel() * u.deg, frame="icrs")
    c2 = SkyCoord(r2.ravel() * u.deg, d2.ravel() * u.deg, frame="icrs")
    idx, sep2d, _ = c1.match_to_catalog_sky(c2)
    sep = np.asarray(sep2d.to_value(u.arcsec), dtype=np.float64)
    index = np.where(sep <= radius_arcsec, np.asarray(idx, dtype=np.int64), -1)
    return index, sep


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


def within_radius(
    ra: npt.ArrayLike,
    dec: npt.ArrayLike,
    lens_ra: npt.ArrayLike,
    lens_dec: npt.ArrayLike,
    radius_arcsec: float,
) -> npt.NDArray[np.bool_]:
    """True where (ra, dec) [deg] lies within ``radius_arcsec`` (inclusive) of any catalogue
    position (``lens_ra``, ``lens_dec``, deg; e.g. the known lenses).

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


def _take_or_na(series: pd.Series, index: np.ndarray) -> pd.Series:
    """``series`` values at ``index`` (-1 -> missing); ints/bools become nullable dtypes."""
    values = series.reset_index(drop=True)
    if isinstance(values.dtype, np.dtype) and values.dtype.kind in "iub":
        values = values.astype({"i": "Int64", "u": "UInt64", "b": "boolean"}[values.dtype.kind])
    return values.reindex(index).reset_index(drop=True)


def crossmatch_positives(
    positives_df: pd.DataFrame,
    sources_df: pd.DataFrame,
    radius_arcsec: float = 1.0,
    source_columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Match positives (columns ``ra``, ``dec`` in deg) to DR10 sources (``RA``, ``DEC``).

    Returns the positives (row order and columns kept, index reset) plus ``matched`` (bool),
    ``sep_arcsec`` (to the nearest source, arcsec; ``inf`` if there are no sources) and the
    source columns (default :data:`DEFAULT_SOURCE_COLUMNS` present in ``sources_df``, upper
    case as in the sweeps; missing values where unmatched, ints as nullable ``Int64``).
    """
    require_columns(
        positives_df.columns, ("ra", "dec"), "positives table", error=CatalogSchemaError
    )
    require_columns(sources_df.columns, ("RA", "DEC"), "sources table", error=CatalogSchemaError)
    wanted = DEFAULT_SOURCE_COLUMNS if source_columns is None else tuple(source_columns)
    if source_columns is not None:
        require_columns(sources_df.columns, wanted, "sources table", error=CatalogSchemaError)
    cols = [c for c in wanted if c in sources_df.columns]
    clash = [c for c in cols if c in positives_df.columns]
    if clash:
        raise ValueError(f"source columns {clash} clash with positives columns")
    index, sep = nearest_match(
        positives_df["ra"].to_numpy(dtype=np.float64),
        positives_df["dec"].to_numpy(dtype=np.float64),
        sources_df["RA"].to_numpy(dtype=np.float64),
        sources_df["DEC"].to_numpy(dtype=np.float64),
        radius_arcsec,
    )
    out = positives_df.reset_index(drop=True).copy()
    out["matched"] = index >= 0
    out["sep_arcsec"] = sep
    for col in cols:
        out[col] = _take_or_na(sources_df[col], index)
    return out


def match_counts_by_tier(df: pd.DataFrame) -> pd.DataFrame:
    """Counts per tier of a :func:`crossmatch_positives` result.

    Index: the tiers (sorted) then ``"all"``; columns ``total``, ``matched``, ``unmatched``
    (int64) and ``match_fraction`` (float64).
    """
    require_columns(df.columns, ("tier", "matched"), "crossmatch table", error=CatalogSchemaError)
    matched = df["matched"].astype(bool)
    grouped = matched.groupby(df["tier"].astype(str), sort=True)
    counts = pd.DataFrame({"total": grouped.size(), "matched": grouped.sum()})
    counts.loc["all"] = [len(df), int(matched.sum())]
    counts = counts.astype(np.int64)
    counts["unmatched"] = counts["total"] - counts["matched"]
    with np.errstate(invalid="ignore", divide="ignore"):
        counts["match_fraction"] = counts["matched"] / counts["total"].where(counts["total"] > 0)
    counts.index.name = "tier"
    return counts
