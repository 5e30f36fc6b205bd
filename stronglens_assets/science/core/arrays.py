"""Array-module helpers: one code path for NumPy (CPU) and CuPy (GPU) arrays.

Science functions take an ``xp`` module or infer it from their inputs with :func:`array_module`;
CuPy is imported only when a CuPy array is seen, so CPU-only machines never import it.
:func:`gpu_array_module` is the one probe for "CuPy and a GPU are here" (compute resource,
benchmarks, GPU tests).
"""

from __future__ import annotations

import importlib.util
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


#: CUDA runtime statuses meaning "no usable GPU here" (cudaErrorInsufficientDriver: no
#: NVIDIA driver; cudaErrorNoDevice: a driver but no device).
_NO_GPU_STATUSES: frozenset[int] = frozenset({35, 100})


def gpu_array_module() -> ModuleType | None:
    """CuPy when it is installed and sees a CUDA device; ``None`` when CuPy is not installed
    or no GPU is present.

    A broken install is not swallowed: an ``import cupy`` that fails although the package is
    installed, or a CUDA error other than "no driver / no device", raises.
    """
    if importlib.util.find_spec("cupy") is None:
        return None
    import cupy  # optional GPU dependency, imported only here and for CuPy inputs

    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except cupy.cuda.runtime.CUDARuntimeError as exc:
        if getattr(exc, "status", None) in _NO_GPU_STATUSES:
            return None
        raise
    return cupy if count > 0 else None
