"""CuPy for GPU tests and benchmarks: the module when it works, ``None`` when it is absent.

A machine without CuPy or without a GPU skips GPU tests; a broken CuPy (it is installed but
does not import, or the CUDA runtime fails in another way) is an error, never a silent skip.
"""

from __future__ import annotations

from types import ModuleType

__all__ = ["cupy_with_gpu"]


def cupy_with_gpu() -> ModuleType | None:
    """``cupy`` if it imports and sees at least one GPU; ``None`` if CuPy is not installed or
    the CUDA runtime reports no device / no driver.

    Raises:
        ImportError: CuPy is installed but fails to import (e.g. a wrong CUDA build).
        Exception: any other failure of the CUDA runtime query.
    """
    try:
        import cupy
    except ModuleNotFoundError as exc:
        if exc.name == "cupy":
            return None
        raise
    from cupy_backends.cuda.api.runtime import CUDARuntimeError

    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except CUDARuntimeError as exc:
        message = str(exc)
        if "NoDevice" in message or "InsufficientDriver" in message:
            return None
        raise
    return cupy if count > 0 else None
