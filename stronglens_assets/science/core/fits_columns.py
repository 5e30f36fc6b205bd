"""FITS table columns as native NumPy arrays (shared by the sweep and VAC readers)."""

from __future__ import annotations

from typing import Any

import numpy as np


def native_array(values: Any) -> np.ndarray:
    """Native-endian array of a FITS column; byte strings decoded (ASCII) and stripped.

    FITS stores big-endian numbers, which pandas and Arrow handle poorly; string columns
    come back padded with blanks.
    """
    arr = np.asarray(values)
    if arr.dtype.kind in "SU":
        if arr.dtype.kind == "S":
            arr = np.char.decode(arr, "ascii", errors="replace")
        return np.char.strip(arr).astype(object)
    if arr.dtype.byteorder not in ("=", "|"):
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr
