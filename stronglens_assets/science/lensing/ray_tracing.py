"""Lens mass profiles, ray shooting and lensed-source rendering (pure array code).

Conventions follow lenstronomy (v1.14) and :mod:`stronglens_assets.science.lensing.profiles`:

* coordinates and deflections in **arcsec**; stamp frame +x = +column, +y = +row, origin at
  the stamp centre (for a north-up / east-left cutout +x = west, +y = north);
  see :func:`stronglens_assets.science.lensing.profiles.pixel_grid`.
* the lens equation is ``beta = theta - sum_i alpha_i(theta)`` (single lens plane);
* ``theta_E`` of the SIE is lenstronomy's product-average (circularised) Einstein radius;
  the convergence is ``kappa = theta_E / (2 sqrt(q x'^2 + y'^2 / q))``;
* ellipticities ``(e1, e2) = (1-q)/(1+q) (cos 2phi, sin 2phi)``; external shear
  ``alpha = (g1 x + g2 y, g2 x - g1 y)``.

Lens components are dicts with a ``"type"`` key and lenstronomy's keyword names:

* ``{"type": "SIS", "theta_E", "center_x", "center_y"}``
* ``{"type": "SIE", "theta_E", "e1", "e2", "center_x", "center_y"}``
* ``{"type": "SHEAR", "gamma1", "gamma2", "ra_0", "dec_0"}``

(``theta_e`` is accepted for ``theta_E``; centres default to 0.) Source components are
Sersic dicts: ``{"type": "SERSIC", "flux", "r_sersic", "n", "e1", "e2", "center_x",
"center_y"}``, where ``flux`` is the intrinsic (unlensed) total flux (e.g. nanomaggies);
lenstronomy's ``amp`` (flux/arcsec^2 at ``R_sersic``), ``R_sersic`` and ``n_sersic`` are
accepted as aliases, and an optional ``bn`` overrides the exact Sersic ``b_n``.

Every public function takes ``xp`` (array module, default NumPy; CuPy works the same).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

import numpy as np

from stronglens_assets.science.lensing.elementwise import Ops, xp_ops
from stronglens_assets.science.lensing.profiles import (
    bin_supersampled,
    convolve_fft,
    phi_q_from_ellipticity,
    pixel_grid,
    sersic_amp_for_flux,
    sersic_surface_brightness,
)

__all__ = [
    "SIE_CORE_ARCSEC",
    "SIE_MIN_SQ",
    "magnification_map",
    "make_sie_deflection",
    "ray_shoot",
    "render_lensed_sersic",
    "render_lensed_sources",
    "shear_alpha",
    "shear_deflection",
    "sie_deflection",
    "sis_deflection",
]

ArrayLike = Any

#: Core radius used by lenstronomy's ``SIE`` (an ``NIE`` with ``s_scale = 1e-10`` arcsec).
SIE_CORE_ARCSEC: float = 1e-10
#: Floor of ``sqrt(1 - q^2)`` in the injection engine's SIE (its ``q -> 1`` branch: ``q = 1``
#: then renders the SIS to < 4e-9 relative, see :func:`make_sie_deflection`).
SIE_MIN_SQ: float = 1e-4
#: lenstronomy's ``NIEMajorAxis`` replaces ``q >= 1`` by this value.
_Q_MAX: float = 0.99999999


def _f64(v: ArrayLike, xp: ModuleType) -> Any:
    return xp.asarray(v, dtype=xp.float64)


def sis_deflection(
    x: ArrayLike,
    y: ArrayLike,
    theta_e: ArrayLike,
    center_x: ArrayLike = 0.0,
    center_y: ArrayLike = 0.0,
    *,
    xp: ModuleType = np,
) -> tuple[Any, Any]:
    """Singular isothermal sphere deflection ``alpha = theta_E (x, y) / r`` (arcsec).

    ``alpha = 0`` exactly at the centre (as lenstronomy). Parameters broadcast against
    ``x``/``y``.

    Args:
        x, y: image-plane positions (arcsec).
        theta_e: Einstein radius (arcsec).
        center_x, center_y: lens centre (arcsec).
        xp: array module.

    Returns:
        ``(alpha_x, alpha_y)`` in arcsec.
    """
    dx = _f64(x, xp) - _f64(center_x, xp)
    dy = _f64(y, xp) - _f64(center_y, xp)
    r = xp.sqrt(dx * dx + dy * dy)
    a = xp.where(r > 0, _f64(theta_e, xp) / xp.where(r > 0, r, 1.0), 0.0)
    return a * dx, a * dy


def make_sie_deflection(ops: Ops, jit: Any = None) -> Any:
    """The SIE deflection formula written with the primitives of ``ops`` (one implementation
    for the mock survey, the injection engine's array path and its numba kernel).

    Returns ``sie_alpha(dx, dy, cos_p, sin_p, q2, s, s2, q2s, sq, b_sq)`` ->
    ``(alpha_x, alpha_y)`` for offsets ``(dx, dy)`` from the lens centre (arcsec, stamp
    frame), with the per-lens constants ``cos_p, sin_p`` of the major-axis angle, ``q2 =
    q^2``, core ``s`` (``s2 = s^2``, ``q2s = q^2 s``), ``sq = sqrt(1 - q^2)`` (> 0) and
    ``b_sq = b / sq``, ``b = theta_E sqrt(q)``. In the lens frame ``(x', y')``, ``psi =
    sqrt(q^2 (s^2 + x'^2) + y'^2)``::

        alpha_x' = b / sq arctan (sq x' / (psi + s))
        alpha_y' = b / sq arctanh(sq y' / (psi + q^2 s))

    (Keeton & Kochanek 1998; with ``s = 0`` the Kormann et al. 1994 SIE of PROTOCOL.md).
    The denominators are floored at 1e-30 so that ``s = 0`` is defined at the centre
    (deflection 0 there). ``q -> 1``: ``arctan(sq u) / sq -> u``; callers floor ``sq``
    (the engine at :data:`SIE_MIN_SQ`, lenstronomy caps ``q`` at 0.99999999), which changes
    the deflection by less than ``sq^2 / 3`` relative. ``jit`` (e.g. ``numba.njit``)
    compiles the returned function.
    """
    sqrt, atan, atanh, fmax = ops.sqrt, ops.atan, ops.atanh, ops.fmax
    tiny = np.float32(1e-30)

    def sie_alpha(dx, dy, cos_p, sin_p, q2, s, s2, q2s, sq, b_sq):
        xr = cos_p * dx + sin_p * dy
        yr = -sin_p * dx + cos_p * dy
        psi = sqrt(q2 * (s2 + xr * xr) + yr * yr)
        ax = b_sq * atan(sq * xr / fmax(psi + s, tiny))
        ay = b_sq * atanh(sq * yr / fmax(psi + q2s, tiny))
        return cos_p * ax - sin_p * ay, sin_p * ax + cos_p * ay

    return sie_alpha if jit is None else jit(sie_alpha)


def shear_alpha(dx: Any, dy: Any, gamma1: Any, gamma2: Any) -> tuple[Any, Any]:
    """External shear deflection ``(g1 dx + g2 dy, g2 dx - g1 dy)`` for offsets from the
    point where it vanishes (operators only: arrays, scalars and numba alike)."""
    return gamma1 * dx + gamma2 * dy, gamma2 * dx - gamma1 * dy


def sie_deflection(
    x: ArrayLike,
    y: ArrayLike,
    theta_e: ArrayLike,
    e1: ArrayLike,
    e2: ArrayLike,
    center_x: ArrayLike = 0.0,
    center_y: ArrayLike = 0.0,
    *,
    s_scale: float = SIE_CORE_ARCSEC,
    xp: ModuleType = np,
) -> tuple[Any, Any]:
    """Singular isothermal ellipsoid deflection, identical to lenstronomy ``SIE``.

    lenstronomy's ``SIE`` is an ``NIE`` with core ``s_scale = 1e-10`` (Keeton & Kochanek
    1998 analytic deflection). With ``(phi, q)`` from ``(e1, e2)`` and coordinates rotated
    onto the major axis, ``b = theta_E sqrt(q)``, ``s = s_scale / sqrt(q)``: the formula of
    :func:`make_sie_deflection`, rotated back by ``phi``. ``q`` is capped at 0.99999999
    (so ``e1 = e2 = 0`` reproduces the SIS to ~1e-8).

    Args:
        x, y: image-plane positions (arcsec).
        theta_e: product-average (circularised) Einstein radius (arcsec).
        e1, e2: lens ellipticity components.
        center_x, center_y: lens centre (arcsec).
        s_scale: core radius (arcsec); the default reproduces lenstronomy's ``SIE``.
        xp: array module.

    Returns:
        ``(alpha_x, alpha_y)`` in arcsec.
    """
    phi, q = phi_q_from_ellipticity(e1, e2, xp=xp)
    q = xp.minimum(q, _Q_MAX)
    b = _f64(theta_e, xp) * xp.sqrt(q)
    s = s_scale / xp.sqrt(q)
    sq = xp.sqrt(1.0 - q * q)
    dx = _f64(x, xp) - _f64(center_x, xp)
    dy = _f64(y, xp) - _f64(center_y, xp)
    sie_alpha = make_sie_deflection(xp_ops(xp, np.float64))
    return sie_alpha(dx, dy, xp.cos(phi), xp.sin(phi), q * q, s, s * s, q * q * s, sq, b / sq)


def shear_deflection(
    x: ArrayLike,
    y: ArrayLike,
    gamma1: ArrayLike,
    gamma2: ArrayLike,
    ra_0: ArrayLike = 0.0,
    dec_0: ArrayLike = 0.0,
    *,
    xp: ModuleType = np,
) -> tuple[Any, Any]:
    """External shear deflection (lenstronomy ``SHEAR``), arcsec.

    ``psi = (g1 (x^2 - y^2) + 2 g2 x y) / 2`` so ``alpha = (g1 x + g2 y, g2 x - g1 y)`` with
    ``(x, y)`` relative to ``(ra_0, dec_0)`` (where the deflection vanishes). The shear
    angle is ``phi_ext = arctan2(g2, g1) / 2`` counter-clockwise from +x.
    """
    dx = _f64(x, xp) - _f64(ra_0, xp)
    dy = _f64(y, xp) - _f64(dec_0, xp)
    return shear_alpha(dx, dy, _f64(gamma1, xp), _f64(gamma2, xp))


def _get(comp: Mapping[str, Any], *names: str, default: Any = None) -> Any:
    for name in names:
        if name in comp:
            return comp[name]
    if default is None:
        raise KeyError(f"component {dict(comp)!r} lacks {' / '.join(names)}")
    return default


def _component_deflection(
    x: Any, y: Any, comp: Mapping[str, Any], xp: ModuleType
) -> tuple[Any, Any]:
    kind = str(comp.get("type", "")).upper()
    if kind == "SIS":
        return sis_deflection(
            x,
            y,
            _get(comp, "theta_E", "theta_e"),
            comp.get("center_x", 0.0),
            comp.get("center_y", 0.0),
            xp=xp,
        )
    if kind == "SIE":
        return sie_deflection(
            x,
            y,
            _get(comp, "theta_E", "theta_e"),
            comp.get("e1", 0.0),
            comp.get("e2", 0.0),
            comp.get("center_x", 0.0),
            comp.get("center_y", 0.0),
            xp=xp,
        )
    if kind == "SHEAR":
        return shear_deflection(
            x,
            y,
            _get(comp, "gamma1"),
            _get(comp, "gamma2"),
            comp.get("ra_0", 0.0),
            comp.get("dec_0", 0.0),
            xp=xp,
        )
    raise ValueError(f"unknown lens component type {comp.get('type')!r} (SIS, SIE, SHEAR)")


def ray_shoot(
    x: ArrayLike,
    y: ArrayLike,
    lens_components: Sequence[Mapping[str, Any]],
    *,
    xp: ModuleType = np,
) -> tuple[Any, Any]:
    """Map image-plane positions to the source plane: ``beta = theta - sum alpha``.

    Args:
        x, y: image-plane positions (arcsec).
        lens_components: list of lens dicts (SIS / SIE / SHEAR, see module docstring);
            deflections of all components are summed (single lens plane).
        xp: array module.

    Returns:
        ``(beta_x, beta_y)`` in arcsec.
    """
    bx = _f64(x, xp)
    by = _f64(y, xp)
    x0, y0 = bx, by
    for comp in lens_components:
        ax, ay = _component_deflection(x0, y0, comp, xp)
        bx = bx - ax
        by = by - ay
    return bx, by


def magnification_map(
    x: ArrayLike,
    y: ArrayLike,
    lens_components: Sequence[Mapping[str, Any]],
    *,
    step: float = 1e-5,
    xp: ModuleType = np,
) -> Any:
    """Signed point magnification ``mu = 1 / det(d beta / d theta)`` at ``(x, y)``.

    The Jacobian is computed by central finite differences of :func:`ray_shoot` with step
    ``step`` arcsec (keep points farther than ~100 steps from a singular lens centre).
    Negative values are parity-inverted images; ``|mu|`` diverges on critical curves.
    """
    x = _f64(x, xp)
    y = _f64(y, xp)
    bxp, byp = ray_shoot(x + step, y, lens_components, xp=xp)
    bxm, bym = ray_shoot(x - step, y, lens_components, xp=xp)
    a11, a21 = (bxp - bxm) / (2 * step), (byp - bym) / (2 * step)
    bxp, byp = ray_shoot(x, y + step, lens_components, xp=xp)
    bxm, bym = ray_shoot(x, y - step, lens_components, xp=xp)
    a12, a22 = (bxp - bxm) / (2 * step), (byp - bym) / (2 * step)
    return 1.0 / (a11 * a22 - a12 * a21)


def _source_surface_brightness(bx: Any, by: Any, comp: Mapping[str, Any], xp: ModuleType) -> Any:
    kind = str(comp.get("type", "SERSIC")).upper()
    if kind not in ("SERSIC", "SERSIC_ELLIPSE"):
        raise ValueError(f"unknown source component type {comp.get('type')!r} (SERSIC)")
    r_sersic = _get(comp, "r_sersic", "R_sersic")
    n = _get(comp, "n", "n_sersic")
    bn = comp.get("bn")
    if "flux" in comp:
        amp = sersic_amp_for_flux(comp["flux"], r_sersic, n, bn=bn)
    else:
        amp = _get(comp, "amp")
    return sersic_surface_brightness(
        bx,
        by,
        xp.asarray(amp),
        xp.asarray(r_sersic),
        n,
        comp.get("e1", 0.0),
        comp.get("e2", 0.0),
        comp.get("center_x", 0.0),
        comp.get("center_y", 0.0),
        bn=bn,
        xp=xp,
    )


def render_lensed_sources(
    lens_components: Sequence[Mapping[str, Any]],
    source_components: Sequence[Mapping[str, Any]],
    shape: tuple[int, int],
    pixel_scale: float,
    supersample: int = 4,
    psf_kernel: Any | None = None,
    *,
    xp: ModuleType = np,
) -> Any:
    """Render lensed Sersic sources (e.g. a smooth host plus clumps) in flux per pixel.

    Each sub-pixel centre (see :func:`~stronglens_assets.science.lensing.profiles.pixel_grid`) is
    ray-shot to the source plane, the source surface brightness is evaluated there (surface
    brightness is conserved by lensing), averaged over the ``supersample x supersample``
    sub-pixels, multiplied by ``pixel_scale**2`` and finally convolved (zero-padded FFT,
    :func:`~stronglens_assets.science.lensing.profiles.convolve_fft`) with ``psf_kernel`` at the
    native pixel scale. The total lensed flux is thus ``mu_total x`` the intrinsic flux
    (minus light outside the stamp). This matches lenstronomy's ``ImageModel.image`` with
    ``supersampling_factor = s``, ``supersampling_convolution = False`` and a ``PIXEL`` PSF
    (lenstronomy images are also flux per pixel: mean surface brightness x pixel area).

    Args:
        lens_components: lens dicts (SIS / SIE / SHEAR); empty list = no lensing.
        source_components: Sersic source dicts (module docstring); scalar parameters, or
            arrays of shape ``(B, 1, 1)`` for a batch of ``B`` stamps.
        shape: ``(ny, nx)`` stamp shape (pixels).
        pixel_scale: arcsec / pixel (0.262 for the Legacy Surveys).
        supersample: sub-pixels per pixel per axis.
        psf_kernel: optional ``(kh, kw)`` (or ``(B, kh, kw)``) kernel, normalised to 1,
            at the native pixel scale; ``None`` for no PSF.
        xp: array module.

    Returns:
        ``(..., ny, nx)`` image in flux units per pixel.
    """
    x, y = pixel_grid(shape, pixel_scale, supersample, xp=xp)
    bx, by = ray_shoot(x, y, lens_components, xp=xp)
    sb = None
    for comp in source_components:
        term = _source_surface_brightness(bx, by, comp, xp)
        sb = term if sb is None else sb + term
    if sb is None:
        sb = xp.zeros_like(bx)
    image = bin_supersampled(sb, supersample, xp=xp) * pixel_scale**2
    if psf_kernel is not None:
        image = convolve_fft(image, xp.asarray(psf_kernel, dtype=xp.float64), xp=xp)
    return image


def render_lensed_sersic(
    lens_components: Sequence[Mapping[str, Any]],
    flux: ArrayLike,
    r_sersic: ArrayLike,
    n: ArrayLike,
    e1: ArrayLike,
    e2: ArrayLike,
    center_x: ArrayLike,
    center_y: ArrayLike,
    shape: tuple[int, int],
    pixel_scale: float,
    supersample: int = 4,
    psf_kernel: Any | None = None,
    *,
    bn: ArrayLike | None = None,
    xp: ModuleType = np,
) -> Any:
    """Single lensed Sersic source; thin wrapper of :func:`render_lensed_sources`.

    ``flux`` is the intrinsic source flux, ``r_sersic`` the circularised half-light radius
    (arcsec), ``(center_x, center_y)`` the source-plane position (arcsec, stamp frame).
    Returns the image in flux per pixel.
    """
    comp: dict[str, Any] = {
        "type": "SERSIC",
        "flux": flux,
        "r_sersic": r_sersic,
        "n": n,
        "e1": e1,
        "e2": e2,
        "center_x": center_x,
        "center_y": center_y,
    }
    if bn is not None:
        comp["bn"] = bn
    return render_lensed_sources(
        lens_components, [comp], shape, pixel_scale, supersample, psf_kernel, xp=xp
    )
