"""Legacy Surveys DR10 sweep catalogues: schema, dtype normalization and a reader.

Sweep files (``sweep/10.1/sweep-<rrr>[pm]<ddd>-<rrr>[pm]<ddd>.fits``) hold one row per Tractor
source. Units: RA/DEC in ICRS deg; fluxes (FLUX_*, FIBERFLUX_*) in nanomaggies (AB zero point
22.5: m = 22.5 - 2.5 log10(flux)); FLUX_IVAR_* in 1/nanomaggy^2; SHAPE_R (half-light radius)
and PSFSIZE_* (PSF FWHM) in arcsec; MW_TRANSMISSION_* dimensionless (divide fluxes by it to
correct for Galactic extinction).

:func:`read_sweep` reads Parquet or FITS, keeps only ``BRICK_PRIMARY`` rows when that column
exists, checks the required columns and coordinates, and returns normalized dtypes
(:data:`SWEEP_DTYPES`). Extra columns are kept; FITS vector columns become ``NAME_0``, ...
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from astropy.io import fits

from stronglens_assets.science.catalogs.lenscat import (
    CatalogSchemaError,
    CatalogValueError,
)
from stronglens_assets.science.core.columns import require_columns
from stronglens_assets.science.core.fits_columns import native_array

__all__ = [
    "SWEEP_COLUMNS",
    "SWEEP_DTYPES",
    "SWEEP_TYPES",
    "CatalogSchemaError",
    "CatalogValueError",
    "normalize_sweep",
    "read_sweep",
    "synthetic_sweep",
]

_F32 = np.dtype(np.float32)
#: Required sweep columns and their normalized dtypes (``str`` = Python strings, stripped).
SWEEP_DTYPES: dict[str, Any] = {
    "RA": np.dtype(np.float64),
    "DEC": np.dtype(np.float64),
    "BRICKNAME": str,
    "OBJID": np.dtype(np.int64),
    "TYPE": str,
    "FLUX_G": _F32,
    "FLUX_R": _F32,
    "FLUX_Z": _F32,
    "FLUX_W1": _F32,
    "FLUX_IVAR_G": _F32,
    "FLUX_IVAR_R": _F32,
    "FLUX_IVAR_Z": _F32,
    "FLUX_IVAR_W1": _F32,
    "MW_TRANSMISSION_G": _F32,
    "MW_TRANSMISSION_R": _F32,
    "MW_TRANSMISSION_Z": _F32,
    "MW_TRANSMISSION_W1": _F32,
    "SHAPE_R": _F32,
    "SERSIC": _F32,
    "NOBS_G": np.dtype(np.int16),
    "NOBS_R": np.dtype(np.int16),
    "NOBS_Z": np.dtype(np.int16),
    "PSFSIZE_G": _F32,
    "PSFSIZE_R": _F32,
    "PSFSIZE_Z": _F32,
    "FIBERFLUX_Z": _F32,
    "MASKBITS": np.dtype(np.int32),
}
SWEEP_COLUMNS: tuple[str, ...] = tuple(SWEEP_DTYPES)
"""Columns every sweep table must have."""
SWEEP_TYPES: tuple[str, ...] = ("PSF", "REX", "DEV", "EXP", "SER", "DUP")
"""Tractor morphological types."""

_COORDS = ("RA", "DEC")


def normalize_sweep(
    df: pd.DataFrame, source: str = "sweep table", *, check_values: bool = True
) -> pd.DataFrame:
    """Validate a sweep DataFrame and cast the required columns to :data:`SWEEP_DTYPES`.

    Keeps only ``BRICK_PRIMARY`` rows when that column exists; extra columns are kept
    unchanged; the index is reset.

    Raises:
        CatalogSchemaError: required columns missing (``source`` and all missing names given).
        CatalogValueError: non-finite RA/DEC, or |DEC| > 90 deg (column and row count given).
    """
    require_columns(df.columns, SWEEP_COLUMNS, source, error=CatalogSchemaError)
    if "BRICK_PRIMARY" in df.columns:
        primary = df["BRICK_PRIMARY"].to_numpy()
        if primary.dtype != np.bool_:
            primary = primary.astype(np.int8) != 0
        if not primary.all():
            df = df.loc[primary]
    out = df.reset_index(drop=True)
    casts: dict[str, Any] = {}
    for name, dtype in SWEEP_DTYPES.items():
        col = out[name]
        if dtype is str:
            if col.dtype != "str":
                casts[name] = col.astype(str).str.strip()
            else:
                casts[name] = col.str.strip()
        elif col.dtype != dtype:
            if dtype.kind in "iu" and col.isna().any():
                raise CatalogValueError(f"{source}: column {name!r} has {col.isna().sum()} null(s)")
            casts[name] = col.to_numpy().astype(dtype)
    if casts:
        out = out.assign(**casts)
    if check_values:
        problems = []
        for name in _COORDS:
            values = out[name].to_numpy()
            bad = ~np.isfinite(values)
            if name == "DEC":
                with np.errstate(invalid="ignore"):
                    bad |= np.abs(values) > 90.0
            if bad.any():
                problems.append(f"column {name!r}: {int(bad.sum())} non-finite/out-of-range row(s)")
        if problems:
            raise CatalogValueError(f"{source}: " + "; ".join(problems))
    return out


def _read_fits_table(path: Path, columns: Sequence[str] | None, source: str) -> pd.DataFrame:
    try:
        hdul = fits.open(path, memmap=True)
    except (OSError, ValueError) as exc:
        raise CatalogSchemaError(f"{source}: not a readable FITS file ({exc})") from exc
    with hdul:
        tables = [h for h in hdul if isinstance(h, fits.BinTableHDU)]
        if not tables:
            raise CatalogSchemaError(f"{source}: no binary-table HDU")
        hdu = tables[0]
        names = list(hdu.columns.names)
        upper = {n.upper(): n for n in names}
        require_columns(upper, SWEEP_COLUMNS, source, error=CatalogSchemaError)
        wanted = (
            names
            if columns is None
            else [
                upper[c.upper()]
                for c in (*SWEEP_COLUMNS, "BRICK_PRIMARY", *columns)
                if c.upper() in upper
            ]
        )
        data = hdu.data
        out: dict[str, np.ndarray] = {}
        for name in dict.fromkeys(wanted):
            arr = native_array(np.array(data[name]))
            key = name.upper()
            if arr.ndim > 1:
                flat = arr.reshape(arr.shape[0], -1)
                for i in range(flat.shape[1]):
                    out[f"{key}_{i}"] = flat[:, i]
            else:
                out[key] = arr
    return pd.DataFrame(out)


def read_sweep(path: str | os.PathLike[str], columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Read a DR10 sweep file (``.parquet`` or ``.fits``/``.fits.gz``/``.fits.fz``).

    ``columns``: extra columns to keep besides :data:`SWEEP_COLUMNS` (``None`` = all columns).
    FITS column names are upper-cased. See :func:`normalize_sweep` for checks and dtypes.

    Raises:
        CatalogSchemaError: unreadable file or missing columns (file and columns named).
        CatalogValueError: non-finite RA/DEC (file, column and number of bad rows named).
    """
    path = Path(path)
    source = f"sweep file {path}"
    suffixes = "".join(path.suffixes).lower()
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            schema = pq.read_schema(path)
        except (OSError, ValueError) as exc:
            raise CatalogSchemaError(f"{source}: not a readable Parquet file ({exc})") from exc
        require_columns(schema.names, SWEEP_COLUMNS, source, error=CatalogSchemaError)
        wanted = None
        if columns is not None:
            keep = {*SWEEP_COLUMNS, "BRICK_PRIMARY", *columns}
            wanted = [n for n in schema.names if n in keep]
        frame = pq.read_table(path, columns=wanted).to_pandas()
    elif ".fits" in suffixes or ".fit" in suffixes:
        frame = _read_fits_table(path, columns, source)
    else:
        raise CatalogSchemaError(f"{source}: unknown format (expected .parquet or .fits)")
    return normalize_sweep(frame, source)


def synthetic_sweep(
    n: int,
    seed: int,
    *,
    ra_range: tuple[float, float] = (35.0, 37.0),
    dec_range: tuple[float, float] = (-5.0, -3.0),
) -> pd.DataFrame:
    """Seeded synthetic sweep table with realistic columns (for tests and benchmarks only).

    Uniform positions in the RA/Dec box [deg]; Tractor TYPE mix (35% PSF, 30% REX, 15% EXP,
    10% DEV, 9% SER, 1% DUP); a red (LRG-like, 30%) and a blue galaxy population; z magnitudes
    rising steeply to the faint end; fluxes in nanomaggies with noise (some non-positive);
    occasional MASKBITS and NOBS = 0. Dtypes as :data:`SWEEP_DTYPES`; BRICKNAME from the DR10
    brick grid, OBJID unique within a brick.
    """
    from stronglens_assets.science.catalogs.bricks import brick_name

    rng = np.random.default_rng(seed)
    ra = rng.uniform(*ra_range, size=n)
    dec = np.rad2deg(np.arcsin(rng.uniform(*np.sin(np.deg2rad(np.asarray(dec_range))), size=n)))
    types = np.array(["PSF", "REX", "EXP", "DEV", "SER", "DUP"])
    tcode = rng.choice(6, size=n, p=[0.35, 0.30, 0.15, 0.10, 0.09, 0.01])
    red = rng.random(n) < 0.30
    mag_z = 24.0 - rng.exponential(3.0, size=n)
    mag_z = np.maximum(mag_z, 15.0)
    g_r = np.where(red, rng.normal(1.7, 0.3, n), rng.normal(0.6, 0.3, n))
    r_z = np.where(red, rng.normal(1.4, 0.3, n), rng.normal(0.5, 0.3, n))
    z_w1 = np.where(red, rng.normal(1.3, 0.5, n), rng.normal(0.3, 0.5, n))
    mags = {"Z": mag_z, "R": mag_z + r_z, "G": mag_z + r_z + g_r, "W1": mag_z - z_w1}
    mw = {b: rng.uniform(lo, 1.0, n) for b, lo in (("G", 0.80), ("R", 0.86), ("Z", 0.92))}
    mw["W1"] = rng.uniform(0.98, 1.0, n)
    noise = {"G": 0.05, "R": 0.07, "Z": 0.2, "W1": 1.0}  # nanomaggies
    cols: dict[str, Any] = {"RA": ra, "DEC": dec}
    for band in ("G", "R", "Z", "W1"):
        flux = 10.0 ** (-0.4 * (mags[band] - 22.5)) * mw[band]
        cols[f"FLUX_{band}"] = flux + rng.normal(0.0, noise[band], n)
        cols[f"FLUX_IVAR_{band}"] = np.full(n, 1.0 / noise[band] ** 2)
        cols[f"MW_TRANSMISSION_{band}"] = mw[band]
    psf = tcode == 0
    shape_r = np.where(
        psf, 0.0, rng.lognormal(np.where(tcode == 1, np.log(0.5), np.log(1.0)), 0.5, n)
    )
    sersic = np.select(
        [tcode == 4, tcode == 3, psf], [rng.uniform(0.5, 6.0, n), 4.0, 0.0], default=1.0
    )
    cols["SHAPE_R"] = shape_r
    cols["SERSIC"] = sersic
    for band in ("G", "R", "Z"):
        cols[f"NOBS_{band}"] = np.where(rng.random(n) < 0.03, 0, rng.integers(1, 8, n))
        cols[f"PSFSIZE_{band}"] = rng.uniform(0.9, 1.6, n)
    frac = np.where(psf, 0.78, rng.uniform(0.15, 0.6, n))
    cols["FIBERFLUX_Z"] = cols["FLUX_Z"] * frac
    bits = rng.choice([1, 5, 8, 12, 13], size=n)
    cols["MASKBITS"] = np.where(rng.random(n) < 0.05, 1 << bits, 0)
    names = np.asarray(brick_name(ra, dec))
    order = np.argsort(names, kind="stable")
    objid = np.empty(n, dtype=np.int64)
    sorted_names = names[order]
    starts = np.flatnonzero(np.r_[True, sorted_names[1:] != sorted_names[:-1]])
    run = np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n]))
    objid[order] = run
    frame = pd.DataFrame(cols)
    frame.insert(2, "BRICKNAME", pd.array(names, dtype="str"))
    frame.insert(3, "OBJID", objid)
    frame.insert(4, "TYPE", pd.array(types[tcode], dtype="str"))
    return normalize_sweep(frame, "synthetic sweep")
