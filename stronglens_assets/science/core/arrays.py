"""Array-module helpers: one code path for NumPy (CPU) and CuPy (GPU) arrays.

Science functions take an ``xp`` module or infer it from their inputs with :func:`array_module`;
CuPy is imported only when a CuPy array is seen, so CPU-only machines never import it.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np


def is_cupy(array: Any) -> bool:
    """Whether ``array`` is a CuPy array (checked by type, without importing CuPy)."""
    return type(array).__module__.split(".")[0] == "cupy"


def array_module(array: Any) -> ModuleType:
    """``cupy`` for CuPy arrays, else ``numpy``."""
    if is_cupy(array):
        import cupy  # optional GPU dependency, imported only for CuPy inputs

        return cupy
    return np


def to_host(array: Any) -> np.ndarray:
    """``array`` as a NumPy array (CuPy arrays are copied from the device)."""
    if is_cupy(array):
        return np.asarray(array.get())
    return np.asarray(array)
