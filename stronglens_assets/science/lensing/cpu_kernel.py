"""Fused CPU kernel of :func:`~stronglens_assets.science.lensing.injection.render_arcs` (numba).

The array path evaluates each formula on whole arrays, one pass over memory per operation;
this kernel evaluates the same formulas (:func:`~stronglens_assets.science.lensing.injection.
make_arc_model`, built from the float32 primitives of
:mod:`~stronglens_assets.science.lensing.elementwise`) point by point in loops that the
compiler vectorises, one injection at a time, then convolves each band directly. It runs the
same float32 operations in the same order as the array path (compiled without ``fastmath``,
so nothing is fused or reassociated): the unconvolved images are bit-identical, and the
convolved ones differ only by the convolution's summation order. The functions release the
GIL (``workers`` threads run groups in parallel).

Only :func:`render_group` is meant to be called (by ``render_arcs``); importing this module
compiles nothing, the first call compiles the kernel (20-60 s) and numba caches it on disk
(the package's ``__pycache__``, or numba's user-wide cache directory where that is not
writable). The cache is keyed on the contents of every module the kernel is compiled from
(numba alone only checks the file that defines a function, and would keep a stale kernel
after an edit of the formulas in another module).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numba
import numpy as np
from numba import njit, types
from numba.core import caching
from numba.core import config as numba_config
from numba.extending import intrinsic

from stronglens_assets.science.lensing.arc_model import (
    COLUMNS,
    CONV_PEAK_HALF,
    ArcParams,
    RenderSetup,
    gaussian_kernel_1d,
    kernel_radius,
    make_arc_model,
)
from stronglens_assets.science.lensing.elementwise import Ops, float32_math

__all__ = ["render_group"]

#: Modules whose code the kernel is compiled from (this package's directory).
_SOURCES: tuple[str, ...] = (
    "arc_model.py",
    "cpu_kernel.py",
    "elementwise.py",
    "injection.py",
    "profiles.py",
    "ray_tracing.py",
)


def _sources_digest() -> bytes:
    digest = hashlib.sha256(numba.__version__.encode())
    for name in _SOURCES:
        digest.update((Path(__file__).parent / name).read_bytes())
    return digest.digest()


_DIGEST = _sources_digest()


class _DigestStamp:
    """Mixin: numba's cache index is valid while :data:`_SOURCES` are unchanged."""

    def get_source_stamp(self) -> bytes:
        return _DIGEST


class _UserProvidedLocator(_DigestStamp, caching.UserProvidedCacheLocator):
    """numba's ``NUMBA_CACHE_DIR`` locator."""


class _InTreeLocator(_DigestStamp, caching.InTreeCacheLocator):
    """numba's ``__pycache__`` locator."""


class _UserWideLocator(_DigestStamp, caching.UserWideCacheLocator):
    """numba's user-wide cache locator."""


#: numba versions without configurable locators compile in every process instead
_CACHE = hasattr(numba_config, "CACHE_LOCATOR_CLASSES")


@contextmanager
def _kernel_cache() -> Iterator[None]:
    """Functions decorated inside use the locators above (chosen at decoration time)."""
    if not _CACHE:
        yield
        return
    previous = numba_config.CACHE_LOCATOR_CLASSES
    numba_config.CACHE_LOCATOR_CLASSES = ",".join(
        f"{__name__}.{cls.__name__}"
        for cls in (_UserProvidedLocator, _InTreeLocator, _UserWideLocator)
    )
    try:
        yield
    finally:
        numba_config.CACHE_LOCATOR_CLASSES = previous


_OPTIONS = {"nogil": True, "error_model": "numpy", "cache": _CACHE}


def _jit(function: Any) -> Any:
    """Compile a building block; inlined into its callers (numba IR), so that the loops that
    use it see straight-line code and vectorise."""
    return njit(inline="always", **_OPTIONS)(function)


def _jit_small(function: Any) -> Any:
    """Compile a primitive (LLVM inlines it)."""
    return njit(**_OPTIONS)(function)


@intrinsic
def _bits_of(typingctx, x):
    """Reinterpret a float32 as int32 (an LLVM bitcast; free and vectorisable)."""
    sig = types.int32(types.float32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.int32))

    return sig, codegen


@intrinsic
def _float_of(typingctx, i):
    """Reinterpret an int32 as float32."""
    sig = types.float32(types.int32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float32))

    return sig, codegen


def _as_int(x):
    return _bits_of(x)


def _as_float(i):
    return _float_of(np.int32(i))


def _to_int(x):
    return np.int32(x)


def _to_float(i):
    return np.float32(i)


def _select(cond, a, b):
    return a if cond else b


def _sqrt(x):
    return np.sqrt(x)


with _kernel_cache():
    _select_jit = _jit_small(_select)
    _EXP, _LOG, _ATAN, _ATANH, _FMAX, _FMIN, _FABS = float32_math(
        _jit_small(_as_int),
        _jit_small(_as_float),
        _jit_small(_to_int),
        _jit_small(_to_float),
        _select_jit,
        _jit_small,
    )
    OPS = Ops(
        sqrt=_jit_small(_sqrt),
        exp=_EXP,
        log=_LOG,
        atan=_ATAN,
        atanh=_ATANH,
        fmax=_FMAX,
        fmin=_FMIN,
        select=_select_jit,
        fabs=_FABS,
    )
    _MODEL = make_arc_model(OPS, _jit)
_source_plane = _MODEL.source_plane
_sersic = _MODEL.sersic
_clump = _MODEL.clump
_stretch = _MODEL.stretch
_sersic_variation = _MODEL.sersic_variation
_clump_variation = _MODEL.clump_variation
_needs_supersampling = _MODEL.needs_supersampling
# _points unpacks the table by position
_EXPECTED_COLUMNS = (
    *("lx", "ly", "cos_p", "sin_p", "q2", "sq", "b_sq", "g1", "g2"),
    *("sx", "sy", "a11", "a12", "a22", "c", "d", "b", "lnA"),
    *("te_sq", "gam", "hd", "hdq", "n15", "rho_min"),
)
if COLUMNS != _EXPECTED_COLUMNS:
    raise ImportError("injection.COLUMNS changed: update cpu_kernel._points to the new order")


# Loops index arrays only with plain ``range`` counters (offsets go into slices): numba then
# emits no negative-index handling and the compiler vectorises the loops.


def _points(xs, ys, par, f, g, u, v, st):
    """Lensed-source flux per pixel at points ``(xs, ys)``: ``f``; the supersampling bound
    ``g`` (-1 where the point is "near" the profile's centre); the offsets ``(u, v)`` from
    the source centre and the Jacobian bound ``st`` (both used by clumps).

    The one place the formulas are compiled (inlined into this loop, which vectorises).
    """
    lx, ly, cos_p, sin_p, q2 = par[0], par[1], par[2], par[3], par[4]
    sq, b_sq, g1, g2 = par[5], par[6], par[7], par[8]
    sx, sy, a11, a12, a22 = par[9], par[10], par[11], par[12], par[13]
    c, d, b, ln_a = par[14], par[15], par[16], par[17]
    te_sq, gam, hd, hdq, n15, rho_min = par[18], par[19], par[20], par[21], par[22], par[23]
    minus_one = np.float32(-1.0)
    for m in range(xs.size):
        bx, by, dx, dy = _source_plane(xs[m], ys[m], lx, ly, cos_p, sin_p, q2, sq, b_sq, g1, g2)
        fm, r2, t, ux, uy = _sersic(bx, by, sx, sy, a11, a12, a22, c, d, b, ln_a)
        sm = _stretch(dx, dy, te_sq, gam, hd, rho_min)
        gm, near = _sersic_variation(r2, t, sm, hdq, b, n15)
        f[m] = fm
        g[m] = minus_one if near else gm
        u[m] = ux
        v[m] = uy
        st[m] = sm


def _add_clumps(f, g, u, v, st, cl, ncl, hd, with_bound):
    """Add the clumps to ``f`` (and their variation bound to ``g``)."""
    for k in range(ncl):
        cx, cy, lnw, inv2s2, invs2 = cl[k, 0], cl[k, 1], cl[k, 2], cl[k, 3], cl[k, 4]
        for m in range(f.size):
            fk, d2 = _clump(u[m], v[m], cx, cy, lnw, inv2s2)
            f[m] = f[m] + fk
            if with_bound:
                gk = _clump_variation(d2, st[m], hd, invs2)
                g[m] = g[m] if g[m] < 0 else _FMAX(g[m], gk)


def _render_unit(unit, par, cl, ncl, win, coord, ox, oy, s, adaptive, ss_tol, ss_step):
    """Unit-flux image of one injection into ``unit`` (zero outside its window)."""
    r0, r1, c0, c1 = win[0], win[1], win[2], win[3]
    h = r1 - r0
    w = c1 - c0
    npx = h * w
    hd = par[20]
    xs = np.empty(npx, dtype=np.float32)
    ys = np.empty(npx, dtype=np.float32)
    for i in range(h):
        xr = xs[i * w : (i + 1) * w]
        yr = ys[i * w : (i + 1) * w]
        cr = coord[c0:c1]
        y = coord[r0 + i]
        for j in range(w):
            xr[j] = cr[j]
            yr[j] = y
    fb = np.empty(npx, dtype=np.float32)
    gb = np.empty(npx, dtype=np.float32)
    ub = np.empty(npx, dtype=np.float32)
    vb = np.empty(npx, dtype=np.float32)
    sb = np.empty(npx, dtype=np.float32)
    _points(xs, ys, par, fb, gb, ub, vb, sb)
    bound = adaptive and s > 1
    _add_clumps(fb, gb, ub, vb, sb, cl, ncl, hd, True)
    for i in range(h):
        unit[r0 + i, c0:c1] = fb[i * w : (i + 1) * w]
    if s == 1:
        return
    # pixels to supersample, compacted
    lin = np.empty(npx, dtype=np.int64)
    n_sel = 0
    if bound:
        peak = np.float32(0.0)
        for m in range(npx):
            peak = _FMAX(peak, fb[m])
        tol = ss_tol * peak
        flag = np.empty(npx, dtype=np.bool_)
        for m in range(npx):
            g = gb[m]
            flag[m] = _needs_supersampling(fb[m], g, g < 0, tol, ss_step)
        for m in range(npx):
            if flag[m]:
                lin[n_sel] = m
                n_sel += 1
    else:
        for m in range(npx):
            lin[m] = m
        n_sel = npx
    px = np.empty(n_sel, dtype=np.float32)
    py = np.empty(n_sel, dtype=np.float32)
    for m in range(n_sel):
        px[m] = xs[lin[m]]
        py[m] = ys[lin[m]]
    acc = np.empty(n_sel, dtype=np.float32)
    val, gs, us, vs, ss = fb[:n_sel], gb[:n_sel], ub[:n_sel], vb[:n_sel], sb[:n_sel]
    xq = np.empty(n_sel, dtype=np.float32)
    yq = np.empty(n_sel, dtype=np.float32)
    for q in range(s * s):
        oxq = ox[q]
        oyq = oy[q]
        for m in range(n_sel):
            xq[m] = px[m] + oxq
            yq[m] = py[m] + oyq
        _points(xq, yq, par, val, gs, us, vs, ss)
        _add_clumps(val, gs, us, vs, ss, cl, ncl, hd, False)
        if q == 0:
            for m in range(n_sel):
                acc[m] = val[m]
        else:
            for m in range(n_sel):
                acc[m] = acc[m] + val[m]
    s2f = np.float32(s * s)
    for m in range(n_sel):
        unit[r0 + lin[m] // w, c0 + lin[m] % w] = acc[m] / s2f


def _convolve(out, unit, flux, kern, radius, box):
    """``out[b] = flux[b] x (PSF_b * inner + ring)`` over the box grown by the kernel radius;
    ``inner`` = ``unit`` inside ``box``, ``ring`` = ``unit`` outside it."""
    size = unit.shape[0]
    rb0, rb1, cb0, cb1 = box[0], box[1], box[2], box[3]
    ro0 = max(0, rb0 - radius)
    ro1 = min(size, rb1 + radius)
    co0 = max(0, cb0 - radius)
    co1 = min(size, cb1 + radius)
    wc = cb1 - cb0
    wo = co1 - co0
    pad = 2 * radius
    # row pass into tmp[:, pad : pad + wc]; zero margins of 2R let the column pass run every
    # tap over the whole output row
    tmp = np.zeros((ro1 - ro0, wc + 2 * pad), dtype=np.float32)
    line = np.empty(wo, dtype=np.float32)
    zero = np.float32(0.0)
    shift = co0 - cb0 + 3 * radius  # tmp column of output co0 at tap 0
    for band in range(out.shape[0]):
        k = kern[band]
        fl = flux[band]
        # rows: tmp[i, c] = sum_j k[i - j + R] unit[j, c]
        for i in range(ro0, ro1):
            t = tmp[i - ro0, pad : pad + wc]
            for cc in range(wc):
                t[cc] = zero
            for j in range(max(rb0, i - radius), min(rb1, i + radius + 1)):
                kv = k[i - j + radius]
                u = unit[j, cb0:cb1]
                for cc in range(wc):
                    t[cc] = t[cc] + kv * u[cc]
        # columns: out[i, o] = sum_t k[t] tmp[i, o - t + R]; then + ring, x flux
        for i in range(ro0, ro1):
            for o in range(wo):
                line[o] = zero
            for tap in range(2 * radius + 1):
                kv = k[tap]
                src = tmp[i - ro0, shift - tap : shift - tap + wo]
                for o in range(wo):
                    line[o] = line[o] + kv * src[o]
            urow = unit[i, co0:co1]
            orow = out[band, i, co0:co1]
            row_in = i >= rb0 and i < rb1
            for o in range(wo):
                inside = row_in and co0 + o >= cb0 and co0 + o < cb1
                ring = zero if inside else urow[o]
                orow[o] = (line[o] + ring) * fl


def _render_group(
    out, table, clumps, n_clumps, windows, coord, ox, oy, s, adaptive, ss_tol, ss_step,
    conv_tol, flux, kern, radius, has_psf,
):  # fmt: skip
    size = out.shape[-1]
    n_band = out.shape[1]
    unit = np.zeros((size, size), dtype=np.float32)
    box = np.empty(4, dtype=np.int64)
    for i in range(out.shape[0]):
        win = windows[i]
        _render_unit(
            unit, table[i], clumps[i], n_clumps[i], win, coord, ox, oy, s, adaptive, ss_tol,
            ss_step,
        )  # fmt: skip
        r0, r1, c0, c1 = win[0], win[1], win[2], win[3]
        w = c1 - c0
        for b in range(n_band):
            fl = flux[i, b]
            for y in range(r0, r1):
                src = unit[y, c0:c1]
                dst = out[i, b, y, c0:c1]
                for x in range(w):
                    dst[x] = src[x] * fl
        if has_psf:
            if conv_tol > 0:
                # the brightest pixel (first in row-major order), and per band a lower bound of
                # the brightest convolved pixel: the PSF over the pixels within CONV_PEAK_HALF
                pr, pc = r0, c0
                peak = np.float32(0.0)
                for y in range(r0, r1):
                    src = unit[y, c0:c1]
                    for x in range(w):
                        if src[x] > peak:
                            peak = src[x]
                            pr, pc = y, c0 + x
                half = min(CONV_PEAK_HALF, radius)
                low = np.inf
                for b in range(n_band):
                    k = kern[i, b]
                    acc = 0.0
                    for dr in range(-half, half + 1):
                        for dc in range(-half, half + 1):
                            y, x = pr + dr, pc + dc
                            if y >= 0 and y < size and x >= 0 and x < size:
                                acc += (
                                    np.float64(unit[y, x])
                                    * np.float64(k[radius + dr])
                                    * (np.float64(k[radius + dc]))
                                )
                    low = min(low, acc)
                thr = np.float64(conv_tol) * low
                box[0], box[1], box[2], box[3] = size, 0, size, 0
                for y in range(r0, r1):
                    src = unit[y, c0:c1]
                    for x in range(w):
                        if np.float64(src[x]) > thr:
                            box[0] = min(box[0], y)
                            box[1] = max(box[1], y + 1)
                            box[2] = min(box[2], c0 + x)
                            box[3] = max(box[3], c0 + x + 1)
            else:
                box[0], box[1], box[2], box[3] = 0, size, 0, size
            if box[1] > box[0]:
                _convolve(out[i], unit, flux[i], kern[i], radius, box)
        for y in range(r0, r1):
            row = unit[y, c0:c1]
            for x in range(w):
                row[x] = np.float32(0.0)


with _kernel_cache():  # the kernels find each other as module globals when compiled
    _points = njit(**_OPTIONS)(_points)
    _add_clumps = njit(**_OPTIONS)(_add_clumps)
    _render_unit = njit(**_OPTIONS)(_render_unit)
    # the convolution is not bit-matched to the array path (BLAS sums in its own order): it
    # may contract multiply-adds into FMAs
    _convolve = njit(fastmath={"contract"}, **_OPTIONS)(_convolve)
    _render_group = njit(**_OPTIONS)(_render_group)


def render_group(
    out: np.ndarray, p: ArcParams, ids: np.ndarray, windows: np.ndarray, st: RenderSetup
) -> None:
    """Render injections ``ids`` (their windows ``windows``) into ``out`` (``(len(ids), B,
    size, size)`` float32, zero-initialised) with the settings ``st``."""
    f32 = np.float32
    table = np.ascontiguousarray(p.table[ids], dtype=f32)
    clumps = np.ascontiguousarray(p.clumps[ids], dtype=f32)
    if clumps.shape[1] == 0:
        clumps = np.zeros((ids.size, 1, clumps.shape[2]), dtype=f32)
    flux = np.ascontiguousarray(p.flux[ids], dtype=f32)
    has_psf = p.psf_fwhm is not None
    if has_psf:
        radius = int(kernel_radius(p.psf_fwhm[ids], st.pixel_scale).max())
        kern = gaussian_kernel_1d(
            p.psf_fwhm[ids], st.pixel_scale, radius=radius, kind=st.psf_kernel
        )
        kern = np.ascontiguousarray(kern, dtype=f32)
    else:
        radius = 0
        kern = np.zeros((ids.size, flux.shape[1], 1), dtype=f32)
    _render_group(
        out,
        table,
        clumps,
        np.ascontiguousarray(p.n_clumps[ids], dtype=np.int64),
        np.ascontiguousarray(windows, dtype=np.int64),
        st.coord.astype(f32),
        np.ascontiguousarray(st.sub[:, 0], dtype=f32),
        np.ascontiguousarray(st.sub[:, 1], dtype=f32),
        st.s,
        st.adaptive,
        f32(st.ss_tol),
        f32(st.ss_log_step),
        f32(st.conv_tol),
        flux,
        kern,
        radius,
        has_psf,
    )
