"""Legacy Surveys DR10 brick grid (0.25 deg bricks), vectorized.

Independent implementation of the brick tiling used by the Legacy Surveys (identical to
``desiutil.brick.Bricks(bricksize=0.25)``):

* rows are centred at Dec = -90 + 0.25 i (i = 0 .. 720); row Dec edges are centre +/- 0.125,
  clipped to [-90, 90];
* a row has ``ceil(360 cos(declo) / 0.25 / 2) * 2`` columns with
  ``declo = max(0, |dec_centre| - 0.125)``; each pole is a single brick (centre RA 180);
* RA edges of a row are evenly spaced from 0 to 360; the brick centre RA is the mid-point;
* names are ``RRRR[pm]DDD``: the first four digits of ``%07.0f`` of ``ra_centre * 1e4`` and the
  first three digits of ``%06.0f`` of ``|dec_centre| * 1e4`` (``p`` for dec_centre >= 0);
* BRICKID is 1-based: number of bricks in all previous rows + column + 1.

All angles are in degrees (ICRS). RA is wrapped modulo 360; Dec must lie in [-90, 90].
Scalar inputs give scalar outputs, array inputs give arrays (inputs are broadcast together).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from astropy.io import fits
from astropy.wcs import WCS

from stronglens_assets.errors import StronglensError

__all__ = [
    "BRICK_NPIX",
    "BRICK_SIZE_DEG",
    "N_BRICKS",
    "PIXEL_SCALE_ARCSEC",
    "BrickInfo",
    "BrickNameError",
    "brick_center",
    "brick_edges",
    "brick_id",
    "brick_name",
    "brick_row_col",
    "brick_wcs",
    "brick_wcs_header",
    "bricks_table",
    "parse_brick_name",
]

BRICK_SIZE_DEG: float = 0.25
"""Brick side length in degrees."""
BRICK_NPIX: int = 3600
"""Coadd image side length in pixels."""
PIXEL_SCALE_ARCSEC: float = 0.262
"""Coadd pixel scale in arcsec / pixel."""

_HALF = BRICK_SIZE_DEG / 2.0

# --------------------------------------------------------------------------------------------
# Precomputed per-row grid (721 rows).
# --------------------------------------------------------------------------------------------
_NROW: int = round(180.0 / BRICK_SIZE_DEG) + 1
#: Dec of each row centre (exact multiples of 0.25).
_ROW_DEC: npt.NDArray[np.float64] = -90.0 + BRICK_SIZE_DEG * np.arange(_NROW, dtype=np.float64)
_ROW_DEC1: npt.NDArray[np.float64] = np.clip(_ROW_DEC - _HALF, -90.0, 90.0)
_ROW_DEC2: npt.NDArray[np.float64] = np.clip(_ROW_DEC + _HALF, -90.0, 90.0)
_declo = np.maximum(0.0, np.abs(_ROW_DEC) - _HALF)
#: Number of bricks (columns) in each row; even, except the single-brick poles.
_NCOL: npt.NDArray[np.int64] = (
    np.ceil(360.0 / BRICK_SIZE_DEG * np.cos(np.deg2rad(_declo)) / 2.0).astype(np.int64) * 2
)
_NCOL[0] = 1
_NCOL[-1] = 1
#: Number of bricks in all rows before each row (BRICKID offset).
_ROW_OFFSET: npt.NDArray[np.int64] = np.concatenate([[0], np.cumsum(_NCOL)[:-1]]).astype(np.int64)
N_BRICKS: int = int(_NCOL.sum())  # 662,174 bricks
del _declo

_ASCII_0 = ord("0")


class BrickNameError(StronglensError, ValueError):
    """Raised for a brick name that is malformed or not in the DR10 grid."""


@dataclass(frozen=True)
class BrickInfo:
    """One DR10 brick. Angles in degrees; ``row``/``col`` are 0-based, ``brickid`` 1-based."""

    name: str
    brickid: int
    row: int
    col: int
    ra: float
    dec: float
    ra1: float
    ra2: float
    dec1: float
    dec2: float


# --------------------------------------------------------------------------------------------
# Core vectorized machinery
# --------------------------------------------------------------------------------------------
def _prepare(
    ra: npt.ArrayLike, dec: npt.ArrayLike
) -> tuple[np.ndarray, np.ndarray, tuple[int, ...], bool]:
    """Broadcast, validate and RA-wrap inputs.

    Returns flat float64 (ra, dec), the broadcast shape and whether both inputs were scalars.
    """
    ra_a = np.asarray(ra, dtype=np.float64)
    dec_a = np.asarray(dec, dtype=np.float64)
    scalar = ra_a.ndim == 0 and dec_a.ndim == 0
    ra_a, dec_a = np.broadcast_arrays(ra_a, dec_a)
    shape = ra_a.shape
    ra_f = ra_a.ravel()
    dec_f = dec_a.ravel()
    bad_ra = ~np.isfinite(ra_f)
    if bad_ra.any():
        raise ValueError(f"non-finite RA value(s): {_few(ra_f[bad_ra])}")
    bad_dec = ~np.isfinite(dec_f) | (dec_f < -90.0) | (dec_f > 90.0)
    if bad_dec.any():
        raise ValueError(
            f"Dec value(s) must be finite and within [-90, 90] deg, got: {_few(dec_f[bad_dec])}"
        )
    ra_f = np.mod(ra_f, 360.0)
    # a tiny negative RA wraps to exactly 360.0 in floating point: treat it as 0
    ra_f[ra_f >= 360.0] = 0.0
    return ra_f, dec_f, shape, scalar


def _few(values: np.ndarray, n: int = 5) -> str:
    shown = ", ".join(repr(float(v)) for v in values[:n])
    more = f" ... ({values.size} in total)" if values.size > n else ""
    return f"[{shown}]{more}"


def _rowcol(ra: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row/col of wrapped, validated flat coordinate arrays."""
    row = np.floor((dec + 90.0 + _HALF) / BRICK_SIZE_DEG).astype(np.int64)
    row = np.clip(row, 0, _NROW - 1)
    ncol = _NCOL[row]
    col = np.clip(np.floor(ra / 360.0 * ncol).astype(np.int64), 0, ncol - 1)
    return row, col


def _geometry(
    row: np.ndarray, col: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(ra, dec, ra1, ra2, dec1, dec2) of bricks given by row/col arrays."""
    ncol = _NCOL[row]
    width = 360.0 / ncol
    ra1 = col * width
    ra2 = np.where(col + 1 >= ncol, 360.0, (col + 1) * width)
    ra_c = 0.5 * (ra1 + ra2)
    return ra_c, _ROW_DEC[row], ra1, ra2, _ROW_DEC1[row], _ROW_DEC2[row]


def _names(row: np.ndarray, col: np.ndarray) -> np.ndarray:
    """Brick names (dtype '<U8') for flat row/col arrays, built digit-wise (no per-brick loop)."""
    ra_c, dec_c, *_ = _geometry(row, col)
    # ``%07.0f`` / ``%06.0f`` round the float exactly with ties-to-even, as np.rint does.
    ra4 = np.rint(ra_c * 1e4).astype(np.int64) // 1000
    dec3 = np.rint(np.abs(dec_c) * 1e4).astype(np.int64) // 1000
    chars = np.empty((row.size, 8), dtype=np.uint8)
    for i, p in enumerate((1000, 100, 10, 1)):
        chars[:, i] = _ASCII_0 + (ra4 // p) % 10
    chars[:, 4] = np.where(dec_c >= 0.0, ord("p"), ord("m"))
    for i, p in enumerate((100, 10, 1)):
        chars[:, 5 + i] = _ASCII_0 + (dec3 // p) % 10
    return chars.view("S8").reshape(row.size).astype("<U8")


# --------------------------------------------------------------------------------------------
# Public coordinate -> brick API
# --------------------------------------------------------------------------------------------
def brick_row_col(ra: npt.ArrayLike, dec: npt.ArrayLike) -> tuple[Any, Any]:
    """0-based (row, col) of the brick containing (ra, dec) [deg]; int arrays (ints if scalar)."""
    ra_f, dec_f, shape, scalar = _prepare(ra, dec)
    row, col = _rowcol(ra_f, dec_f)
    if scalar:
        return int(row[0]), int(col[0])
    return row.reshape(shape), col.reshape(shape)


def brick_name(ra: npt.ArrayLike, dec: npt.ArrayLike) -> Any:
    """Name (e.g. ``'1126p222'``) of the brick containing (ra, dec) [deg].

    Returns a ``str`` for scalar input, else a numpy array of dtype ``'<U8'``.
    """
    ra_f, dec_f, shape, scalar = _prepare(ra, dec)
    names = _names(*_rowcol(ra_f, dec_f))
    return str(names[0]) if scalar else names.reshape(shape)


def brick_id(ra: npt.ArrayLike, dec: npt.ArrayLike) -> Any:
    """1-based DR10 BRICKID of the brick containing (ra, dec) [deg] (int64 array, int if scalar)."""
    ra_f, dec_f, shape, scalar = _prepare(ra, dec)
    row, col = _rowcol(ra_f, dec_f)
    bid = _ROW_OFFSET[row] + col + 1
    return int(bid[0]) if scalar else bid.reshape(shape)


def brick_center(ra: npt.ArrayLike, dec: npt.ArrayLike) -> tuple[Any, Any]:
    """(ra_c, dec_c) [deg] of the centre of the brick containing (ra, dec); poles have RA 180."""
    ra_f, dec_f, shape, scalar = _prepare(ra, dec)
    ra_c, dec_c, *_ = _geometry(*_rowcol(ra_f, dec_f))
    if scalar:
        return float(ra_c[0]), float(dec_c[0])
    return ra_c.reshape(shape), dec_c.reshape(shape)


def brick_edges(ra: npt.ArrayLike, dec: npt.ArrayLike) -> tuple[Any, Any, Any, Any]:
    """(ra1, ra2, dec1, dec2) [deg] edges of the brick containing (ra, dec).

    RA edges lie in [0, 360] (poles: 0, 360); Dec edges are row centre +/- 0.125 clipped to
    [-90, 90].
    """
    ra_f, dec_f, shape, scalar = _prepare(ra, dec)
    _, _, ra1, ra2, dec1, dec2 = _geometry(*_rowcol(ra_f, dec_f))
    if scalar:
        return float(ra1[0]), float(ra2[0]), float(dec1[0]), float(dec2[0])
    return ra1.reshape(shape), ra2.reshape(shape), dec1.reshape(shape), dec2.reshape(shape)


# --------------------------------------------------------------------------------------------
# Brick names -> grid
# --------------------------------------------------------------------------------------------
def _lookup_names(names: Iterable[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Vectorized name validation.

    Returns (names as '<U8'-or-wider array, row, col, status) with status 0 = ok,
    1 = bad format, 2 = well-formed but no such brick.
    """
    items = list(names)
    arr = np.array([x if isinstance(x, str) else "\x00bad" for x in items], dtype=str)
    arr = arr.reshape(len(items))
    n = arr.size
    width = max(8, arr.dtype.itemsize // 4)
    codes = arr.astype(f"<U{width}").view(np.uint32).reshape(n, width)
    digit = (codes >= ord("0")) & (codes <= ord("9"))
    sign = codes[:, 4]
    fmt_ok = (
        digit[:, :4].all(axis=1)
        & digit[:, 5:8].all(axis=1)
        & ((sign == ord("p")) | (sign == ord("m")))
        & (codes[:, 8:] == 0).all(axis=1)
    )
    num = (codes[:, :8].astype(np.int64) - _ASCII_0) * fmt_ok[:, None]
    rrrr = num[:, 0] * 1000 + num[:, 1] * 100 + num[:, 2] * 10 + num[:, 3]
    ddd = num[:, 5] * 100 + num[:, 6] * 10 + num[:, 7]
    sgn = np.where(sign == ord("m"), -1.0, 1.0)
    ra_pt = np.mod(rrrr / 10.0 + 0.05, 360.0)
    dec_pt = np.clip(sgn * (ddd / 10.0 + 0.05), -90.0, 90.0)
    row, col = _rowcol(ra_pt, dec_pt)
    exists = _names(row, col) == arr.astype(f"<U{width}")
    status = np.where(~fmt_ok, 1, np.where(exists, 0, 2))
    return arr, row, col, status


def _error_for(name: object, status: int) -> BrickNameError:
    if status == 1:
        return BrickNameError(
            f"bad brick name {name!r}: expected format RRRR[pm]DDD (4 digits, 'p' or 'm', 3 digits)"
        )
    return BrickNameError(f"no such brick {name!r} in the DR10 0.25 deg brick grid")


def parse_brick_name(name: str) -> BrickInfo:
    """Validate a DR10 brick name and return its :class:`BrickInfo` (degrees).

    Raises :class:`BrickNameError` for a malformed name or a name not in the grid.
    """
    if not isinstance(name, str):
        raise BrickNameError(f"bad brick name {name!r}: expected a str, got {type(name).__name__}")
    _, row, col, status = _lookup_names([name])
    if status[0] != 0:
        raise _error_for(name, int(status[0]))
    r, c = int(row[0]), int(col[0])
    ra_c, dec_c, ra1, ra2, dec1, dec2 = (float(v[0]) for v in _geometry(row, col))
    return BrickInfo(
        name=name,
        brickid=int(_ROW_OFFSET[r]) + c + 1,
        row=r,
        col=c,
        ra=ra_c,
        dec=dec_c,
        ra1=ra1,
        ra2=ra2,
        dec1=dec1,
        dec2=dec2,
    )


def bricks_table(names: Iterable[str]) -> pd.DataFrame:
    """Table of bricks for validated names, in input order.

    Columns: brickname, brickid, ra, dec, ra1, ra2, dec1, dec2 (degrees). Raises
    :class:`BrickNameError` listing (up to 5) offending names.
    """
    items = list(names)
    arr, row, col, status = _lookup_names(items)
    bad = np.flatnonzero(status != 0)
    if bad.size:
        msgs = "; ".join(str(_error_for(items[i], int(status[i]))) for i in bad[:5])
        more = f" (and {bad.size - 5} more)" if bad.size > 5 else ""
        raise BrickNameError(f"{bad.size} invalid brick name(s): {msgs}{more}")
    ra_c, dec_c, ra1, ra2, dec1, dec2 = _geometry(row, col)
    return pd.DataFrame(
        {
            "brickname": arr.tolist(),
            "brickid": (_ROW_OFFSET[row] + col + 1).astype(np.int64),
            "ra": ra_c,
            "dec": dec_c,
            "ra1": ra1,
            "ra2": ra2,
            "dec1": dec1,
            "dec2": dec2,
        }
    )


# --------------------------------------------------------------------------------------------
# Coadd WCS
# --------------------------------------------------------------------------------------------
def _as_info(name_or_info: str | BrickInfo) -> BrickInfo:
    if isinstance(name_or_info, BrickInfo):
        return name_or_info
    return parse_brick_name(name_or_info)


def brick_wcs(name_or_info: str | BrickInfo) -> WCS:
    """DR10 coadd TAN WCS of a brick: 3600x3600 px, 0.262"/px, CRPIX 1800.5 (FITS, 1-based).

    CRVAL is the brick centre; CD = [[-0.262/3600, 0], [0, 0.262/3600]] deg/px (RA increases
    to the left). Note astropy's ``pixel_to_world`` uses 0-based pixels (centre = 1799.5).
    """
    info = _as_info(name_or_info)
    scale = PIXEL_SCALE_ARCSEC / 3600.0
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [info.ra, info.dec]
    w.wcs.crpix = [BRICK_NPIX / 2.0 + 0.5, BRICK_NPIX / 2.0 + 0.5]
    w.wcs.cd = np.array([[-scale, 0.0], [0.0, scale]])
    w.wcs.radesys = "ICRS"
    w.wcs.equinox = 2000.0
    w.wcs.set()
    w.pixel_shape = (BRICK_NPIX, BRICK_NPIX)
    return w


def brick_wcs_header(name_or_info: str | BrickInfo) -> fits.Header:
    """FITS header (NAXIS1/2 and CD-matrix TAN WCS keywords) equivalent to :func:`brick_wcs`."""
    info = _as_info(name_or_info)
    scale = PIXEL_SCALE_ARCSEC / 3600.0
    crpix = BRICK_NPIX / 2.0 + 0.5
    hdr = fits.Header()
    hdr["NAXIS"] = 2
    hdr["NAXIS1"] = BRICK_NPIX
    hdr["NAXIS2"] = BRICK_NPIX
    hdr["CTYPE1"] = "RA---TAN"
    hdr["CTYPE2"] = "DEC--TAN"
    hdr["CRVAL1"] = (info.ra, "[deg] brick centre RA")
    hdr["CRVAL2"] = (info.dec, "[deg] brick centre Dec")
    hdr["CRPIX1"] = crpix
    hdr["CRPIX2"] = crpix
    hdr["CD1_1"] = -scale
    hdr["CD1_2"] = 0.0
    hdr["CD2_1"] = 0.0
    hdr["CD2_2"] = scale
    hdr["CUNIT1"] = "deg"
    hdr["CUNIT2"] = "deg"
    hdr["RADESYS"] = "ICRS"
    hdr["EQUINOX"] = 2000.0
    hdr["BRICKNAM"] = (info.name, "LegacySurveys brick name")
    hdr["BRICKID"] = (info.brickid, "LegacySurveys brick id")
    return hdr


def brick_area_deg2(bricks: pd.DataFrame) -> np.ndarray:
    """Solid angle (deg^2) of each brick of a :func:`bricks_table` frame, from its edges.

    Area = (ra2 - ra1) [rad] x (sin dec2 - sin dec1), converted to square degrees.
    """
    sin_band = np.sin(np.radians(bricks["dec2"].to_numpy())) - np.sin(
        np.radians(bricks["dec1"].to_numpy())
    )
    ra_width = np.radians(bricks["ra2"].to_numpy() - bricks["ra1"].to_numpy())
    return np.degrees(np.degrees(ra_width * sin_band))
