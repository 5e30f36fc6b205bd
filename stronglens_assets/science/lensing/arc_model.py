"""The arc model the injection engine renders: parameters, validation, per-injection constants.

One float32 formula set (:func:`make_arc_model`, built on
:mod:`~stronglens_assets.science.lensing.elementwise`) evaluated by both renderers: the NumPy/CuPy
array path in :mod:`~stronglens_assets.science.lensing.injection` and the fused numba kernel in
:mod:`~stronglens_assets.science.lensing.cpu_kernel`. Units: arcsec and radians in the stamp
frame (x right, y up, origin at the stamp centre), fluxes in nanomaggies.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType, SimpleNamespace
from typing import Any, Literal

import numpy as np
import scipy.special

from stronglens_assets.science.core.arrays import to_host
from stronglens_assets.science.lensing.elementwise import Ops, xp_ops
from stronglens_assets.science.lensing.profiles import (
    SERSIC_SMOOTHING_ARCSEC,
    ellipticity_from_phi_q,
    sersic_amp_for_flux,
    sersic_bn,
    sersic_bn_lenstronomy,
)
from stronglens_assets.science.lensing.ray_tracing import (
    SIE_MIN_SQ,
    make_sie_deflection,
    shear_alpha,
)

ArrayLike = Any

#: Sersic indices the engine renders (its b_n root and the profile tables are checked there).
N_SERSIC_RANGE: tuple[float, float] = (0.2, 10.0)
#: Gaussian PSF truncation radius in sigma (lenstronomy's ``PSF(truncation=5)``).
PSF_TRUNCATION: float = 5.0
#: Target number of elements of the largest per-chunk temporary of the array path.
CHUNK_ELEMENTS: int = 1 << 20
#: Most clumps per injection.
MAX_CLUMPS: int = 8
#: Half width (arcsec) of the annulus ``|r - theta_E| <= w`` of :func:`arc_truth`'s S/N.
ARC_ANNULUS_HALF_WIDTH: float = 0.75
#: Half side (pixels) of the block around the brightest pixel whose convolution bounds the
#: brightest convolved pixel from below (the ``conv_tol`` threshold).
CONV_PEAK_HALF: int = 4
#: Largest Poisson mean numpy's generator accepts safely (int64 counts).
POISSON_LAM_MAX: float = 1e18

#: Keyword arguments of :func:`render_arcs` for the lens and for the clumps.
LENS_KEYWORDS: tuple[str, ...] = (
    "lens_axis_ratio",
    "lens_position_angle",
    "shear_gamma1",
    "shear_gamma2",
    "lens_center_x",
    "lens_center_y",
)
CLUMP_KEYWORDS: tuple[str, ...] = ("clump_x", "clump_y", "clump_sigma", "clump_flux_fraction")

#: Per-injection constants of the model, in the order of the numba kernel's table.
COLUMNS: tuple[str, ...] = (
    # lens: centre, major-axis angle, q^2, sqrt(1 - q^2) (floored), b / sqrt(1 - q^2), shear
    "lx",
    "ly",
    "cos_p",
    "sin_p",
    "q2",
    "sq",
    "b_sq",
    "g1",
    "g2",
    # Sersic: centre, elliptical map, 1/(2n), -ln(r_eff)/n, b_n, ln(amp pixel^2 (1-F)) + b_n
    "sx",
    "sy",
    "a11",
    "a12",
    "a22",
    "c",
    "d",
    "b",
    "lnA",
    # supersampling bound: theta_E/sqrt(q_lens), |gamma|, sub-pixel half-diagonal (arcsec),
    # the same / sqrt(q_source), 1.5/n, smallest distance to the lens centre (arcsec)
    "te_sq",
    "gam",
    "hd",
    "hdq",
    "n15",
    "rho_min",
)
#: Per-clump constants: offset from the source centre, ln(fraction pixel^2 / (2 pi s^2)),
#: 1/(2 s^2), 1/s^2.
CLUMP_COLUMNS: tuple[str, ...] = ("cx", "cy", "lnw", "inv2s2", "invs2")

_F32 = np.float32
_ZERO, _HALF, _ONE, _TWO = _F32(0.0), _F32(0.5), _F32(1.0), _F32(2.0)
_SIXTY = _F32(60.0)
_TINY = _F32(1e-30)
_R2_MIN = _F32(SERSIC_SMOOTHING_ARCSEC**2)


# --------------------------------------------------------------------------------------
# The model, written once (arrays: NumPy / CuPy; scalars: the numba kernel)
# --------------------------------------------------------------------------------------


def make_arc_model(ops: Ops, jit: Callable[[Any], Any] | None = None) -> SimpleNamespace:
    """The per-point formulas of the engine built from ``ops`` (see the module docstring).

    Every function takes scalars (numba) or broadcastable arrays (NumPy / CuPy) and uses
    only the primitives of ``ops`` and ``+ - * /``, so each backend runs the same IEEE
    operations. ``jit`` (e.g. ``numba.njit``) compiles each function. Returns a namespace
    with ``source_plane``, ``sersic``, ``clump``, ``stretch``, ``sersic_variation``,
    ``clump_variation`` and ``needs_supersampling``.
    """
    wrap = (lambda f: f) if jit is None else jit
    sqrt, exp, log, fmax, fmin = ops.sqrt, ops.exp, ops.log, ops.fmax, ops.fmin
    sie_alpha = make_sie_deflection(ops, jit)
    shear = wrap(shear_alpha)

    def source_plane(x, y, lx, ly, cos_p, sin_p, q2, sq, b_sq, g1, g2):
        """Source-plane position of image-plane ``(x, y)``; also the offsets from the lens."""
        dx = x - lx
        dy = y - ly
        ax, ay = sie_alpha(dx, dy, cos_p, sin_p, q2, _ZERO, _ZERO, _ZERO, sq, b_sq)
        gx, gy = shear(dx, dy, g1, g2)
        return (x - ax) - gx, (y - ay) - gy, dx, dy

    def sersic(bx, by, sx, sy, a11, a12, a22, c, d, b, ln_a):
        """Sersic flux per pixel at source-plane ``(bx, by)``: ``(f, R^2, (R/R_eff)^(1/n),
        offset from the source centre)``."""
        ux = bx - sx
        uy = by - sy
        xe = a11 * ux + a12 * uy
        ye = a12 * ux + a22 * uy
        r2 = fmax(xe * xe + ye * ye, _R2_MIN)
        t = exp(c * log(r2) + d)
        return exp(ln_a - b * t), r2, t, ux, uy

    def clump(ux, uy, cx, cy, lnw, inv2s2):
        """Gaussian clump flux per pixel at offset ``(ux, uy)`` from the source centre."""
        ex = ux - cx
        ey = uy - cy
        d2 = ex * ex + ey * ey
        return exp(lnw - d2 * inv2s2), d2

    def stretch(dx, dy, te_sq, gam, hd, rho_min):
        """Bound of the lens map's Jacobian norm over the pixel: ``max(1, 2 kappa_max - 1)
        + |gamma|`` with ``2 kappa <= theta_E / (sqrt(q) rho)`` (isothermal: the Hessian's
        eigenvalues are 0 and 2 kappa), ``rho`` the smallest distance to the lens."""
        rho = fmax(sqrt(dx * dx + dy * dy) - hd, rho_min)
        return fmax(te_sq / rho - _ONE, _ONE) + gam

    def sersic_variation(r2, t, st, hdq, b, n15):
        """Bound of ``|ln I(sub) - ln I(centre)|`` over the pixel and whether the pixel is
        too close to the profile's centre for the bound (``2 delta >= R``)."""
        delta = st * hdq
        r = sqrt(r2)
        near = delta * _TWO >= r
        g = b * t * delta / fmax(r - delta, _TINY) * n15
        return g, near

    def clump_variation(d2, st, hd, invs2):
        """Bound of ``|ln G(sub) - ln G(centre)|`` for a Gaussian clump."""
        dc = st * hd
        return (sqrt(d2) * dc + _HALF * dc * dc) * invs2

    def needs_supersampling(f, g, near, peak_tol, log_step):
        """(a) may vary by more than ``exp(log_step)`` and (b) may exceed ``peak_tol``."""
        varies = near | (g > log_step)
        bright = near | (exp(fmin(g, _SIXTY)) * f > peak_tol)
        return varies & bright

    return SimpleNamespace(
        source_plane=wrap(source_plane),
        sersic=wrap(sersic),
        clump=wrap(clump),
        stretch=wrap(stretch),
        sersic_variation=wrap(sersic_variation),
        clump_variation=wrap(clump_variation),
        needs_supersampling=wrap(needs_supersampling),
    )


_MODELS: dict[tuple[str, str], SimpleNamespace] = {}


def xp_arc_model(xp: ModuleType, dtype: Any) -> SimpleNamespace:
    key = (xp.__name__, np.dtype(dtype).str)
    if key not in _MODELS:
        _MODELS[key] = make_arc_model(xp_ops(xp, dtype))
    return _MODELS[key]


# --------------------------------------------------------------------------------------
# Validation and per-injection constants (host, float64)
# --------------------------------------------------------------------------------------


def _first(bad: np.ndarray) -> int:
    return int(np.flatnonzero(np.asarray(bad).reshape(-1))[0])


def as_vector(name: str, value: ArrayLike, n: int | None) -> np.ndarray:
    arr = to_host(value).astype(np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of length N, got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} has length {arr.shape[0]}, expected N = {n} (theta_e's)")
    if not np.all(np.isfinite(arr)):
        raise ValueError(
            f"{name} contains NaN or infinite values (index {_first(~np.isfinite(arr))})"
        )
    return arr


def optional_vector(name: str, value: ArrayLike | None, n: int, default: float) -> np.ndarray:
    return np.full(n, default) if value is None else as_vector(name, value, n)


def _check(name: str, ok: np.ndarray, rule: str) -> None:
    if not np.all(ok):
        raise ValueError(f"{name} must be {rule} (first bad element at index {_first(~ok)})")


def per_injection_table(name: str, value: ArrayLike, n: int, width: int | None) -> np.ndarray:
    arr = to_host(value).astype(np.float64)
    if arr.ndim != 2 or arr.shape[0] != n or (width is not None and arr.shape[1] != width):
        want = f"({n}, {width if width is not None else 'B'})"
        raise ValueError(f"{name} must have shape {want}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(f"{name} contains NaN or infinite values (index {tuple(bad.tolist())})")
    return arr


def sie_max_deflection(theta_e: ArrayLike, q: ArrayLike) -> np.ndarray:
    """Largest SIE deflection ``max |alpha|`` (arcsec) over all directions (host, float64).

    With ``u = cos t / q``, ``v = sin t`` on the unit ``w``-ellipse, ``|alpha|^2 = (b/f)^2
    (arctan^2(f u) + artanh^2(f v))``; maximised over 257 angles in [0, pi/2] and enlarged
    by 0.1% (the samples miss the maximum by < 1e-4 relative). ``theta_E`` for ``q = 1``.
    """
    te = np.asarray(theta_e, dtype=np.float64)[..., None]
    qq = np.asarray(q, dtype=np.float64)[..., None]
    f = np.maximum(np.sqrt(1.0 - qq * qq), SIE_MIN_SQ)
    t = np.linspace(0.0, 0.5 * np.pi, 257)
    mag = np.hypot(np.arctan(f * np.cos(t) / qq), np.arctanh(f * np.sin(t)))
    return (te * np.sqrt(qq) / f * mag).max(axis=-1) * 1.001


@dataclass(frozen=True)
class ArcParams:
    """Validated parameters (host float64) and per-injection constants."""

    flux: np.ndarray  # (N, B)
    psf_fwhm: np.ndarray | None  # (N, B)
    table: np.ndarray  # (N, len(COLUMNS))
    clumps: np.ndarray  # (N, K, len(CLUMP_COLUMNS)); K = 0 without clumps
    n_clumps: np.ndarray  # (N,) active clumps (packed first)
    reach: np.ndarray  # (N,) window radius around the lens centre, pixels
    lens_rc: np.ndarray  # (N, 2) lens centre in pixel coordinates (row, col)

    @property
    def n(self) -> int:
        return self.flux.shape[0]

    def column(self, name: str) -> np.ndarray:
        return self.table[:, COLUMNS.index(name)]


def validate_arc_parameters(
    args: dict[str, ArrayLike | None],
    *,
    size: int,
    pixel_scale: float,
    supersample: int,
    bn: str,
    flux_tol: float,
) -> ArcParams:
    te = as_vector("theta_e", args["theta_e"], None)
    n_inj = te.shape[0]
    _check("theta_e", te >= 0, ">= 0 arcsec")
    sx = as_vector("source_x", args["source_x"], n_inj)
    sy = as_vector("source_y", args["source_y"], n_inj)
    re = as_vector("r_eff", args["r_eff"], n_inj)
    _check("r_eff", re > 0, "> 0 arcsec")
    ns = as_vector("n_sersic", args["n_sersic"], n_inj)
    lo, hi = N_SERSIC_RANGE
    _check("n_sersic", (ns >= lo) & (ns <= hi), f"in [{lo}, {hi}]")
    q = as_vector("axis_ratio", args["axis_ratio"], n_inj)
    _check("axis_ratio", (q > 0) & (q <= 1), "in (0, 1]")
    pa = as_vector("position_angle", args["position_angle"], n_inj)
    fl = per_injection_table("flux", args["flux"], n_inj, None)
    if not np.all(fl >= 0):
        bad = tuple(np.argwhere(~(fl >= 0))[0].tolist())
        raise ValueError(f"flux must be >= 0 nanomaggies (first bad element at index {bad})")
    fw = None
    if args["psf_fwhm"] is not None:
        fw = per_injection_table("psf_fwhm", args["psf_fwhm"], n_inj, fl.shape[1])
        if not np.all(fw > 0):
            bad = tuple(np.argwhere(~(fw > 0))[0].tolist())
            raise ValueError(f"psf_fwhm must be > 0 arcsec (first bad element at index {bad})")
    ql = optional_vector("lens_axis_ratio", args["lens_axis_ratio"], n_inj, 1.0)
    _check("lens_axis_ratio", (ql > 0) & (ql <= 1), "in (0, 1]")
    pl = optional_vector("lens_position_angle", args["lens_position_angle"], n_inj, 0.0)
    g1 = optional_vector("shear_gamma1", args["shear_gamma1"], n_inj, 0.0)
    g2 = optional_vector("shear_gamma2", args["shear_gamma2"], n_inj, 0.0)
    gam = np.hypot(g1, g2)
    _check("shear_gamma1/shear_gamma2", gam < 1, "a shear with |gamma| < 1")
    lx = optional_vector("lens_center_x", args["lens_center_x"], n_inj, 0.0)
    ly = optional_vector("lens_center_y", args["lens_center_y"], n_inj, 0.0)
    half = 0.5 * size * pixel_scale
    _check("lens_center_x", np.abs(lx) <= half, f"inside the stamp (|x| <= {half:g} arcsec)")
    _check("lens_center_y", np.abs(ly) <= half, f"inside the stamp (|y| <= {half:g} arcsec)")
    clumps, n_clumps, clump_reach, frac_total = _validate_clumps(args, n_inj, pixel_scale, flux_tol)

    if bn == "exact":
        b = np.asarray(sersic_bn(ns), dtype=np.float64)
    elif bn == "lenstronomy":
        b = np.asarray(sersic_bn_lenstronomy(ns), dtype=np.float64)
    else:
        raise ValueError(f"bn must be 'exact' or 'lenstronomy', got {bn!r}")
    e1, e2 = ellipticity_from_phi_q(pa, q)
    norm = np.sqrt(np.maximum(np.abs(1.0 - e1 * e1 - e2 * e2), 1e-6))
    re_f = np.maximum(re, SERSIC_SMOOTHING_ARCSEC)
    amp = np.asarray(sersic_amp_for_flux(np.ones(n_inj), re_f, ns, bn=b), dtype=np.float64)
    with np.errstate(divide="ignore"):
        ln_sersic_weight = np.log1p(-frac_total)
    sq = np.maximum(np.sqrt(1.0 - ql * ql), SIE_MIN_SQ)
    hd = pixel_scale * math.sqrt(0.5) * (supersample - 1) / supersample
    values = {
        "lx": lx,
        "ly": ly,
        "cos_p": np.cos(pl),
        "sin_p": np.sin(pl),
        "q2": ql * ql,
        "sq": sq,
        "b_sq": te * np.sqrt(ql) / sq,
        "g1": g1,
        "g2": g2,
        "sx": sx,
        "sy": sy,
        "a11": (1.0 - e1) / norm,
        "a12": -e2 / norm,
        "a22": (1.0 + e1) / norm,
        "c": 0.5 / ns,
        "d": -np.log(re_f) / ns,
        "b": b,
        "lnA": np.log(amp * pixel_scale**2) + b + ln_sersic_weight,
        "te_sq": te / np.sqrt(ql),
        "gam": gam,
        "hd": np.full(n_inj, hd),
        "hdq": hd / np.sqrt(q),
        "n15": 1.5 / ns,
        "rho_min": np.full(n_inj, 1e-3 * pixel_scale),
    }
    table = np.stack([values[name] for name in COLUMNS], axis=1)

    # window: pixels that can map within R_cut (1 - flux_tol of the flux) of the source
    x_cut = scipy.special.gammaincinv(2.0 * ns, 1.0 - flux_tol)
    r_src = np.maximum(re_f * (x_cut / b) ** ns / np.sqrt(q), clump_reach)
    extent = (sie_max_deflection(te, ql) + np.hypot(sx - lx, sy - ly) + r_src) / (1.0 - gam)
    centre = (size - 1) / 2.0
    return ArcParams(
        flux=fl,
        psf_fwhm=fw,
        table=table,
        clumps=clumps,
        n_clumps=n_clumps,
        reach=extent / pixel_scale + 1.0,
        lens_rc=np.stack([ly / pixel_scale + centre, lx / pixel_scale + centre], axis=1),
    )


def _validate_clumps(
    args: dict[str, ArrayLike | None], n_inj: int, pixel_scale: float, flux_tol: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    names = ("clump_x", "clump_y", "clump_sigma", "clump_flux_fraction")
    given = [args[name] is not None for name in names]
    if not any(given):
        z = np.zeros(n_inj)
        return np.zeros((n_inj, 0, len(CLUMP_COLUMNS))), z.astype(np.int64), z, z
    if not all(given):
        missing = [name for name, ok in zip(names, given, strict=True) if not ok]
        raise ValueError(f"clumps need all of {list(names)}; missing {missing}")
    cx = per_injection_table("clump_x", args["clump_x"], n_inj, None)
    k = cx.shape[1]
    if k > MAX_CLUMPS:
        raise ValueError(f"clump_x has {k} clumps per injection; at most {MAX_CLUMPS}")
    cy = per_injection_table("clump_y", args["clump_y"], n_inj, k)
    sig = per_injection_table("clump_sigma", args["clump_sigma"], n_inj, k)
    frac = per_injection_table("clump_flux_fraction", args["clump_flux_fraction"], n_inj, k)
    if not np.all(frac >= 0):
        bad = tuple(np.argwhere(~(frac >= 0))[0].tolist())
        raise ValueError(f"clump_flux_fraction must be >= 0 (first bad element at index {bad})")
    active = frac > 0
    if not np.all(sig[active] > 0):
        bad = tuple(np.argwhere(active & ~(sig > 0))[0].tolist())
        raise ValueError(f"clump_sigma must be > 0 arcsec (first bad element at index {bad})")
    total = frac.sum(axis=1)
    _check("clump_flux_fraction", total <= 1.0, "summing to <= 1 per injection")
    order = np.argsort(~active, axis=1, kind="stable")  # active clumps first
    take = lambda a: np.take_along_axis(a, order, axis=1)  # noqa: E731
    cx, cy, sig, frac, active = take(cx), take(cy), take(sig), take(frac), take(active)
    safe = np.where(active, sig, 1.0)
    with np.errstate(divide="ignore"):
        lnw = np.where(active, np.log(frac * pixel_scale**2 / (2.0 * np.pi * safe**2)), -np.inf)
    table = np.stack(
        [
            np.where(active, cx, 0.0),
            np.where(active, cy, 0.0),
            lnw,
            np.where(active, 0.5 / safe**2, 0.0),
            np.where(active, 1.0 / safe**2, 0.0),
        ],
        axis=-1,
    )
    reach = np.where(active, np.hypot(cx, cy) + safe * math.sqrt(-2.0 * math.log(flux_tol)), 0.0)
    return table, active.sum(axis=1).astype(np.int64), reach.max(axis=1, initial=0.0), total


def render_windows(p: ArcParams, size: int, adaptive: bool) -> np.ndarray:
    """``(N, 4)`` int64 ``[r0, r1, c0, c1]`` (end exclusive) of the evaluated pixels."""
    if not adaptive:
        return np.tile(np.array([0, size, 0, size], dtype=np.int64), (p.n, 1))
    reach = p.reach[:, None]
    lo = np.floor(p.lens_rc - reach)
    hi = np.ceil(p.lens_rc + reach) + 1
    lo = np.clip(lo, 0, size).astype(np.int64)
    hi = np.clip(hi, 0, size).astype(np.int64)
    return np.stack([lo[:, 0], hi[:, 0], lo[:, 1], hi[:, 1]], axis=1)


def bbox_from_mask(rows_any: np.ndarray, cols_any: np.ndarray) -> np.ndarray:
    """``[r0, r1, c0, c1]`` (end exclusive) of the True entries; ``[0, 0, 0, 0]`` if none."""
    size = rows_any.shape[1]
    has = rows_any.any(axis=1)
    r0 = np.argmax(rows_any, axis=1)
    r1 = size - np.argmax(rows_any[:, ::-1], axis=1)
    c0 = np.argmax(cols_any, axis=1)
    c1 = size - np.argmax(cols_any[:, ::-1], axis=1)
    box = np.stack([r0, r1, c0, c1], axis=1).astype(np.int64)
    box[~has] = 0
    return box


# --------------------------------------------------------------------------------------
# PSF kernels
# --------------------------------------------------------------------------------------


def gaussian_kernel_1d(
    fwhm: ArrayLike,
    pixel_scale: float,
    *,
    radius: int | None = None,
    kind: Literal["sampled", "integrated"] = "sampled",
    truncation: float = PSF_TRUNCATION,
) -> np.ndarray:
    """1-D Gaussian PSF kernels (host, float64), one per FWHM, normalised to sum 1.

    ``sigma = fwhm / (2 sqrt(2 ln 2))``. ``kind="sampled"``: ``exp(-d^2 / 2 sigma^2)`` at
    integer pixel offsets ``d``, truncated beyond ``int(truncation sigma / pixel_scale +
    0.5)`` pixels (``scipy.ndimage.gaussian_filter``, i.e. lenstronomy's ``GAUSSIAN``);
    ``kind="integrated"``: the Gaussian integrated over each pixel (erf differences), same
    truncation. The 2-D PSF is the outer product of the 1-D kernel with itself.

    Args:
        fwhm: FWHM in arcsec, any shape ``S``.
        pixel_scale: arcsec / pixel.
        radius: length of the returned kernels is ``2 radius + 1`` (default: the largest
            truncation radius); entries beyond each kernel's own radius are 0.
        kind: ``"sampled"`` or ``"integrated"``.
        truncation: truncation radius in sigma.

    Returns:
        ``S + (2 radius + 1,)`` array.
    """
    fw = np.asarray(fwhm, dtype=np.float64)
    sigma = fw / (2.0 * math.sqrt(2.0 * math.log(2.0))) / pixel_scale  # pixels
    own = np.floor(truncation * sigma + 0.5).astype(np.int64)
    rmax = int(own.max(initial=0)) if radius is None else int(radius)
    d = np.arange(-rmax, rmax + 1, dtype=np.float64)
    sig = sigma[..., None]
    if kind == "sampled":
        k = np.exp(-0.5 * (d / sig) ** 2)
    elif kind == "integrated":
        scale = math.sqrt(2.0) * sig
        k = scipy.special.erf((d + 0.5) / scale) - scipy.special.erf((d - 0.5) / scale)
    else:
        raise ValueError(f"psf_kernel must be 'sampled' or 'integrated', got {kind!r}")
    k = np.where(np.abs(d) <= own[..., None], k, 0.0)
    return k / k.sum(axis=-1, keepdims=True)


def kernel_radius(psf_fwhm: np.ndarray, pixel_scale: float) -> np.ndarray:
    sigma_pix = psf_fwhm / (2.0 * math.sqrt(2.0 * math.log(2.0))) / pixel_scale
    return np.floor(PSF_TRUNCATION * sigma_pix + 0.5).astype(np.int64).max(axis=1)


# --------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderSetup:
    """Everything a backend needs besides the parameters."""

    size: int
    s: int
    pixel_scale: float
    dtype: Any
    adaptive: bool
    ss_tol: float
    ss_log_step: float
    conv_tol: float
    psf_kernel: str
    coord: np.ndarray  # (size,) pixel-centre coordinates, float64
    sub: np.ndarray  # (s*s, 2) sub-pixel offsets (x, y), float64


def render_setup(size: int, s: int, pixel_scale: float, **kw: Any) -> RenderSetup:
    coord = (np.arange(size, dtype=np.float64) - (size - 1) / 2.0) * pixel_scale
    off = ((np.arange(s) + 0.5) / s - 0.5) * pixel_scale
    ox, oy = np.meshgrid(off, off)  # k = iy * s + ix
    sub = np.stack([ox.reshape(-1), oy.reshape(-1)], axis=1)
    return RenderSetup(size=size, s=s, pixel_scale=pixel_scale, coord=coord, sub=sub, **kw)
