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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
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


@contextmanager
def first_binary_table(
    path: str | os.PathLike[str], source: str, *, memmap: bool = True
) -> Iterator[fits.BinTableHDU]:
    """The first binary-table HDU of a FITS file, the file open while the context lasts
    (sweeps, survey-bricks summaries). An unreadable file or one without a binary table is a
    :class:`CatalogSchemaError` naming ``source``."""
    try:
        hdul = fits.open(path, memmap=memmap)
    except (OSError, ValueError) as exc:
        raise CatalogSchemaError(f"{source}: not a readable FITS file ({exc})") from exc
    with hdul:
        tables = [h for h in hdul if isinstance(h, fits.BinTableHDU)]
        if not tables:
            raise CatalogSchemaError(f"{source}: no binary-table HDU")
        yield tables[0]


def _read_fits_table(path: Path, columns: Sequence[str] | None, source: str) -> pd.DataFrame:
    with first_binary_table(path, source) as hdu:
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
