"""The lenscat strong-lens catalogue (PyPI ``lenscat``) and its DESI candidates.

The catalogue is the CSV ``lenscat/data/catalog.csv`` shipped inside the installed package.
It is located through the package metadata and read with pandas: ``import lenscat`` would
import ``ligo.skymap``, which this project does not need.

Raw columns: ``name, RA [deg], DEC [deg], zlens, type, grading, ref``. Systems found by
several searches have ``name``, ``zlens`` and ``ref`` joined with ``" | "``. Coordinates are
ICRS degrees.

This module also holds :class:`CatalogSchemaError`, the error raised by every catalogue
reader of the science layer (lenscat, DESI VAC, DR10 sweeps).
"""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from stronglens_assets.errors import StronglensError
from stronglens_assets.science.core.columns import require_columns
from stronglens_assets.science.core.hashing import sha256_file

__all__ = [
    "DESI_NAME_TOKEN",
    "GRADING_TIER",
    "LENSCAT_COLUMNS",
    "LENS_TYPES",
    "CatalogSchemaError",
    "CatalogValueError",
    "all_known_lens_positions",
    "catalog_checksum",
    "check_coordinates",
    "desi_candidates",
    "lenscat_csv_path",
    "parse_zlens",
    "read_lenscat_csv",
]

LENSCAT_COLUMNS: tuple[str, ...] = (
    "name",
    "RA [deg]",
    "DEC [deg]",
    "zlens",
    "type",
    "grading",
    "ref",
)
"""Columns every lenscat CSV must have."""

DESI_NAME_TOKEN = "DESI-"
"""A row is a DESI candidate when its (possibly ``" | "``-joined) name contains this token."""

GRADING_TIER: Mapping[str, str] = {"confident": "A", "confirmed": "A", "probable": "B"}
"""lenscat grading -> tier (``confirmed`` is the spelling of older lenscat releases)."""

LENS_TYPES: tuple[str, ...] = ("galaxy", "cluster", "group")

# first number in a zlens string: "0.4?" -> 0.4, "0.3 | 0.35" -> 0.3, "nan | 0.2" -> 0.2
_FIRST_NUMBER = r"((?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"


class CatalogSchemaError(StronglensError, ValueError):
    """A catalogue file lacks required columns/HDUs or holds invalid values.

    The message names the file and the offending columns.
    """


class CatalogValueError(CatalogSchemaError):
    """A catalogue column holds invalid values (NaN or out-of-range coordinates, ...)."""


def check_coordinates(
    ra: npt.ArrayLike, dec: npt.ArrayLike, source: str, ra_name: str, dec_name: str
) -> None:
    """Raise :class:`CatalogValueError` if RA is not finite in [0, 360] deg or Dec in [-90, 90].

    The message names ``source``, the column and the number of bad rows.
    """
    ra_a = np.asarray(ra, dtype=np.float64)
    dec_a = np.asarray(dec, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        bad_ra = ~(np.isfinite(ra_a) & (ra_a >= 0.0) & (ra_a <= 360.0))
        bad_dec = ~(np.isfinite(dec_a) & (np.abs(dec_a) <= 90.0))
    problems = [
        f"column {name!r}: {int(n)} row(s) non-finite or out of range {rng}"
        for name, n, rng in (
            (ra_name, bad_ra.sum(), "[0, 360] deg"),
            (dec_name, bad_dec.sum(), "[-90, 90] deg"),
        )
        if n
    ]
    if problems:
        raise CatalogValueError(f"{source}: " + "; ".join(problems))


def lenscat_csv_path() -> Path:
    """Path of ``lenscat/data/catalog.csv`` in the installed lenscat distribution.

    Located via :mod:`importlib.metadata` (no ``import lenscat``). Raises
    :class:`FileNotFoundError` if lenscat is not installed or the file is absent.
    """
    try:
        dist = importlib.metadata.distribution("lenscat")
    except importlib.metadata.PackageNotFoundError as exc:
        raise FileNotFoundError("the 'lenscat' package is not installed") from exc
    path = Path(str(dist.locate_file("lenscat/data/catalog.csv")))
    if not path.is_file():
        raise FileNotFoundError(f"lenscat catalogue not found at {path}")
    return path


def read_lenscat_csv(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a lenscat CSV and validate its schema.

    Returns the raw columns (``RA [deg]``/``DEC [deg]`` as float64 deg, the rest as strings).

    Raises:
        CatalogSchemaError: a required column is missing (file and column names in the message).
        CatalogValueError: NaN or out-of-range coordinates (file, column, row count).
    """
    path = Path(path)
    source = f"lenscat catalogue {path}"
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    require_columns(raw.columns, LENSCAT_COLUMNS, source, error=CatalogSchemaError)
    out = raw.copy()
    for col in ("RA [deg]", "DEC [deg]"):
        out[col] = pd.to_numeric(raw[col].str.strip().replace("", "nan"), errors="coerce")
        out[col] = out[col].astype(np.float64)
    check_coordinates(out["RA [deg]"], out["DEC [deg]"], source, "RA [deg]", "DEC [deg]")
    return out


def parse_zlens(values: Iterable[object] | pd.Series) -> pd.Series:
    """Lens redshift from lenscat ``zlens`` strings, as nullable ``Float64``.

    The first number in the string is used: ``"0.4?" -> 0.4``, ``"0.3 | 0.35" -> 0.3``,
    ``"nan | 0.2" -> 0.2``; strings without a number (``"-"``, ``"measured"``,
    ``"not measured"``, ``"nan"``) give ``<NA>``.
    """
    series = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
    text = series.astype("string").fillna("")
    first = text.str.extract(_FIRST_NUMBER, expand=False)
    return pd.to_numeric(first, errors="coerce").astype("Float64")


def desi_candidates(raw: pd.DataFrame) -> pd.DataFrame:
    """DESI lens candidates (``name`` contains ``"DESI-"``) with normalized columns.

    Columns: ``name`` (str), ``ra``, ``dec`` (float64 deg), ``tier`` ("A" = confident,
    "B" = probable), ``grading``, ``zlens`` (``Float64``, see :func:`parse_zlens`), ``ref``,
    ``lens_type`` (galaxy / cluster / group). The index is reset (0..n-1), row order kept.

    Raises:
        CatalogSchemaError: a required column is missing or a DESI row has an unknown grading
            or lens type.
    """
    require_columns(raw.columns, LENSCAT_COLUMNS, "lenscat table", error=CatalogSchemaError)
    names = raw["name"].astype(str)
    sel = raw.loc[names.str.contains(DESI_NAME_TOKEN, regex=False)].reset_index(drop=True)
    grading = sel["grading"].astype(str).str.strip().str.lower()
    tier = grading.map(GRADING_TIER)
    if tier.isna().any():
        bad = sorted(set(grading[tier.isna()]))
        raise CatalogSchemaError(f"lenscat table: unknown grading value(s) {bad} in DESI rows")
    lens_type = sel["type"].astype(str).str.strip().str.lower()
    unknown = sorted(set(lens_type) - set(LENS_TYPES))
    if unknown:
        raise CatalogSchemaError(f"lenscat table: unknown lens type(s) {unknown} in DESI rows")
    return pd.DataFrame(
        {
            "name": sel["name"].astype(str).to_numpy(),
            "ra": sel["RA [deg]"].to_numpy(dtype=np.float64),
            "dec": sel["DEC [deg]"].to_numpy(dtype=np.float64),
            "tier": tier.to_numpy(dtype=object),
            "grading": grading.to_numpy(dtype=object),
            "zlens": parse_zlens(sel["zlens"]).to_numpy(),
            "ref": sel["ref"].astype(str).to_numpy(),
            "lens_type": lens_type.to_numpy(dtype=object),
        }
    ).astype({"tier": str, "grading": str, "lens_type": str, "zlens": "Float64"})


def all_known_lens_positions(
    raw: pd.DataFrame,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(ra, dec) in deg of every lenscat row (all searches, all gradings): the exclusion set
    for negatives (32,838 positions in lenscat 1.1.3)."""
    require_columns(
        raw.columns, ("RA [deg]", "DEC [deg]"), "lenscat table", error=CatalogSchemaError
    )
    return (
        raw["RA [deg]"].to_numpy(dtype=np.float64),
        raw["DEC [deg]"].to_numpy(dtype=np.float64),
    )


def catalog_checksum(path: str | os.PathLike[str]) -> str:
    """SHA-256 hex digest of the file bytes (the data version of the lenscat asset)."""
    return sha256_file(path)
