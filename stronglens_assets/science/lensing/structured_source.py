"""A lensed source with structure that survives the DR10 PSF, on the injection engine.

The embedded default's lensed sources (and the truth-based twins of issue 20) are the injection
engine's own source (:func:`~stronglens_assets.science.lensing.injection.render_arcs`: an
elliptical Sersic lensed by an SIE + external shear) plus ``K`` compact star-forming knots
(the engine's Gaussian clumps) that together carry ``structure_fraction`` of the source flux.
``structure_fraction = 0`` is the engine's plain Sersic, pixel for pixel.

Why the knots survive DR10's ~1.3-1.5" PSF: they are placed ``knot_radius_arcsec`` (default
0.15-0.5") from the source centre at evenly spread angles (+- a random jitter), so two knots are
~0.3-1.0" apart in the source plane, and tangential magnifications of 3-10 stretch that to
~1-10" along the arc: separate blobs along the arc rather than a clump blurred into a smooth
profile (clumps *inside* the Sersic, 0.03-0.1" from it, vanish at DR10 resolution).

Conventions: the stamp frame of the engine (arcsec, ``+x = +column``, ``+y = +row``, angles in
radians counter-clockwise from +x); source positions are offsets from the **lens centre** in
the source plane; ``r_e`` is the semi-major-axis half-light radius, the engine's circularised
``r_eff = r_e sqrt(q)``. All bands share one unlensed light distribution (one colour per
source, knots included: morphology is the only difference from the engine's Sersic), so a
lens's arcs are one unit-flux image times a per-band flux, convolved per band.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from stronglens_assets.science.lensing.injection import render_arcs
from stronglens_assets.science.lensing.profiles import convolve_fft

__all__ = [
    "LensGeometry",
    "SourceModel",
    "SourceParameters",
    "convolve_bands",
    "draw_sources",
    "lensed_unit_images",
]

Range = tuple[float, float]


@dataclass(frozen=True)
class SourceModel:
    """How to draw structured sources (ranges ``[low, high]``, uniform unless stated).

    Attributes:
        structure_fraction: fraction of the source flux in the knots, in [0, 1).
        knots: ``[min, max]`` knot count (integer uniform; <= 8, the engine's clump limit).
        knot_radius_arcsec: distance of each knot from the source centre (arcsec).
        knot_sigma_arcsec: Gaussian sigma of each knot (arcsec).
        n_sersic: Sersic index of the smooth component.
        r_e_arcsec: semi-major-axis half-light radius of the smooth component (arcsec).
        axis_ratio: source q = b/a; position angle U(0, pi).
        beta_frac: source offset from the lens centre / theta_E, uniform in annulus area.
    """

    structure_fraction: float
    knots: tuple[int, int] = (2, 5)
    knot_radius_arcsec: Range = (0.15, 0.5)
    knot_sigma_arcsec: Range = (0.04, 0.1)
    n_sersic: Range = (0.5, 2.0)
    r_e_arcsec: Range = (0.15, 0.5)
    axis_ratio: Range = (0.3, 1.0)
    beta_frac: Range = (0.1, 0.4)

    def __post_init__(self) -> None:
        if not 0.0 <= self.structure_fraction < 1.0:
            raise ValueError(f"structure_fraction must be in [0, 1), got {self.structure_fraction}")
        lo, hi = self.knots
        if not 1 <= lo <= hi <= 8:
            raise ValueError(f"knots must be [min, max], 1 <= min <= max <= 8; got {self.knots}")


@dataclass(frozen=True)
class LensGeometry:
    """SIE + external shear of ``N`` lenses (``(N,)`` arrays, engine conventions).

    ``center_x/center_y``: lens centre in the stamp frame (arcsec from the stamp centre).
    """

    theta_e: np.ndarray
    axis_ratio: np.ndarray
    position_angle: np.ndarray
    gamma1: np.ndarray
    gamma2: np.ndarray
    center_x: np.ndarray
    center_y: np.ndarray

    def take(self, index: np.ndarray) -> LensGeometry:
        return LensGeometry(**{k: np.asarray(v)[index] for k, v in self.__dict__.items()})


@dataclass(frozen=True)
class SourceParameters:
    """``N`` drawn sources: ``(N,)`` smooth-component arrays and ``(N, K)`` knot arrays.

    ``source_x/source_y``: offset of the source centre from the lens centre (arcsec, source
    plane); ``r_e`` semi-major, ``r_eff`` circularised (arcsec); ``knot_x/knot_y`` offsets from
    the source centre (arcsec); ``knot_fraction`` the knot's share of the total source flux (0
    for unused slots; each row sums to the lens's ``structure_fraction``).
    """

    source_x: np.ndarray
    source_y: np.ndarray
    n_sersic: np.ndarray
    r_e: np.ndarray
    r_eff: np.ndarray
    axis_ratio: np.ndarray
    position_angle: np.ndarray
    structure_fraction: np.ndarray
    knot_x: np.ndarray
    knot_y: np.ndarray
    knot_sigma: np.ndarray
    knot_fraction: np.ndarray

    def __len__(self) -> int:
        return len(self.source_x)


def draw_sources(
    model: SourceModel, theta_e: np.ndarray, rng: np.random.Generator
) -> SourceParameters:
    """Draw ``len(theta_e)`` sources of ``model`` around lenses of Einstein radius ``theta_e``.

    Draw order (fixed): beta_frac, offset angle, n, r_e, q, position angle, knot count, knot
    radii, knot angle jitter, knot phase, knot sigmas, knot flux weights. The same ``rng`` state
    gives the same sources for every ``structure_fraction`` (only the knot fluxes scale), so a
    dose-response can hold everything else fixed.
    """
    te = np.asarray(theta_e, dtype=np.float64)
    n = te.size
    lo_b, hi_b = model.beta_frac
    beta = te * np.sqrt(lo_b**2 + (hi_b**2 - lo_b**2) * rng.random(n))
    angle = rng.uniform(0.0, 2.0 * math.pi, n)
    n_sersic = rng.uniform(*model.n_sersic, n)
    r_e = rng.uniform(*model.r_e_arcsec, n)
    q = rng.uniform(*model.axis_ratio, n)
    phi = rng.uniform(0.0, math.pi, n)
    kmax = model.knots[1]
    count = rng.integers(model.knots[0], kmax + 1, n)
    radius = rng.uniform(*model.knot_radius_arcsec, (n, kmax))
    jitter = rng.uniform(-0.25, 0.25, (n, kmax))
    phase = rng.uniform(0.0, 2.0 * math.pi, n)
    sigma = rng.uniform(*model.knot_sigma_arcsec, (n, kmax))
    weights = rng.uniform(0.5, 1.0, (n, kmax))
    used = np.arange(kmax)[None, :] < count[:, None]
    slot = np.arange(kmax)[None, :] + jitter
    theta = phase[:, None] + 2.0 * math.pi * slot / count[:, None]
    weights = np.where(used, weights, 0.0)
    frac = model.structure_fraction * weights / weights.sum(axis=1, keepdims=True)
    return SourceParameters(
        source_x=beta * np.cos(angle),
        source_y=beta * np.sin(angle),
        n_sersic=n_sersic,
        r_e=r_e,
        r_eff=r_e * np.sqrt(q),
        axis_ratio=q,
        position_angle=phi,
        structure_fraction=np.full(n, model.structure_fraction),
        knot_x=np.where(used, radius * np.cos(theta), 0.0),
        knot_y=np.where(used, radius * np.sin(theta), 0.0),
        knot_sigma=np.where(used, sigma, 0.0),
        knot_fraction=frac,
    )


def lensed_unit_images(
    lens: LensGeometry,
    source: SourceParameters,
    *,
    size: int,
    pixel_scale: float = 0.262,
    supersample: int = 4,
) -> np.ndarray:
    """``(N, size, size)`` float32 lensed images of unit unlensed flux, before any PSF.

    Rendered by the injection engine (:func:`~stronglens_assets.science.lensing.injection.
    render_arcs`, ``psf_fwhm=None``); the knots are its clumps. A source with no knot flux is
    rendered without clumps: exactly the engine's Sersic.
    """
    n = len(source)
    out = np.zeros((n, size, size), dtype=np.float32)
    if n == 0:
        return out
    has_knots = source.knot_fraction.sum(axis=1) > 0
    for with_knots in (False, True):
        idx = np.flatnonzero(has_knots == with_knots)
        if idx.size == 0:
            continue
        clumps = {}
        if with_knots:
            clumps = {
                "clump_x": source.knot_x[idx],
                "clump_y": source.knot_y[idx],
                "clump_sigma": source.knot_sigma[idx],
                "clump_flux_fraction": source.knot_fraction[idx],
            }
        arcs = render_arcs(
            lens.theta_e[idx],
            lens.center_x[idx] + source.source_x[idx],
            lens.center_y[idx] + source.source_y[idx],
            source.r_eff[idx],
            source.n_sersic[idx],
            source.axis_ratio[idx],
            source.position_angle[idx],
            np.ones((idx.size, 1)),
            None,
            lens_axis_ratio=lens.axis_ratio[idx],
            lens_position_angle=lens.position_angle[idx],
            shear_gamma1=lens.gamma1[idx],
            shear_gamma2=lens.gamma2[idx],
            lens_center_x=lens.center_x[idx],
            lens_center_y=lens.center_y[idx],
            size=size,
            pixel_scale=pixel_scale,
            supersample=supersample,
            **clumps,
        )
        out[idx] = arcs[:, 0]
    return out


def convolve_bands(unit: np.ndarray, flux: np.ndarray, kernels: list[np.ndarray]) -> np.ndarray:
    """``(N, B, H, W)`` float64 arcs: ``flux[:, b] x (unit * kernels[b])`` (FFT, same size).

    Args:
        unit: ``(N, H, W)`` lensed unit-flux images (e.g. :func:`lensed_unit_images`).
        flux: ``(N, B)`` unlensed source flux per band (nanomaggies).
        kernels: one normalised PSF kernel per band.
    """
    unit64 = np.asarray(unit, dtype=np.float64)
    flux64 = np.asarray(flux, dtype=np.float64)
    out = np.empty((unit64.shape[0], len(kernels), *unit64.shape[1:]))
    for b, kernel in enumerate(kernels):
        out[:, b] = convolve_fft(unit64, kernel) * flux64[:, b, None, None]
    return out
