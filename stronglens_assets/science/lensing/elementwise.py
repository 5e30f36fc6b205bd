"""Element-wise math shared by the injection engine's array path and its fused CPU kernel.

The engine evaluates the same per-point formulas in two ways: on whole arrays (NumPy on a
CPU, CuPy on a GPU: the reference path) and one point at a time inside a fused numba kernel
(the fast CPU path). Both build their formulas from an :class:`Ops` bundle of primitives,
so the two run the **same sequence of IEEE-754 operations** and agree bit for bit:

* ``float32`` bundles use :func:`float32_math`: ``exp``, ``log``, ``atan`` and ``atanh``
  written with only ``+ - * /``, comparisons, selects and integer bit operations (no
  library calls, whose implementations differ between NumPy's SIMD loops, libm and CUDA).
  They follow Cephes' single-precision algorithms (range reduction, then a polynomial) and
  are accurate to ~2 ulp (relative errors ``exp`` < 1.1e-7, ``log`` < 1e-7, ``atan`` <
  2.1e-7, ``atanh`` < 1.5e-7; tested against float64); a compiler vectorises them.
  Nothing may be fused or reassociated (the numba kernel is compiled without ``fastmath``);
  NumPy and CuPy apply one operation per call, so they cannot fuse either.
* ``float64`` bundles use the array module's own functions (a reference for checks, not a
  kernel).

Bundle members (all element-wise, broadcasting on arrays, scalars in numba):
``sqrt, exp, log, atan, atanh, fmax, fmin, select, fabs``. ``fmax(a, b)`` is ``a if a > b
else b`` (and ``fmin`` likewise) in every bundle, so that ties and signed zeros resolve the
same way everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

__all__ = ["Ops", "float32_math", "xp_ops"]

_F = np.float32

# exp: x = n ln2 + r, |r| <= ln2 / 2, exp(r) by its Taylor polynomial of degree 7
# (truncation < 5e-9), 2^n assembled in the exponent bits.
_EXP_LO = _F(-87.0)  # below: 0 (2^-126 is the smallest normal float32)
_EXP_HI = _F(88.0)
_EXP_BIAS = _F(127.0)
_EXP_SHIFT = _F(8388608.0)  # 2^23
_ROUND_MAGIC = _F(12582912.0)  # 1.5 * 2^23: x + M - M rounds x to an integer (|x| < 2^22)
_LOG2E = _F(1.4426950408889634)
_LN2_HI = _F(0.693359375)  # 355 / 512: n * _LN2_HI is exact for |n| < 2^15
_LN2_LO = _F(-2.12194440e-4)  # ln 2 - _LN2_HI
_E0, _E1, _E2 = _F(1.0), _F(1.0), _F(0.5)
_E3, _E4, _E5 = _F(1.0 / 6.0), _F(1.0 / 24.0), _F(1.0 / 120.0)
_E6, _E7 = _F(1.0 / 720.0), _F(1.0 / 5040.0)
# log: x = 2^e m, m in [sqrt(1/2), sqrt(2)), y = m - 1 (exact): Cephes' logf polynomial
# (log m = y - y^2/2 + y^3 P(y), relative error < 1e-7), no division.
_SQRT2 = _F(1.4142135623730951)
_L = tuple(
    _F(v)
    for v in (
        7.0376836292e-2,
        -1.1514610310e-1,
        1.1676998740e-1,
        -1.2420140846e-1,
        1.4249322787e-1,
        -1.6668057665e-1,
        2.0000714765e-1,
        -2.4999993993e-1,
        3.3333331174e-1,
    )
)
_L0, _L1, _L2, _L3, _L4, _L5, _L6, _L7, _L8 = _L
# atanh: Cephes' atanhf: |x| < 0.5 an odd polynomial, else log((1 + x) / (1 - x)) / 2.
_H0, _H1, _H2, _H3, _H4 = (
    _F(1.81740078349e-1),
    _F(8.24370301058e-2),
    _F(1.46691431730e-1),
    _F(1.99782164500e-1),
    _F(3.33337300303e-1),
)
# atan: Cephes' atanf reduction to |x| < tan(pi / 8) and its minimax polynomial.
_TAN_3PI_8 = _F(2.414213562373095)
_TAN_PI_8 = _F(0.41421356237309503)
_PI_2 = _F(1.5707963267948966)
_PI_4 = _F(0.7853981633974483)
_A1, _A2 = _F(8.05374449538e-2), _F(-1.38776856032e-1)
_A3, _A4 = _F(1.99777106478e-1), _F(-3.33329491539e-1)
_ZERO, _HALF, _ONE = _F(0.0), _F(0.5), _F(1.0)


@dataclass(frozen=True)
class Ops:
    """Element-wise primitives a formula is written with (see the module docstring)."""

    sqrt: Callable[..., Any]
    exp: Callable[..., Any]
    log: Callable[..., Any]
    atan: Callable[..., Any]
    atanh: Callable[..., Any]
    fmax: Callable[..., Any]
    fmin: Callable[..., Any]
    select: Callable[..., Any]
    fabs: Callable[..., Any]


def float32_math(
    as_int: Callable[[Any], Any],
    as_float: Callable[[Any], Any],
    to_int: Callable[[Any], Any],
    to_float: Callable[[Any], Any],
    select: Callable[[Any, Any, Any], Any],
    jit: Callable[[Any], Any] | None = None,
) -> tuple[Callable[[Any], Any], ...]:
    """``(exp, log, atan, atanh, fmax, fmin, fabs)`` for float32 from bit-level primitives.

    Args:
        as_int: reinterpret float32 bits as int32.
        as_float: reinterpret int32 bits as float32.
        to_int: float32 holding an integer value -> int32.
        to_float: int32 -> float32 (exact for |i| < 2^24).
        select: ``select(cond, a, b)`` = ``a`` where ``cond`` else ``b``.
        jit: compiles each function (e.g. ``numba.njit``); ``None`` for arrays.

    ``exp`` is 0 below -87 and saturates at ``exp(88)``; ``log`` and ``atanh``'s argument
    must be positive normal / inside (-1, 1); NaN handling is not defined (inputs are
    validated before they get here).
    """

    def fmax(a, b):
        return select(a > b, a, b)

    def fmin(a, b):
        return select(a < b, a, b)

    def fabs(a):
        return select(a < _ZERO, -a, a)

    def exp(x):
        xc = fmin(fmax(x, _EXP_LO), _EXP_HI)
        n = (xc * _LOG2E + _ROUND_MAGIC) - _ROUND_MAGIC
        r = xc - n * _LN2_HI
        r = r - n * _LN2_LO
        p = _E7 * r + _E6
        p = p * r + _E5
        p = p * r + _E4
        p = p * r + _E3
        p = p * r + _E2
        p = p * r + _E1
        p = p * r + _E0
        # 2^n: the exponent field (n + 127) << 23, built exactly in float32 (no integer ops)
        scale = as_float(to_int((n + _EXP_BIAS) * _EXP_SHIFT))
        return select(x < _EXP_LO, _ZERO, p * scale)

    def log(x):
        bits = as_int(x)
        e = to_float((bits >> 23) - 127)
        m = as_float((bits & 0x007FFFFF) | 0x3F800000)
        big = m > _SQRT2
        m = select(big, m * _HALF, m)
        e = select(big, e + _ONE, e)
        y = m - _ONE
        z = y * y
        p = _L0 * y + _L1
        p = p * y + _L2
        p = p * y + _L3
        p = p * y + _L4
        p = p * y + _L5
        p = p * y + _L6
        p = p * y + _L7
        p = p * y + _L8
        r = p * y * z
        r = r + e * _LN2_LO
        r = r - _HALF * z
        return (y + r) + e * _LN2_HI

    def atan(x):
        a = fabs(x)
        big = a > _TAN_3PI_8
        mid = a > _TAN_PI_8
        # reduced argument -1/a, (a - 1)/(a + 1) or a: one division
        num = select(big, -_ONE, select(mid, a - _ONE, a))
        den = select(big, a, select(mid, a + _ONE, _ONE))
        red = num / den
        base = select(big, _PI_2, select(mid, _PI_4, _ZERO))
        z = red * red
        p = _A1 * z + _A2
        p = p * z + _A3
        p = p * z + _A4
        y = base + (p * z * red + red)
        return select(x < _ZERO, -y, y)

    def atanh(x):
        a = fabs(x)
        z = a * a
        p = _H0 * z + _H1
        p = p * z + _H2
        p = p * z + _H3
        p = p * z + _H4
        small = p * z * a + a
        large = _HALF * log((_ONE + a) / (_ONE - a))
        y = select(a < _HALF, small, large)
        return select(x < _ZERO, -y, y)

    if jit is not None:  # the closures above look these names up when compiled
        fmax, fmin, fabs = jit(fmax), jit(fmin), jit(fabs)
        exp, log, atan = jit(exp), jit(log), jit(atan)
        atanh = jit(atanh)
    return exp, log, atan, atanh, fmax, fmin, fabs


_XP_OPS: dict[tuple[str, str], Ops] = {}


def xp_ops(xp: ModuleType, dtype: Any = np.float32) -> Ops:
    """The bundle for arrays of module ``xp`` (NumPy or CuPy) and ``dtype``.

    float32: :func:`float32_math` on array views (bit-identical to the numba kernel);
    float64: the array module's own ``exp``, ``log``, ``arctan``, ``arctanh``.
    """
    key = (xp.__name__, np.dtype(dtype).str)
    if key in _XP_OPS:
        return _XP_OPS[key]

    def select(cond, a, b):
        return xp.where(cond, a, b)

    if np.dtype(dtype) == np.float32:
        exp, log, atan, atanh, fmax, fmin, fabs = float32_math(
            lambda x: x.view(xp.int32),
            lambda i: xp.asarray(i, dtype=xp.int32).view(xp.float32),
            lambda x: x.astype(xp.int32),
            lambda i: i.astype(xp.float32),
            select,
        )
        ops = Ops(xp.sqrt, exp, log, atan, atanh, fmax, fmin, select, fabs)
    elif np.dtype(dtype) == np.float64:
        ops = Ops(
            xp.sqrt,
            xp.exp,
            xp.log,
            xp.arctan,
            xp.arctanh,
            lambda a, b: xp.where(a > b, a, b),
            lambda a, b: xp.where(a < b, a, b),
            select,
            xp.abs,
        )
    else:
        raise ValueError(f"dtype must be float32 or float64, got {np.dtype(dtype)}")
    _XP_OPS[key] = ops
    return ops
