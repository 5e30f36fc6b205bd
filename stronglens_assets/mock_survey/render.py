"""Render the coadd images of one mock brick: objects, lensed arcs, noise, invvar, psfsize.

Pixels are in nanomaggies (AB zero point 22.5), arrays ``[row, col]`` = ``[y, x]`` of the
brick's TAN WCS (3600 x 3600, 0.262"/px, north up, east left); stamp frames follow
:mod:`stronglens_assets.science.lensing.profiles` (+x = +column = west, +y = +row = north, arcsec).

Model
-----
* PSF: a pixel-integrated circular Moffat (beta = 3.5) with the brick's ``psfsize`` FWHM in
  that band (constant over the brick, varying from brick to brick); kernel side
  ``2 ceil(4 FWHM / 0.262") + 1`` pixels, normalised to 1.
* Objects are rendered on odd square stamps centred on their nearest pixel, with the
  sub-pixel offset in the model. Stamp size grows with the object's extent (3.5 r_e for
  n <= 2, 5 r_e for steeper profiles, ring radius + 3 widths, ...) plus a PSF radius that
  grows with brightness (2 to 12 FWHM), snapped to a few fixed sizes so stamps are rendered
  in vectorised batches of equal size (the unconvolved model is evaluated on a smaller
  inner stamp, supersampled 4x to 1x by half-light radius). Each component is normalised
  to unit flux inside its stamp, components are mixed with their per-band flux fractions,
  zero padded, convolved with the band PSF (FFT) and **renormalised so the stamp sums
  exactly to the catalog flux**: the catalog flux is the flux put into the pixels (light
  beyond the truncation is folded back into the stamp).
  Stars are Moffat stamps evaluated at their sub-pixel position.
* Lensed arcs: for each lens a 65 x 65 px stamp centred on the deflector's pixel
  (``floor(x + 0.5)``, the cutouts' convention) is rendered by the injection engine
  (:mod:`~stronglens_assets.science.lensing.structured_source`: SIE + SHEAR, Sersic source
  + star-forming knots, supersampling 4), convolved with the band PSF and added to the image;
  the noiseless stamps are kept as truth (``truth/<RRR>/arcs-<brick>.npz``). Arcs are not
  sweep objects (as when Tractor absorbs a faint arc into the deflector model).
* Noise: Gaussian, per-pixel ``sigma = 1 / sqrt(invvar)``. From the brick's drawn 5-sigma
  point-source depth ``m5``: ``sigma_ps = 10^(-0.4 (m5 - 22.5)) / 5`` nanomaggies for a
  PSF-weighted flux, and ``sigma_pix = sigma_ps / sqrt(n_eff)`` with
  ``n_eff = 1 / sum(psf^2)`` pixels. ``invvar = 1 / sigma_pix^2`` where ``nobs`` exposures
  overlap, scaled by ``(nobs + 1) / nobs`` beyond an exposure edge, and 0 (image 0) on bad
  strips. Shot noise of the light: Gaussian of variance ``max(light, 0) / gain`` per pixel
  (the Poisson noise of the objects' and arcs' electrons, > 100 e- per pixel where it
  matters), ``gain = sky per pixel / sigma_pix^2`` (the sky-limited coadd's e-/nanomaggy,
  :func:`~stronglens_assets.science.imaging.gain.sky_limited_gain`). invvar is sky-only, as DR10's.
* Arc visibility: per band ``S/N = sqrt(sum((arc / sigma_pix)^2)) = sqrt(sum(arc^2 invvar))``
  over the stamp (the matched-filter S/N of the noise-free, PSF-convolved arc model);
  ``arc_visible = max over bands of S/N >= 10`` (:data:`ARC_SNR_VISIBLE`).
* Arc S/N in the deflector-subtracted residual (what a human grader sees, used to grade mock
  lenses Tier-A/B): a grader subtracts a smooth model of the deflector (and its neighbours)
  and looks at the residual; the subtraction is imperfect where that light is bright, at a
  level of ``f`` (``lenses.grading_residual_fraction``, ~10% for a Sersic-model residual)
  of the subtracted light ``L``, so each pixel's variance is ``sigma^2 + (f L)^2``:
  ``S/N_res = sqrt(sum(arc^2 / (1 / invvar + (f L)^2)))`` over the stamp, ``L`` the
  noiseless, PSF-convolved light of the catalog objects. Arcs buried in a bright deflector
  count little; ``f = 0`` gives back the arc S/N above.

Catalog quantities derived here (per object, local to its centre pixel): ``flux_ivar =
invvar * sum(p^2)`` with ``p`` the object's unit-normalised PSF-convolved stamp (the
inverse variance of an optimally weighted flux), ``psfdepth = invvar * sum(psf^2)`` and
``galdepth = invvar * sum(g^2)`` with ``g`` a 0.45" round exponential convolved with the
PSF (both in 1/nanomaggy^2, as DR10), ``nobs``, and ``fiberflux_z`` (flux inside a 1.5"
diameter fibre in 1" Gaussian seeing, with the object approximated by a Gaussian of the
same half-light radius).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.fft

from stronglens_assets.mock_survey.config import ALLOWED_BANDS, DemoSkyConfig
from stronglens_assets.mock_survey.sky import (
    NOISE_STREAM_OFFSET,
    SHOT_NOISE_STREAM_OFFSET,
    BandConditions,
    SkyModel,
    lens_geometry,
    rng_streams,
    source_parameters,
)
from stronglens_assets.science.catalogs.bricks import BRICK_NPIX, PIXEL_SCALE_ARCSEC
from stronglens_assets.science.core.units import (
    mag_to_nanomaggies,
    nanomaggies_to_mag,
    sky_nanomaggies_per_pixel,
)
from stronglens_assets.science.imaging.gain import sky_limited_gain
from stronglens_assets.science.lensing.profiles import (
    bin_supersampled,
    convolve_fft,
    moffat_psf_kernel,
    pixel_grid,
    render_sersic_image,
)
from stronglens_assets.science.lensing.structured_source import (
    convolve_bands,
    lensed_unit_images,
)

__all__ = [
    "ARC_SNR_VISIBLE",
    "LENS_STAMP_NPIX",
    "MOFFAT_BETA",
    "STAMP_SIZES",
    "BandImage",
    "BrickImages",
    "invvar_map",
    "psf_kernel",
    "render_brick",
    "sigma_pix_from_depth",
]

MOFFAT_BETA: float = 3.5
#: Allowed object stamp sides (pixels); objects are batched by stamp size.
STAMP_SIZES: tuple[int, ...] = (15, 21, 31, 45, 63, 91, 127, 181, 255)
#: Side (pixels) of the stamp around each lens on which arcs are rendered.
LENS_STAMP_NPIX: int = 65
#: A lens's arcs are "visible" when the best band's matched-filter S/N reaches this.
ARC_SNR_VISIBLE: float = 10.0
#: Half-light radius (arcsec) of the round exponential defining GALDEPTH (as DR10).
GALDEPTH_R_E: float = 0.45
_PIX = PIXEL_SCALE_ARCSEC
_LENS_SUPERSAMPLE = 4
_BATCH_ELEMENTS = 3_000_000  # supersampled pixels per rendering batch
_E_NORM_FLOOR = 1e-6


def psf_kernel(fwhm_arcsec: float) -> np.ndarray:
    """Moffat (beta 3.5) PSF kernel at 0.262"/px, side ``2 ceil(4 FWHM / 0.262) + 1``, sum 1."""
    size = 2 * math.ceil(4.0 * fwhm_arcsec / _PIX) + 1
    return moffat_psf_kernel(fwhm_arcsec, _PIX, size, beta=MOFFAT_BETA)


def sigma_pix_from_depth(depth_mag: float, kernel: np.ndarray) -> float:
    """Per-pixel noise (nanomaggies) giving a 5-sigma PSF-weighted depth ``depth_mag`` (AB)."""
    sigma_ps = float(mag_to_nanomaggies(depth_mag)) / 5.0
    return float(sigma_ps * math.sqrt(float(np.sum(kernel**2))))


def invvar_map(cond: BandConditions, sigma_pix: float) -> np.ndarray:
    """float32 (3600, 3600) inverse-variance map (1/nanomaggy^2) of one band."""
    inv = np.full((BRICK_NPIX, BRICK_NPIX), 1.0 / sigma_pix**2, dtype=np.float32)
    if cond.edge is not None:
        axis, pos, side = cond.edge
        sl = slice(pos, None) if side > 0 else slice(0, pos)
        region = (slice(None), sl) if axis == "x" else (sl, slice(None))
        inv[region] *= np.float32((cond.nobs + 1) / cond.nobs)
    for axis, start, stop in cond.bad_strips:
        if axis == "x":
            inv[:, start:stop] = 0.0
        else:
            inv[start:stop, :] = 0.0
    return inv


@dataclass
class BandImage:
    """One band of a rendered brick.

    Attributes:
        band: band name.
        image: float32 (3600, 3600) nanomaggies / pixel (noise included).
        invvar: float32 (3600, 3600) 1 / nanomaggy^2 (0 on bad strips).
        psf_fwhm_arcsec: PSF FWHM (arcsec) of the band in this brick.
        psf_kernel: the PSF kernel (sum 1) used for rendering.
        sigma_pix: per-pixel noise (nanomaggies) where ``nobs`` exposures overlap.
    """

    band: str
    image: np.ndarray
    invvar: np.ndarray
    psf_fwhm_arcsec: float
    psf_kernel: np.ndarray
    sigma_pix: float

    @property
    def psfsize(self) -> np.ndarray:
        """float32 (3600, 3600) map of the PSF FWHM (arcsec); constant over the brick."""
        return np.full((BRICK_NPIX, BRICK_NPIX), self.psf_fwhm_arcsec, dtype=np.float32)

    @property
    def n_eff(self) -> float:
        """Effective number of pixels of the PSF, ``1 / sum(psf^2)``."""
        return float(1.0 / np.sum(self.psf_kernel**2))


@dataclass
class BrickImages:
    """A rendered brick.

    Attributes:
        bands: band -> :class:`BandImage`.
        photometry: per object (``objid`` order of ``sky.objects``): ``flux_ivar_<b>``,
            ``nobs_<b>``, ``psfdepth_<b>``, ``galdepth_<b>``, ``psfsize_<b>``,
            ``flux_ivar_w1``, ``fiberflux_z``, ``stamp_npix`` (stamp side, pixels).
        lens_arcs: per lens (``lens_id``): ``arc_flux_<b>`` (lensed flux in the stamp,
            nanomaggies), ``arc_mag_<b>``, ``arc_snr_<b>``, ``arc_snr_max``, ``arc_visible``,
            ``arc_residual_snr_<b>``, ``arc_residual_snr`` (S/N in the deflector-subtracted
            residual, best band: what grades a mock lens), ``magnification`` (r-band lensed /
            intrinsic source flux), ``stamp_center_x/y`` (brick pixel of the arc stamp's
            centre), ``psf_fwhm_<b>`` and ``gain_<b>`` (e-/nanomaggy of the shot noise).
        arc_stamps: ``(N, B, 65, 65)`` float32 noiseless arcs of the lenses (lens order).
    """

    bands: dict[str, BandImage]
    photometry: pd.DataFrame
    lens_arcs: pd.DataFrame
    arc_stamps: np.ndarray


# ----------------------------------------------------------------------------------------
# stamp geometry
# ----------------------------------------------------------------------------------------
def _axis_ratio(e1: np.ndarray, e2: np.ndarray) -> np.ndarray:
    e = np.minimum(np.hypot(e1, e2), 0.9999)
    return (1.0 - e) / (1.0 + e)


def _stamp_sizes(
    objects: pd.DataFrame, bands: tuple[str, ...], fwhm_max: float
) -> tuple[np.ndarray, np.ndarray]:
    """(final, intrinsic) odd stamp sides (pixels) per object, snapped up to STAMP_SIZES.

    The intrinsic stamp holds the unconvolved model (the galaxy extent only); it is zero
    padded to the final stamp (extent + a brightness-dependent PSF radius) and convolved.
    """
    flux_max = np.max(np.stack([objects[f"flux_{b}"].to_numpy() for b in bands]), axis=0)
    psf_mult = np.select(
        [flux_max > 2500.0, flux_max > 250.0, flux_max > 25.0, flux_max > 2.5],
        [12.0, 7.0, 4.0, 3.0],
        default=2.0,
    )
    n1 = objects["c1_n"].to_numpy()
    re1 = objects["c1_re"].to_numpy() / np.sqrt(
        _axis_ratio(objects["c1_e1"].to_numpy(), objects["c1_e2"].to_numpy())
    )
    ext1 = np.where(n1 > 2.0, 5.0, 3.5) * re1 + np.hypot(objects["c1_dx"], objects["c1_dy"])
    kind2 = objects["c2_kind"].to_numpy()
    q2 = _axis_ratio(objects["c2_e1"].to_numpy(), objects["c2_e2"].to_numpy())
    re2 = objects["c2_re"].to_numpy() / np.sqrt(q2)
    n2 = objects["c2_n"].to_numpy()
    ext2 = np.where(
        kind2 == "ring",
        re2 + 3.0 * n2,
        np.where(kind2 == "sersic", np.where(n2 > 2.0, 5.0, 3.5) * re2, 0.0),
    ) + np.hypot(objects["c2_dx"], objects["c2_dy"])
    extent = np.maximum(ext1, ext2)
    extent = np.where(objects["morph"].to_numpy() == "psf", 0.0, extent)
    sizes = np.asarray(STAMP_SIZES)

    def snap(ext: np.ndarray) -> np.ndarray:
        side = 2 * np.ceil(ext / _PIX).astype(np.int64) + 1
        return sizes[np.minimum(np.searchsorted(sizes, side), sizes.size - 1)]

    final = snap(extent + psf_mult * fwhm_max)
    intrinsic = np.minimum(snap(extent + _PIX), final)
    return final, intrinsic


def _object_supersample(objects: pd.DataFrame) -> np.ndarray:
    """Sub-pixels per pixel for the intrinsic model: 4 below 0.5 px half-light radius, 3
    below 3 px, 2 below 8 px, else 1 (the PSF is >= 4 px wide and stamps are renormalised
    to the catalog flux, so supersampling only shapes the light inside the central pixels)."""
    re_pix = objects["c1_re"].to_numpy() / _PIX
    kind2 = objects["c2_kind"].to_numpy()
    re2 = np.where(kind2 == "ring", objects["c2_n"].to_numpy(), objects["c2_re"].to_numpy())
    re_pix = np.where(kind2 == "none", re_pix, np.minimum(re_pix, re2 / _PIX))
    return np.select([re_pix < 0.5, re_pix < 3.0, re_pix < 8.0], [4, 3, 2], default=1)


class _StampConvolver:
    """Batched same-size PSF convolution of odd stamps with cached kernel transforms.

    Gives the same result as :func:`~stronglens_assets.science.lensing.profiles.convolve_fft`
    (zero-padded linear convolution, centred output) with a smaller transform: a circular
    convolution of size ``N >= S + K // 2`` only wraps light into rows/columns that are
    cropped away.
    """

    def __init__(self, kernel: np.ndarray) -> None:
        self.kernel = kernel
        self.half = kernel.shape[0] // 2
        self._cache: dict[int, np.ndarray] = {}

    def __call__(self, stamps: np.ndarray) -> np.ndarray:
        size = stamps.shape[-1]
        n = scipy.fft.next_fast_len(max(size + self.half, self.kernel.shape[0]), real=True)
        kf = self._cache.get(n)
        if kf is None:
            kf = self._cache[n] = scipy.fft.rfft2(self.kernel, s=(n, n))
        full = scipy.fft.irfft2(scipy.fft.rfft2(stamps, s=(n, n)) * kf, s=(n, n))
        c = self.half
        return full[..., c : c + size, c : c + size]


# ----------------------------------------------------------------------------------------
# batched unit-flux component images (B, S, S), before PSF
# ----------------------------------------------------------------------------------------
def _elliptical(
    x: np.ndarray, y: np.ndarray, e1: np.ndarray, e2: np.ndarray, cx: np.ndarray, cy: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Product-average elliptical coordinates (lenstronomy's e1/e2 linear map), arcsec."""
    dx, dy = x - cx, y - cy
    norm = np.sqrt(np.maximum(np.abs(1.0 - e1 * e1 - e2 * e2), _E_NORM_FLOOR))
    return ((1.0 - e1) * dx - e2 * dy) / norm, (-e2 * dx + (1.0 + e1) * dy) / norm


def _unit(img: np.ndarray) -> np.ndarray:
    total = img.sum(axis=(-2, -1), keepdims=True)
    return img / np.where(total > 0, total, 1.0)


def _col(df: pd.DataFrame, name: str) -> np.ndarray:
    return df[name].to_numpy(np.float64)[:, None, None]


def _sersic_unit(
    df: pd.DataFrame, prefix: str, cx: np.ndarray, cy: np.ndarray, size: int, ss: int
) -> np.ndarray:
    img = render_sersic_image(
        1.0,
        np.maximum(_col(df, f"{prefix}_re"), 1e-3),
        _col(df, f"{prefix}_n"),
        _col(df, f"{prefix}_e1"),
        _col(df, f"{prefix}_e2"),
        cx + _col(df, f"{prefix}_dx"),
        cy + _col(df, f"{prefix}_dy"),
        (size, size),
        _PIX,
        ss,
    )
    return _unit(img)


def _ring_unit(df: pd.DataFrame, cx: np.ndarray, cy: np.ndarray, size: int, ss: int) -> np.ndarray:
    x, y = pixel_grid((size, size), _PIX, ss)
    xe, ye = _elliptical(
        x, y, _col(df, "c2_e1"), _col(df, "c2_e2"), cx + _col(df, "c2_dx"), cy + _col(df, "c2_dy")
    )
    r = np.hypot(xe, ye)
    sb = np.exp(-0.5 * ((r - _col(df, "c2_re")) / _col(df, "c2_n")) ** 2)
    return _unit(bin_supersampled(sb, ss))


def _spiral_unit(
    df: pd.DataFrame, cx: np.ndarray, cy: np.ndarray, size: int, ss: int
) -> np.ndarray:
    """Exponential disk times a 2-arm logarithmic-spiral modulation (smooth in the centre)."""
    x, y = pixel_grid((size, size), _PIX, ss)
    re = _col(df, "c1_re")
    xe, ye = _elliptical(
        x, y, _col(df, "c1_e1"), _col(df, "c1_e2"), cx + _col(df, "c1_dx"), cy + _col(df, "c1_dy")
    )
    r = np.maximum(np.hypot(xe, ye), 1e-4)
    theta = np.arctan2(ye, xe)
    disk = np.exp(-1.678 * r / re)
    wind = 2.0 * np.log(r / re) / np.tan(np.deg2rad(_col(df, "arm_pitch_deg")))
    amp = _col(df, "arm_amp") * (1.0 - np.exp(-((r / (0.5 * re)) ** 2)))
    sb = disk * (1.0 + amp * np.cos(2.0 * theta - wind - _col(df, "arm_phase")))
    return _unit(bin_supersampled(sb, ss))


def _moffat_stamps(fwhm: float, cx: np.ndarray, cy: np.ndarray, size: int) -> np.ndarray:
    """Pixel-integrated (oversampled 3x) Moffat stamps centred at (cx, cy) arcsec, sum 1."""
    alpha = fwhm / (2.0 * math.sqrt(2.0 ** (1.0 / MOFFAT_BETA) - 1.0))
    x, y = pixel_grid((size, size), _PIX, 3)
    r2 = (x - cx) ** 2 + (y - cy) ** 2
    return _unit(bin_supersampled((1.0 + r2 / alpha**2) ** (-MOFFAT_BETA), 3))


# ----------------------------------------------------------------------------------------
# adding stamps to the brick
# ----------------------------------------------------------------------------------------
def _stamp_slices(
    ix: int, iy: int, size: int
) -> tuple[tuple[slice, slice], tuple[slice, slice]] | None:
    """(image slices, stamp slices) of a stamp centred at pixel (ix, iy), clipped to the image."""
    h = size // 2
    x0, y0 = ix - h, iy - h
    x1, y1 = x0 + size, y0 + size
    cx0, cy0 = max(x0, 0), max(y0, 0)
    cx1, cy1 = min(x1, BRICK_NPIX), min(y1, BRICK_NPIX)
    if cx0 >= cx1 or cy0 >= cy1:
        return None
    return (
        (slice(cy0, cy1), slice(cx0, cx1)),
        (slice(cy0 - y0, cy1 - y0), slice(cx0 - x0, cx1 - x0)),
    )


def _add_stamps(image: np.ndarray, stamps: np.ndarray, ix: np.ndarray, iy: np.ndarray) -> None:
    size = stamps.shape[-1]
    for k in range(stamps.shape[0]):
        sl = _stamp_slices(int(ix[k]), int(iy[k]), size)
        if sl is not None:
            image[sl[0]] += stamps[k][sl[1]].astype(np.float32)


# ----------------------------------------------------------------------------------------
# objects
# ----------------------------------------------------------------------------------------
def _pad_to(stamps: np.ndarray, size: int) -> np.ndarray:
    """Zero-pad (B, s, s) stamps symmetrically to (B, size, size) (s, size odd)."""
    s = stamps.shape[-1]
    if s == size:
        return stamps
    p = (size - s) // 2
    return np.pad(stamps, ((0, 0), (p, p), (p, p)))


def _render_objects(
    objects: pd.DataFrame,
    bands: tuple[str, ...],
    kernels: dict[str, np.ndarray],
    fwhm: dict[str, float],
    images: dict[str, np.ndarray],
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Add all objects to ``images``; return per-band ``sum(p^2)`` per object and stamp sides.

    Objects are grouped by (morphology, final stamp, intrinsic stamp, supersampling) and
    rendered in vectorised batches; only the loop adding stamps to the image is per object.
    """
    n = len(objects)
    sumsq = {b: np.zeros(n) for b in bands}
    final, intrinsic = _stamp_sizes(objects, bands, max(fwhm.values()))
    ssamp = _object_supersample(objects)
    ix = np.rint(objects["x"].to_numpy()).astype(np.int64)
    iy = np.rint(objects["y"].to_numpy()).astype(np.int64)
    offx = (objects["x"].to_numpy() - ix) * _PIX
    offy = (objects["y"].to_numpy() - iy) * _PIX
    morph = objects["morph"].to_numpy()
    convolve = {b: _StampConvolver(kernels[b]) for b in bands}
    keys = pd.DataFrame({"m": morph, "f": final, "i": intrinsic, "s": ssamp})
    for (kind, size, isize, ss), group in keys.groupby(["m", "f", "i", "s"], sort=True):
        rows = group.index.to_numpy()
        eval_size, ss = (size, 3) if kind == "psf" else (int(isize), int(ss))
        per_batch = max(1, _BATCH_ELEMENTS // (eval_size * eval_size * ss * ss))
        for start in range(0, rows.size, per_batch):
            idx = rows[start : start + per_batch]
            df = objects.iloc[idx]
            cx = offx[idx][:, None, None]
            cy = offy[idx][:, None, None]
            comp1 = comp2 = None
            if kind in ("sersic", "ring", "merger"):
                comp1 = _sersic_unit(df, "c1", cx, cy, eval_size, ss)
            if kind == "ring":
                comp2 = _ring_unit(df, cx, cy, eval_size, ss)
            elif kind == "spiral":
                comp1 = _spiral_unit(df, cx, cy, eval_size, ss)
                comp2 = _sersic_unit(df, "c2", cx, cy, eval_size, ss)
            elif kind == "merger":
                comp2 = _sersic_unit(df, "c2", cx, cy, eval_size, ss)
            for b in bands:
                if kind == "psf":
                    p = _moffat_stamps(fwhm[b], cx, cy, int(size))
                else:
                    if comp1 is None:
                        raise ValueError(f"no light profile for morphology {kind!r}")
                    model = comp1
                    if comp2 is not None:
                        f2 = _col(df, f"frac2_{b}")
                        model = (1.0 - f2) * comp1 + f2 * comp2
                    p = _unit(convolve[b](_pad_to(model, int(size))))
                sumsq[b][idx] = np.sum(p * p, axis=(1, 2))
                flux = df[f"flux_{b}"].to_numpy(np.float64)[:, None, None]
                _add_stamps(images[b], flux * p, ix[idx], iy[idx])
    return sumsq, final


# ----------------------------------------------------------------------------------------
# lensed arcs
# ----------------------------------------------------------------------------------------
def _residual_snr(arc: np.ndarray, invvar: np.ndarray, light: np.ndarray, frac: float) -> float:
    """S/N of an arc in the deflector-subtracted residual (see module docstring)."""
    weight = invvar / (1.0 + invvar * (frac * light) ** 2)
    return math.sqrt(float(np.sum(arc * arc * weight)))


def lens_stamp_centers(lenses: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Brick pixel ``(ix, iy)`` of each lens's arc stamp centre: ``floor(x + 0.5)``, the
    cutouts' convention, so a lens's cutout and its arc stamp share their centre pixel."""
    ix = np.floor(lenses["x"].to_numpy(np.float64) + 0.5).astype(np.int64)
    iy = np.floor(lenses["y"].to_numpy(np.float64) + 0.5).astype(np.int64)
    return ix, iy


def render_lens_arcs(
    lenses: pd.DataFrame, bands: tuple[str, ...], kernels: dict[str, np.ndarray]
) -> np.ndarray:
    """Noiseless PSF-convolved arcs ``(N, B, 65, 65)`` float32 (nanomaggies / pixel) on the
    stamps of :func:`lens_stamp_centers` (lens centre at its sub-pixel offset), from the truth
    columns (:func:`~stronglens_assets.mock_survey.sky.lens_geometry`, ``source_parameters``)."""
    ix, iy = lens_stamp_centers(lenses)
    offx = (lenses["x"].to_numpy(np.float64) - ix) * _PIX
    offy = (lenses["y"].to_numpy(np.float64) - iy) * _PIX
    unit = lensed_unit_images(
        lens_geometry(lenses, offx, offy),
        source_parameters(lenses),
        size=LENS_STAMP_NPIX,
        pixel_scale=_PIX,
        supersample=_LENS_SUPERSAMPLE,
    )
    flux = np.stack([lenses[f"src_flux_{b}"].to_numpy(np.float64) for b in bands], axis=1)
    return convolve_bands(unit, flux, [kernels[b] for b in bands]).astype(np.float32)


def _render_arcs(
    lenses: pd.DataFrame,
    bands: tuple[str, ...],
    kernels: dict[str, np.ndarray],
    images: dict[str, np.ndarray],
    invvars: dict[str, np.ndarray],
    residual_fraction: float = 0.0,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Add the lensed arcs to ``images``; return the per-lens arc photometry and S/N, and the
    noiseless arc stamps (:func:`render_lens_arcs`).

    ``images`` must hold the noiseless light of the objects (deflectors and neighbours) and
    no arcs yet: it is the light a grader has to subtract (``residual_fraction``).
    """
    n = len(lenses)
    out: dict[str, np.ndarray] = {"lens_id": lenses["lens_id"].to_numpy()}
    size = LENS_STAMP_NPIX
    arcs = render_lens_arcs(lenses, bands, kernels)
    ix, iy = lens_stamp_centers(lenses)
    for j, b in enumerate(bands):
        out[f"arc_flux_{b}"] = arcs[:, j].sum(axis=(1, 2), dtype=np.float64)
        out[f"arc_snr_{b}"] = np.zeros(n)
        out[f"arc_residual_snr_{b}"] = np.zeros(n)
        for k in range(n):
            sl = _stamp_slices(int(ix[k]), int(iy[k]), size)
            if sl is None:
                continue
            a = arcs[k, j][sl[1]].astype(np.float64)
            inv = invvars[b][sl[0]]
            out[f"arc_snr_{b}"][k] = math.sqrt(float(np.sum(a * a * inv)))
            out[f"arc_residual_snr_{b}"][k] = _residual_snr(
                a, inv, images[b][sl[0]], residual_fraction
            )
    for j, b in enumerate(bands):
        _add_stamps(images[b], arcs[:, j], ix, iy)
    for b in bands:
        out[f"arc_mag_{b}"] = nanomaggies_to_mag(out[f"arc_flux_{b}"])
    snr = np.stack([out[f"arc_snr_{b}"] for b in bands], axis=1) if n else np.zeros((0, 1))
    out["arc_snr_max"] = snr.max(axis=1) if n else np.zeros(0)
    out["arc_visible"] = out["arc_snr_max"] >= ARC_SNR_VISIBLE
    res = np.stack([out[f"arc_residual_snr_{b}"] for b in bands], 1) if n else np.zeros((0, 1))
    out["arc_residual_snr"] = res.max(axis=1) if n else np.zeros(0)
    src_r = lenses["src_flux_r"].to_numpy() if n else np.zeros(0)
    out["magnification"] = out["arc_flux_r"] / np.where(src_r > 0, src_r, 1.0)
    out["stamp_center_x"] = ix
    out["stamp_center_y"] = iy
    return pd.DataFrame(out), arcs


# ----------------------------------------------------------------------------------------
# public API
# ----------------------------------------------------------------------------------------
def _add_noise(
    image: np.ndarray,
    cond: BandConditions,
    sigma_pix: float,
    rng: np.random.Generator,
    gain: float,
    shot_rng: np.random.Generator,
) -> None:
    """Add shot noise of the light (Gaussian, variance ``max(light, 0) / gain``) and sky noise
    matching :func:`invvar_map` in place; zero the bad strips."""
    shot = shot_rng.standard_normal((BRICK_NPIX, BRICK_NPIX), dtype=np.float32)
    shot *= np.sqrt(np.maximum(image, 0.0) / np.float32(gain))
    noise = rng.standard_normal((BRICK_NPIX, BRICK_NPIX), dtype=np.float32)
    noise *= np.float32(sigma_pix)
    if cond.edge is not None:
        axis, pos, side = cond.edge
        sl = slice(pos, None) if side > 0 else slice(0, pos)
        region = (slice(None), sl) if axis == "x" else (sl, slice(None))
        noise[region] *= np.float32(math.sqrt(cond.nobs / (cond.nobs + 1)))
    image += noise
    image += shot
    for axis, start, stop in cond.bad_strips:
        if axis == "x":
            image[:, start:stop] = 0.0
        else:
            image[start:stop, :] = 0.0


def _galdepth_sumsq(kernel: np.ndarray) -> float:
    size = 2 * (kernel.shape[0] // 2) + 31
    gal = render_sersic_image(1.0, GALDEPTH_R_E, 1.0, 0.0, 0.0, 0.0, 0.0, (size, size), _PIX, 5)
    g = _unit(convolve_fft(gal, kernel))
    return float(np.sum(g * g))


def render_brick(config: DemoSkyConfig, sky: SkyModel) -> BrickImages:
    """Render every band of a brick: image (with noise), invvar, PSF, per-object photometry.

    Deterministic: the noise of band ``b`` comes from child stream
    ``NOISE_STREAM_OFFSET + index(b)`` of ``default_rng([seed, brickid])``.
    """
    bands = sky.bands
    objects = sky.objects
    streams = rng_streams(config, sky.brick.brickid)
    kernels = {b: psf_kernel(sky.conditions[b].psf_fwhm_arcsec) for b in bands}
    fwhm = {b: sky.conditions[b].psf_fwhm_arcsec for b in bands}
    sigma = {b: sigma_pix_from_depth(sky.conditions[b].psf_depth_mag, kernels[b]) for b in bands}
    invvars = {b: invvar_map(sky.conditions[b], sigma[b]) for b in bands}
    images = {b: np.zeros((BRICK_NPIX, BRICK_NPIX), dtype=np.float32) for b in bands}

    gains = {
        b: float(
            sky_limited_gain(
                sky_nanomaggies_per_pixel(config.bands[b].sky_mag_arcsec2, _PIX), sigma[b] ** 2
            )
        )
        for b in bands
    }

    sumsq, sizes = _render_objects(objects, bands, kernels, fwhm, images)
    arcs, arc_stamps = _render_arcs(
        sky.lenses, bands, kernels, images, invvars, config.lenses.grading_residual_fraction
    )
    for b in bands:
        arcs[f"psf_fwhm_{b}"] = fwhm[b]
        arcs[f"gain_{b}"] = gains[b]

    for b in bands:
        _add_noise(
            images[b],
            sky.conditions[b],
            sigma[b],
            streams[NOISE_STREAM_OFFSET + ALLOWED_BANDS.index(b)],
            gains[b],
            streams[SHOT_NOISE_STREAM_OFFSET + ALLOWED_BANDS.index(b)],
        )

    # per-object catalog quantities
    x = objects["x"].to_numpy()
    y = objects["y"].to_numpy()
    ix = np.clip(np.rint(x).astype(np.int64), 0, BRICK_NPIX - 1)
    iy = np.clip(np.rint(y).astype(np.int64), 0, BRICK_NPIX - 1)
    phot: dict[str, np.ndarray] = {"objid": objects["objid"].to_numpy()}
    for b in bands:
        inv_c = invvars[b][iy, ix].astype(np.float64)
        nobs = sky.conditions[b].nobs_at(x, y)
        inv_c = np.where(nobs > 0, inv_c, 0.0)
        phot[f"flux_ivar_{b}"] = inv_c * sumsq[b]
        phot[f"nobs_{b}"] = nobs
        phot[f"psfdepth_{b}"] = inv_c * float(np.sum(kernels[b] ** 2))
        phot[f"galdepth_{b}"] = inv_c * _galdepth_sumsq(kernels[b])
        phot[f"psfsize_{b}"] = np.full(len(objects), fwhm[b])
    sigma_w1 = float(mag_to_nanomaggies(config.w1_depth_mag)) / 5.0
    shape_r = objects["shape_r"].to_numpy()
    phot["flux_ivar_w1"] = 1.0 / sigma_w1**2 / (1.0 + (shape_r / 3.0) ** 2)
    half_light = np.where(objects["morph"].to_numpy() == "psf", 0.0, shape_r)
    sig2 = (1.0 / 2.3548) ** 2 + (half_light / 1.1774) ** 2
    phot["fiberflux_z"] = objects["flux_z"].to_numpy() * (1.0 - np.exp(-(0.75**2) / (2.0 * sig2)))
    phot["stamp_npix"] = sizes

    band_images = {
        b: BandImage(b, images[b], invvars[b], fwhm[b], kernels[b], sigma[b]) for b in bands
    }
    return BrickImages(
        bands=band_images, photometry=pd.DataFrame(phot), lens_arcs=arcs, arc_stamps=arc_stamps
    )
