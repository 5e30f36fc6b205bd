"""DESI DR1 strong-lensing value-added catalogue (``desi-sl-vac-v1.fits``): schema, reader,
and a deterministic writer of mock files with the same schema.

The table lives in the binary-table HDU ``DESI_SL_CATALOG``. Columns (FITS formats as in the
DESI redshift catalogues):

=====================  ======  ==============================================
TARGETID               K       int64 DESI target id
SURVEY, PROGRAM        A       e.g. ``main`` / ``dark``
HEALPIX                J       nside 64, NEST pixel of (TARGET_RA, TARGET_DEC)
SPGRPVAL               J       spectral grouping value (the HEALPIX for healpix coadds)
Z, ZERR                D       redshift and its error
ZWARN                  K       redrock warning bitmask (0 = fine)
CHI2, DELTACHI2        D       best-fit chi^2 and chi^2 gap to the next solution
COEFF                  10D     redrock template coefficients
NPIXELS, NCOEFF        K       pixels used in the fit, coefficients used
SPECTYPE, SUBTYPE      A       e.g. ``GALAXY``
COADD_FIBERSTATUS      J       fibre status bitmask of the coadd
TARGET_RA, TARGET_DEC  D       ICRS deg
=====================  ======  ==============================================

In the DataFrame returned by :func:`read_desi_vac`, the 10-vector ``COEFF`` is stored as ten
float64 columns ``COEFF_0`` .. ``COEFF_9`` (Parquet/columnar friendly); string columns are
``str`` with trailing blanks stripped; numbers are native-endian.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from astropy.io import fits

from stronglens_assets.science.catalogs.lenscat import (
    CatalogSchemaError,
    CatalogValueError,
    check_coordinates,
)
from stronglens_assets.science.core.columns import require_columns
from stronglens_assets.science.core.fits_columns import native_array

__all__ = [
    "COEFF_COLUMNS",
    "DESI_VAC_COLUMNS",
    "DESI_VAC_FORMATS",
    "DESI_VAC_HDU",
    "DESI_VAC_HEALPIX_NSIDE",
    "N_COEFF",
    "CatalogSchemaError",
    "CatalogValueError",
    "desi_vac_frame",
    "read_desi_vac",
    "vac_frame_columns",
]

DESI_VAC_HDU = "DESI_SL_CATALOG"
"""Name (EXTNAME) of the table HDU."""
DESI_VAC_HEALPIX_NSIDE = 64
"""nside of the HEALPIX column (NEST)."""
N_COEFF = 10
"""Length of the COEFF vector."""

#: Column name -> FITS TFORM (string widths are those used by the mock writer).
DESI_VAC_FORMATS: dict[str, str] = {
    "TARGETID": "K",
    "SURVEY": "7A",
    "PROGRAM": "6A",
    "HEALPIX": "J",
    "SPGRPVAL": "J",
    "Z": "D",
    "ZERR": "D",
    "ZWARN": "K",
    "CHI2": "D",
    "COEFF": f"{N_COEFF}D",
    "NPIXELS": "K",
    "SPECTYPE": "6A",
    "SUBTYPE": "20A",
    "NCOEFF": "K",
    "DELTACHI2": "D",
    "COADD_FIBERSTATUS": "J",
    "TARGET_RA": "D",
    "TARGET_DEC": "D",
}
DESI_VAC_COLUMNS: tuple[str, ...] = tuple(DESI_VAC_FORMATS)
"""Required columns of the ``DESI_SL_CATALOG`` HDU, in file order."""
COEFF_COLUMNS: tuple[str, ...] = tuple(f"COEFF_{i}" for i in range(N_COEFF))
"""DataFrame columns holding COEFF[0..9]."""

_DTYPES: dict[str, Any] = {
    "TARGETID": np.int64,
    "HEALPIX": np.int32,
    "SPGRPVAL": np.int32,
    "Z": np.float64,
    "ZERR": np.float64,
    "ZWARN": np.int64,
    "CHI2": np.float64,
    "NPIXELS": np.int64,
    "NCOEFF": np.int64,
    "DELTACHI2": np.float64,
    "COADD_FIBERSTATUS": np.int32,
    "TARGET_RA": np.float64,
    "TARGET_DEC": np.float64,
}
_STRINGS = ("SURVEY", "PROGRAM", "SPECTYPE", "SUBTYPE")


def desi_vac_frame(columns: dict[str, Any], source: str) -> pd.DataFrame:
    """Validate and normalize a mapping of VAC columns (as read from FITS) into a DataFrame.

    Raises:
        CatalogSchemaError: missing columns (all named) or a COEFF that is not a 10-vector.
        CatalogValueError: non-finite / out-of-range TARGET_RA or TARGET_DEC.
    """
    require_columns(
        columns, DESI_VAC_COLUMNS, f"{source}: HDU {DESI_VAC_HDU!r}", error=CatalogSchemaError
    )
    out: dict[str, Any] = {}
    for name, values in columns.items():
        arr = native_array(values)
        if name == "COEFF":
            if arr.ndim != 2 or arr.shape[1] != N_COEFF:
                raise CatalogSchemaError(
                    f"{source}: column 'COEFF' must be a {N_COEFF}-vector per row, "
                    f"got shape {arr.shape}"
                )
            for i, col in enumerate(COEFF_COLUMNS):
                out[col] = arr[:, i].astype(np.float64)
        elif arr.ndim > 1:  # any other vector column: one column per element
            flat = arr.reshape(arr.shape[0], -1)
            for i in range(flat.shape[1]):
                out[f"{name}_{i}"] = flat[:, i]
        elif name in _DTYPES:
            out[name] = arr.astype(_DTYPES[name])
        else:
            out[name] = arr
    frame = pd.DataFrame(out)
    for name in _STRINGS:
        frame[name] = frame[name].astype(str)
    check_coordinates(frame["TARGET_RA"], frame["TARGET_DEC"], source, "TARGET_RA", "TARGET_DEC")
    return frame


def read_desi_vac(
    path_or_bytes: str | os.PathLike[str] | bytes, *, name: str | None = None
) -> pd.DataFrame:
    """Read the ``DESI_SL_CATALOG`` HDU of a DESI strong-lens VAC file (path or file bytes).

    ``name`` labels the source in error messages (default: the path, or ``<bytes>``).
    COEFF becomes ``COEFF_0`` .. ``COEFF_9``; extra columns are kept.

    Raises:
        CatalogSchemaError: not a FITS file, no ``DESI_SL_CATALOG`` HDU, missing columns.
        CatalogValueError: bad TARGET_RA / TARGET_DEC values.
    """
    if isinstance(path_or_bytes, bytes | bytearray):
        source = f"DESI VAC {name or '<bytes>'}"
        handle: Any = io.BytesIO(bytes(path_or_bytes))
    else:
        source = f"DESI VAC {name or Path(path_or_bytes)}"
        handle = os.fspath(path_or_bytes)
    try:
        hdul = fits.open(handle, memmap=False)
    except (OSError, TypeError, ValueError) as exc:
        raise CatalogSchemaError(f"{source}: not a readable FITS file ({exc})") from exc
    with hdul:
        names = [hdu.name for hdu in hdul]
        if DESI_VAC_HDU not in names:
            raise CatalogSchemaError(
                f"{source}: no HDU {DESI_VAC_HDU!r} (HDUs present: {', '.join(names)})"
            )
        hdu = hdul[DESI_VAC_HDU]
        if not isinstance(hdu, fits.BinTableHDU):
            raise CatalogSchemaError(f"{source}: HDU {DESI_VAC_HDU!r} is not a binary table")
        data = hdu.data
        columns = {
            col: np.array(data[col]) if data is not None else np.empty(0)
            for col in hdu.columns.names
        }
    return desi_vac_frame(columns, source)


def vac_frame_columns() -> Sequence[str]:
    """Required columns of a frame returned by :func:`read_desi_vac` (COEFF expanded)."""
    return [c for name in DESI_VAC_COLUMNS for c in (COEFF_COLUMNS if name == "COEFF" else (name,))]
