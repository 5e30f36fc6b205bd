"""Positional cross-matching on the sky (ICRS, degrees in, arcsec separations out).

Matching uses :meth:`astropy.coordinates.SkyCoord.match_to_catalog_sky` (a KD-tree on unit
vectors): for every source of catalogue 1 the nearest source of catalogue 2 is found; it is a
match when the great-circle separation is <= ``radius_arcsec``.
"""

from __future__ import annotations

from collections.abc import Sequence

import astropy.units as u
import numpy as np
import numpy.typing as npt
import pandas as pd
from astropy.coordinates import SkyCoord

from stronglens_assets.science.catalogs.lenscat import check_required_columns

__all__ = [
    "DEFAULT_SOURCE_COLUMNS",
    "crossmatch_positives",
    "match_counts_by_tier",
    "nearest_match",
]

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
    check_required_columns(positives_df.columns, ("ra", "dec"), "positives table")
    check_required_columns(sources_df.columns, ("RA", "DEC"), "sources table")
    wanted = DEFAULT_SOURCE_COLUMNS if source_columns is None else tuple(source_columns)
    if source_columns is not None:
        check_required_columns(sources_df.columns, wanted, "sources table")
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
    check_required_columns(df.columns, ("tier", "matched"), "crossmatch table")
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
