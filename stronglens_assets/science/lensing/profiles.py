"""Galaxy light profiles, PSF kernels and pixel rendering (pure array code).

Every public function takes a keyword ``xp`` (the array module, default :mod:`numpy`;
CuPy has the same API) and only uses ``xp.`` calls on arrays, so the same code runs on a
GPU by passing ``xp=cupy``. SciPy is used only for constants computed once from scalar
shape parameters (the exact Sersic :math:`b_n` and :math:`\\Gamma(2n)`), on the host.
Arrays are float64 throughout.

Conventions (shared with :mod:`stronglens_assets.science.lensing.ray_tracing`)
-------------------------------------------------------------------
* Angles on the sky (``x``, ``y``, ``center_x``, ``r_sersic``, ``pixel_scale``...) are in
  **arcsec**; position angles ``phi`` are in **radians**, measured counter-clockwise from
  the +x axis towards +y.
* Stamp coordinates (see :func:`pixel_grid`): an image array ``img[row, col]`` of shape
  ``(ny, nx)`` has pixel centres at ``x = (col - (nx - 1) / 2) * pixel_scale`` and
  ``y = (row - (ny - 1) / 2) * pixel_scale``; i.e. ``(0, 0)`` is the centre of the stamp
  (the centre of the central pixel for odd sizes), **+x = increasing column** and
  **+y = increasing row**. This is lenstronomy's ``make_grid_with_coordtransform(...,
  inverse=False)`` grid. For a north-up / east-left image such as a Legacy Survey coadd
  cutout (TAN, ``CD1_1 < 0``), +x therefore points **west (decreasing RA)** and +y points
  **north (increasing Dec)**. The (x, y) frame is then a mirror image of the sky (x runs
  west), and an axis at angle ``phi`` (counter-clockwise from +x, i.e. from west towards
  north) has astronomical position angle (north through east) ``PA = phi - 90 deg``
  (mod 180 deg).
* Surface brightness is in flux units per arcsec^2 (e.g. nanomaggies / arcsec^2); rendered
  images are in flux units per **pixel** (e.g. nanomaggies / pixel, the Legacy Survey image
  unit), i.e. mean surface brightness over the pixel times ``pixel_scale**2``.
* Sersic convention = lenstronomy ``SERSIC_ELLIPSE`` (``sersic_major_axis=False``): ``amp``
  is the surface brightness at ``R = R_sersic``, ``R_sersic`` is the circularised
  (product-average) half-light radius and the elliptical radius is
  ``R = sqrt(q x'^2 + y'^2 / q)`` with ``x'`` along the major axis. Ellipticity
  ``e = (1 - q) / (1 + q)``, ``(e1, e2) = e (cos 2 phi, sin 2 phi)``.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import scipy.special

from stronglens_assets.science.core.arrays import to_host

__all__ = [
    "SERSIC_MAX_R_FRAC",
    "SERSIC_SMOOTHING_ARCSEC",
    "bin_supersampled",
    "convolve_fft",
    "ellipticity_from_phi_q",
    "gaussian_psf_kernel",
    "moffat_psf_kernel",
    "phi_q_from_ellipticity",
    "pixel_grid",
    "render_sersic_image",
    "sersic_amp_for_flux",
    "sersic_bn",
    "sersic_bn_lenstronomy",
    "sersic_surface_brightness",
    "sersic_total_flux",
]

#: Radii (and R_sersic) are floored at this value (arcsec) before evaluating the Sersic
#: profile, as lenstronomy's ``SersicUtil(smoothing=0.0001)`` does.
SERSIC_SMOOTHING_ARCSEC: float = 1e-4
#: The Sersic profile is set to 0 beyond ``SERSIC_MAX_R_FRAC * R_sersic`` (lenstronomy's
#: ``max_R_frac`` default for ``SERSIC_ELLIPSE``).
SERSIC_MAX_R_FRAC: float = 1000.0
#: lenstronomy clips the ellipticity modulus |e| at this value in ``ellipticity2phi_q``.
_E_MODULUS_MAX: float = 0.9999
#: Floor of ``|1 - e1^2 - e2^2|`` in the elliptical coordinate transform (lenstronomy).
_E_NORM_FLOOR: float = 1e-6

ArrayLike = Any  # numpy / cupy array or Python scalar


def _host_result(value: np.ndarray, xp: ModuleType) -> Any:
    """Python float for 0-d results, else an ``xp`` array."""
    if value.ndim == 0:
        return float(value)
    return value if xp is np else xp.asarray(value)


# --------------------------------------------------------------------------------------
# Sersic constants (host-side, computed once per parameter set)
# --------------------------------------------------------------------------------------


def sersic_bn(n: float | np.ndarray, *, xp: ModuleType = np) -> float | Any:
    """Exact Sersic :math:`b_n`, the root of :math:`\\gamma(2n, b_n) = \\Gamma(2n) / 2`.

    Computed as ``scipy.special.gammaincinv(2 n, 0.5)`` on the host, so that ``R_sersic``
    is exactly the half-light radius.

    Args:
        n: Sersic index (dimensionless, > 0); scalar or array.
        xp: array module for array outputs.

    Returns:
        ``b_n`` (float for scalar input, ``xp`` array otherwise).
    """
    n_h = to_host(n).astype(float)
    if np.any(n_h <= 0):
        raise ValueError("Sersic index n must be > 0")
    return _host_result(scipy.special.gammaincinv(2.0 * n_h, 0.5), xp)


def sersic_bn_lenstronomy(n: float | np.ndarray, *, xp: ModuleType = np) -> float | Any:
    """lenstronomy's linear approximation ``b_n = max(1.9992 n - 0.3271, 1e-5)``.

    lenstronomy (v1.14) uses this approximation everywhere; pass it as ``bn=`` to the
    functions of this module to reproduce lenstronomy images bit-for-bit (tests only).
    """
    n_h = to_host(n).astype(float)
    return _host_result(np.maximum(1.9992 * n_h - 0.3271, 0.00001), xp)


def _resolve_bn(n: ArrayLike, bn: ArrayLike | None) -> np.ndarray:
    return to_host(sersic_bn(n) if bn is None else bn).astype(float)


def sersic_total_flux(
    amp: float | np.ndarray,
    r_sersic: float | np.ndarray,
    n: float | np.ndarray,
    q: float | np.ndarray = 1.0,
    *,
    bn: float | np.ndarray | None = None,
    xp: ModuleType = np,
) -> float | Any:
    """Total (integrated to infinity) flux of an elliptical Sersic profile.

    ``F = amp R^2 2 pi n e^{b_n} b_n^{-2n} Gamma(2n)`` (lenstronomy ``SersicUtil.total_flux``
    with ``sersic_major_axis=False``).

    Because ``R_sersic`` is the circularised radius (elliptical radius
    ``sqrt(q x'^2 + y'^2/q)``, a map of unit Jacobian), the axis ratio does **not** change
    the total flux; ``q`` is accepted for clarity/validation only.

    Args:
        amp: surface brightness at ``R_sersic`` (flux / arcsec^2).
        r_sersic: circularised half-light radius (arcsec).
        n: Sersic index.
        q: axis ratio in (0, 1] (ignored, see above).
        bn: override of ``b_n`` (default: exact :func:`sersic_bn`).
        xp: array module for array outputs.

    Returns:
        Total flux (flux units, e.g. nanomaggies).
    """
    q_h = to_host(q)
    if np.any((q_h <= 0) | (q_h > 1)):
        raise ValueError("axis ratio q must be in (0, 1]")
    n_h = to_host(n).astype(float)
    b = _resolve_bn(n_h, bn)
    r = to_host(r_sersic).astype(float)
    norm = (
        r**2
        * 2.0
        * np.pi
        * n_h
        * np.exp(b + scipy.special.gammaln(2.0 * n_h) - 2.0 * n_h * np.log(b))
    )
    return _host_result(to_host(amp) * norm, xp)


def sersic_amp_for_flux(
    flux: float | np.ndarray,
    r_sersic: float | np.ndarray,
    n: float | np.ndarray,
    *,
    bn: float | np.ndarray | None = None,
    xp: ModuleType = np,
) -> float | Any:
    """Inverse of :func:`sersic_total_flux`: surface brightness at ``R_sersic``.

    Args:
        flux: total flux (e.g. nanomaggies).
        r_sersic: circularised half-light radius (arcsec).
        n: Sersic index.
        bn: override of ``b_n`` (default: exact).
        xp: array module for array outputs.

    Returns:
        ``amp`` in flux / arcsec^2.
    """
    unit = to_host(sersic_total_flux(1.0, r_sersic, n, bn=bn))
    return _host_result(to_host(flux) / unit, xp)


# --------------------------------------------------------------------------------------
# Ellipticity
# --------------------------------------------------------------------------------------


def ellipticity_from_phi_q(phi: ArrayLike, q: ArrayLike, *, xp: ModuleType = np) -> tuple[Any, Any]:
    """``(phi, q) -> (e1, e2)`` as lenstronomy ``param_util.phi_q2_ellipticity``.

    Args:
        phi: position angle of the major axis (radians, counter-clockwise from +x).
        q: axis ratio minor/major in (0, 1].
        xp: array module.

    Returns:
        ``e1 = (1-q)/(1+q) cos 2phi``, ``e2 = (1-q)/(1+q) sin 2phi``.
    """
    phi = xp.asarray(phi, dtype=xp.float64)
    q = xp.asarray(q, dtype=xp.float64)
    e = (1.0 - q) / (1.0 + q)
    return e * xp.cos(2.0 * phi), e * xp.sin(2.0 * phi)


def phi_q_from_ellipticity(e1: ArrayLike, e2: ArrayLike, *, xp: ModuleType = np) -> tuple[Any, Any]:
    """``(e1, e2) -> (phi, q)`` as lenstronomy ``param_util.ellipticity2phi_q``.

    ``phi = arctan2(e2, e1) / 2`` (radians, in (-pi/2, pi/2]); ``|e|`` is clipped at 0.9999
    before ``q = (1 - |e|) / (1 + |e|)``.
    """
    e1 = xp.asarray(e1, dtype=xp.float64)
    e2 = xp.asarray(e2, dtype=xp.float64)
    phi = xp.arctan2(e2, e1) / 2.0
    c = xp.minimum(xp.sqrt(e1 * e1 + e2 * e2), _E_MODULUS_MAX)
    return phi, (1.0 - c) / (1.0 + c)


# --------------------------------------------------------------------------------------
# Sersic surface brightness
# --------------------------------------------------------------------------------------


def sersic_surface_brightness(
    x: ArrayLike,
    y: ArrayLike,
    amp: ArrayLike,
    r_sersic: ArrayLike,
    n: float | np.ndarray,
    e1: ArrayLike = 0.0,
    e2: ArrayLike = 0.0,
    center_x: ArrayLike = 0.0,
    center_y: ArrayLike = 0.0,
    *,
    bn: float | np.ndarray | None = None,
    max_r_frac: float = SERSIC_MAX_R_FRAC,
    xp: ModuleType = np,
) -> Any:
    """Elliptical Sersic surface brightness, lenstronomy ``SERSIC_ELLIPSE`` convention.

    ``I = amp exp(-b_n [(R / R_sersic)^(1/n) - 1])`` with the product-average elliptical
    radius ``R = sqrt(q x'^2 + y'^2 / q)`` (computed with lenstronomy's e1/e2 linear map),
    ``R`` and ``R_sersic`` floored at :data:`SERSIC_SMOOTHING_ARCSEC` (1e-4 arcsec) and
    ``I = 0`` where ``R > max_r_frac * R_sersic``.

    Parameters broadcast against ``x``/``y`` (e.g. shape ``(B, 1, 1)`` parameters with
    ``(H, W)`` coordinates give ``(B, H, W)``).

    Args:
        x, y: coordinates (arcsec), stamp convention of the module docstring.
        amp: surface brightness at ``R_sersic`` (flux / arcsec^2).
        r_sersic: circularised half-light radius (arcsec).
        n: Sersic index (host scalar/array: used for the constant ``b_n``).
        e1, e2: ellipticity components.
        center_x, center_y: profile centre (arcsec).
        bn: ``b_n`` override (default exact :func:`sersic_bn`; pass
            :func:`sersic_bn_lenstronomy` to reproduce lenstronomy exactly).
        max_r_frac: truncation radius in units of ``R_sersic``.
        xp: array module.

    Returns:
        Surface brightness (flux / arcsec^2), ``xp`` array.
    """
    b = xp.asarray(_resolve_bn(n, bn))
    inv_n = xp.asarray(1.0 / to_host(n).astype(float))
    e1 = xp.asarray(e1, dtype=xp.float64)
    e2 = xp.asarray(e2, dtype=xp.float64)
    dx = xp.asarray(x, dtype=xp.float64) - xp.asarray(center_x, dtype=xp.float64)
    dy = xp.asarray(y, dtype=xp.float64) - xp.asarray(center_y, dtype=xp.float64)
    norm = xp.sqrt(xp.maximum(xp.abs(1.0 - e1 * e1 - e2 * e2), _E_NORM_FLOOR))
    xe = ((1.0 - e1) * dx - e2 * dy) / norm
    ye = (-e2 * dx + (1.0 + e1) * dy) / norm
    r = xp.maximum(xp.sqrt(xe * xe + ye * ye), SERSIC_SMOOTHING_ARCSEC)
    rs = xp.maximum(xp.asarray(r_sersic, dtype=xp.float64), SERSIC_SMOOTHING_ARCSEC)
    frac = r / rs
    value = xp.asarray(amp, dtype=xp.float64) * xp.exp(-b * (frac**inv_n - 1.0))
    return xp.where(frac <= max_r_frac, value, 0.0)


# --------------------------------------------------------------------------------------
# Pixel grids
# --------------------------------------------------------------------------------------


def pixel_grid(
    shape: tuple[int, int],
    pixel_scale: float,
    supersample: int = 1,
    *,
    xp: ModuleType = np,
) -> tuple[Any, Any]:
    """Coordinates (arcsec) of the (sub-)pixel centres of a stamp.

    Pixel ``[row, col]`` is centred at ``x = (col - (nx-1)/2) * pixel_scale``,
    ``y = (row - (ny-1)/2) * pixel_scale`` (+x = +column, +y = +row; for a north-up,
    east-left image +x is west, +y north). With ``supersample = s`` each pixel is split in
    ``s x s`` sub-pixels whose centres are offset by ``((k + 0.5)/s - 0.5) * pixel_scale``,
    ``k = 0..s-1`` (identical to lenstronomy's ``make_grid_with_coordtransform(...,
    inverse=False)`` + ``make_subgrid``).

    Args:
        shape: ``(ny, nx)`` stamp shape in pixels.
        pixel_scale: pixel size (arcsec / pixel).
        supersample: sub-pixels per pixel per axis (>= 1).
        xp: array module.

    Returns:
        ``(x, y)``, each of shape ``(ny * s, nx * s)``.
    """
    ny, nx = (int(v) for v in shape)
    s = int(supersample)
    if s < 1 or ny < 1 or nx < 1:
        raise ValueError("shape entries and supersample must be >= 1")
    sub = (xp.arange(s, dtype=xp.float64) + 0.5) / s - 0.5
    cols = (xp.arange(nx, dtype=xp.float64) - (nx - 1) / 2.0)[:, None] + sub[None, :]
    rows = (xp.arange(ny, dtype=xp.float64) - (ny - 1) / 2.0)[:, None] + sub[None, :]
    x1 = cols.reshape(-1) * pixel_scale
    y1 = rows.reshape(-1) * pixel_scale
    x, y = xp.meshgrid(x1, y1)  # indexing="xy": shape (ny * s, nx * s)
    return x, y


def bin_supersampled(image: Any, supersample: int, *, xp: ModuleType = np) -> Any:
    """Average ``s x s`` blocks of the last two axes (``(..., H*s, W*s) -> (..., H, W)``)."""
    s = int(supersample)
    if s == 1:
        return image
    hs, ws = image.shape[-2:]
    if hs % s or ws % s:
        raise ValueError("image shape is not a multiple of supersample")
    blocks = image.reshape((*image.shape[:-2], hs // s, s, ws // s, s))
    return xp.mean(blocks, axis=(-3, -1))


def render_sersic_image(
    flux: float | np.ndarray,
    r_sersic: float | np.ndarray,
    n: float | np.ndarray,
    e1: ArrayLike,
    e2: ArrayLike,
    center_x: ArrayLike,
    center_y: ArrayLike,
    shape: tuple[int, int],
    pixel_scale: float,
    supersample: int = 4,
    *,
    bn: float | np.ndarray | None = None,
    xp: ModuleType = np,
) -> Any:
    """Render an (unlensed) elliptical Sersic galaxy in flux per pixel.

    The surface brightness is averaged over ``supersample x supersample`` sub-pixels and
    multiplied by the pixel area, so ``image.sum()`` equals ``flux`` up to the light that
    falls outside the stamp (and the sub-pixel sampling error of the cusp).

    Args:
        flux: total flux (e.g. nanomaggies); host scalar or array of shape ``(B, 1, 1)``.
        r_sersic: circularised half-light radius (arcsec).
        n: Sersic index.
        e1, e2: ellipticity components.
        center_x, center_y: centre (arcsec) relative to the stamp centre (see
            :func:`pixel_grid`: +x = +column, +y = +row).
        shape: ``(ny, nx)``.
        pixel_scale: arcsec / pixel.
        supersample: sub-pixels per axis.
        bn: ``b_n`` override (default exact).
        xp: array module.

    Returns:
        ``xp`` array of shape ``(..., ny, nx)``, flux / pixel.
    """
    amp = xp.asarray(sersic_amp_for_flux(flux, r_sersic, n, bn=bn))
    x, y = pixel_grid(shape, pixel_scale, supersample, xp=xp)
    sb = sersic_surface_brightness(
        x, y, amp, xp.asarray(r_sersic), n, e1, e2, center_x, center_y, bn=bn, xp=xp
    )
    return bin_supersampled(sb, supersample, xp=xp) * pixel_scale**2


# --------------------------------------------------------------------------------------
# PSF kernels and convolution
# --------------------------------------------------------------------------------------


def _kernel_offsets(size: int, pixel_scale: float, oversample: int, xp: ModuleType) -> Any:
    """1D sub-pixel centre offsets (arcsec), shape ``(size, oversample)``."""
    if size < 1 or size % 2 == 0:
        raise ValueError("kernel size must be a positive odd integer")
    if oversample < 1:
        raise ValueError("oversample must be >= 1")
    sub = (xp.arange(oversample, dtype=xp.float64) + 0.5) / oversample - 0.5
    centres = xp.arange(size, dtype=xp.float64) - (size - 1) / 2.0
    return (centres[:, None] + sub[None, :]) * pixel_scale


def gaussian_psf_kernel(
    fwhm_arcsec: float,
    pixel_scale_arcsec: float,
    size: int,
    *,
    oversample: int = 5,
    xp: ModuleType = np,
) -> Any:
    """Pixel-integrated circular Gaussian PSF kernel, normalised to sum 1.

    ``sigma = fwhm / (2 sqrt(2 ln 2))``; each pixel value is the mean of the Gaussian over
    ``oversample x oversample`` sub-pixel centres. The kernel is centred on the central
    pixel ``[size // 2, size // 2]``.

    Args:
        fwhm_arcsec: full width at half maximum (arcsec), e.g. Legacy Survey ``psfsize``.
        pixel_scale_arcsec: arcsec / pixel.
        size: kernel side in pixels (odd).
        oversample: sub-samples per pixel per axis for the pixel integration.
        xp: array module.

    Returns:
        ``(size, size)`` float64 kernel.
    """
    if fwhm_arcsec <= 0 or pixel_scale_arcsec <= 0:
        raise ValueError("fwhm and pixel scale must be > 0")
    sigma = fwhm_arcsec / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    u = _kernel_offsets(int(size), pixel_scale_arcsec, int(oversample), xp)
    g1 = xp.mean(xp.exp(-0.5 * (u / sigma) ** 2), axis=1)
    kernel = g1[:, None] * g1[None, :]
    return kernel / xp.sum(kernel)


def moffat_psf_kernel(
    fwhm: float,
    pixel_scale: float,
    size: int,
    beta: float = 3.5,
    *,
    oversample: int = 5,
    xp: ModuleType = np,
) -> Any:
    """Pixel-integrated circular Moffat PSF kernel, normalised to sum 1.

    ``I(r) ~ (1 + (r / alpha)^2)^(-beta)`` with ``alpha = fwhm / (2 sqrt(2^(1/beta) - 1))``.

    Args:
        fwhm: full width at half maximum (arcsec).
        pixel_scale: arcsec / pixel.
        size: kernel side in pixels (odd).
        beta: Moffat power index (> 1).
        oversample: sub-samples per pixel per axis.
        xp: array module.

    Returns:
        ``(size, size)`` float64 kernel.
    """
    if fwhm <= 0 or pixel_scale <= 0 or beta <= 1:
        raise ValueError("need fwhm > 0, pixel_scale > 0, beta > 1")
    alpha = fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))
    s = int(oversample)
    u = _kernel_offsets(int(size), pixel_scale, s, xp).reshape(-1)
    r2 = u[:, None] ** 2 + u[None, :] ** 2
    prof = (1.0 + r2 / alpha**2) ** (-beta)
    kernel = bin_supersampled(prof, s, xp=xp)
    return kernel / xp.sum(kernel)


def _next_fast_len(n: int) -> int:
    """Smallest 2^a 3^b 5^c >= n (good FFT size on CPU and GPU)."""
    best = 1 << max(0, (n - 1).bit_length())
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


def convolve_fft(image: Any, kernel: Any, *, xp: ModuleType = np) -> Any:
    """Same-size linear convolution over the last two axes via zero-padded real FFTs.

    Equivalent to ``scipy.signal.fftconvolve(image, kernel, mode="same")`` for 2D inputs
    (no wrap-around: the image is zero padded). Leading axes broadcast, so a batch
    ``(B, H, W)`` can be convolved with one ``(kh, kw)`` kernel or with ``(B, kh, kw)``
    kernels.

    Args:
        image: ``(..., H, W)`` array (e.g. flux / pixel).
        kernel: ``(..., kh, kw)`` kernel (normally odd-sized and normalised to 1).
        xp: array module.

    Returns:
        Real ``(..., H, W)`` array.
    """
    h, w = image.shape[-2:]
    kh, kw = kernel.shape[-2:]
    fh, fw = _next_fast_len(h + kh - 1), _next_fast_len(w + kw - 1)
    spec = xp.fft.rfft2(image, s=(fh, fw)) * xp.fft.rfft2(kernel, s=(fh, fw))
    full = xp.fft.irfft2(spec, s=(fh, fw))
    r0, c0 = (kh - 1) // 2, (kw - 1) // 2
    return full[..., r0 : r0 + h, c0 : c0 + w]
