"""Truth-based twins of simulated lenses: the same lens and host with another arc (issue 20).

Possible only where the truth of every lens is known (the embedded default's mock lenses): a
cutout ``I = host + noise + arc`` (+ the arc's shot noise) and the lens's noiseless arc ``A``
give the **arc-removed** cutout ``I - A = host + noise`` (the arc's shot-noise realisation
stays: it cannot be separated from the rest of the noise). A **twin** adds another arc ``A'``
of the same lens (SIE + shear, same centre) to it, with ``A'`` rescaled per band so its
lensed flux in the arc stamp equals the original's: same lensed magnitude and colour, so
brightness cannot tell twins from originals, and with shot noise of ``A'`` at the survey gain
as the original has. The twins differ only in the source's morphology:

* ``same_model``: a new source of the mock's own model (same structure fraction);
* ``sersic``: the injection engine's Sersic of a named prior (``paper_2026``), no structure;
* dose-response: the mock's model at another ``structure_fraction`` (same draws otherwise).

Frames: a cutout ``(B, H, W)`` and an arc stamp ``(B, S, S)`` (``H, W, S`` odd) share their
centre pixel (the lens's pixel; the mock survey's arc stamps follow the cutouts' pixel
convention). Fluxes in nanomaggies per pixel, gains in e-/nanomaggy.
"""

from __future__ import annotations

import numpy as np

from stronglens_assets.science.lensing.priors import InjectionPriors, sample_injections
from stronglens_assets.science.lensing.structured_source import (
    SourceModel,
    SourceParameters,
    convolve_bands,
    draw_sources,
)

__all__ = [
    "add_arcs",
    "embed_stamps",
    "lensed_flux",
    "matched_twin_arcs",
    "remove_arcs",
    "sersic_twin_sources",
    "twin_sources",
]


def embed_stamps(stamps: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``(N, B, S, S)`` stamps placed on ``(N, B, H, W)`` zeros, centre on centre (float64)."""
    s = stamps.shape[-1]
    h, w = shape
    if s % 2 == 0 or h % 2 == 0 or w % 2 == 0 or s > min(h, w):
        raise ValueError(f"need odd sizes with the stamp ({s}) inside the cutout ({h} x {w})")
    out = np.zeros((*stamps.shape[:2], h, w))
    r0, c0 = (h - s) // 2, (w - s) // 2
    out[..., r0 : r0 + s, c0 : c0 + s] = stamps
    return out


def remove_arcs(cutouts: np.ndarray, arcs: np.ndarray) -> np.ndarray:
    """Arc-removed cutouts ``cutouts - arcs`` (float32; stamps centred on the cutouts).

    Args:
        cutouts: ``(N, B, H, W)`` images holding the arcs (nanomaggies / pixel).
        arcs: ``(N, B, S, S)`` the noiseless arcs in them.
    """
    if cutouts.ndim != 4 or arcs.ndim != 4 or arcs.shape[:2] != cutouts.shape[:2]:
        raise ValueError(
            f"cutouts (N, B, H, W) and arcs (N, B, S, S) must agree in N and B, got "
            f"{cutouts.shape} and {arcs.shape}"
        )
    return (cutouts - embed_stamps(arcs, cutouts.shape[-2:])).astype(np.float32)


def lensed_flux(arcs: np.ndarray) -> np.ndarray:
    """``(N, B)`` lensed flux of arc stamps (sum over pixels, nanomaggies, float64)."""
    return np.asarray(arcs).sum(axis=(-2, -1), dtype=np.float64)


def matched_twin_arcs(
    unit: np.ndarray, original_arcs: np.ndarray, kernels: list[np.ndarray]
) -> np.ndarray:
    """Twin arcs ``(N, B, S, S)`` with each band's lensed flux equal to the original's.

    ``unit`` ``(N, S, S)``: the twins' lensed unit-flux images before the PSF; each band is
    convolved with its PSF kernel, then scaled to ``lensed_flux(original_arcs)`` in that band
    (twins of an arc with no flux in a band have none there).
    """
    shaped = convolve_bands(unit, np.ones((unit.shape[0], len(kernels))), kernels)
    have = lensed_flux(shaped)
    want = lensed_flux(original_arcs)
    if have.shape != want.shape:
        raise ValueError(f"{len(kernels)} kernels for arcs with {want.shape[1]} bands")
    scale = np.where(have > 0, want / np.where(have > 0, have, 1.0), 0.0)
    return shaped * scale[:, :, None, None]


def add_arcs(
    background: np.ndarray, arcs: np.ndarray, gain: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """``background + arcs`` plus the arcs' shot noise (Gaussian, variance ``max(arc, 0) /
    gain``; ``gain`` ``(N, B)`` e-/nanomaggy), float32; arc stamps centred on the cutouts."""
    placed = embed_stamps(arcs, background.shape[-2:])
    g = np.asarray(gain, dtype=np.float64)[:, :, None, None]
    if not np.all(np.isfinite(g) & (g > 0)):
        raise ValueError("gain must be finite and > 0 (e-/nanomaggy)")
    noise = rng.standard_normal(placed.shape) * np.sqrt(np.maximum(placed, 0.0) / g)
    return (background + placed + noise).astype(np.float32)


def twin_sources(
    model: SourceModel, theta_e: np.ndarray, rng: np.random.Generator
) -> SourceParameters:
    """New sources of ``model`` for lenses of Einstein radius ``theta_e`` (arcsec).

    For a dose-response, call it with the same ``rng`` state for every structure fraction:
    positions, shapes and knot layouts repeat and only the knots' flux share changes."""
    return draw_sources(model, theta_e, rng)


def sersic_twin_sources(
    priors: InjectionPriors, prior: str, theta_e: np.ndarray, rng: np.random.Generator
) -> SourceParameters:
    """Sources of the injection engine's named ``prior`` (a plain Sersic, no knots) for lenses
    of Einstein radius ``theta_e``: n, R_e (circularised to ``r_eff``), q, angle and the offset
    from the lens centre (beta_frac x theta_E) as :func:`~stronglens_assets.science.lensing.
    priors.sample_injections` draws them; the lens itself is the twin's, not the prior's."""
    draws = sample_injections(priors, len(theta_e), rng, prior=prior, theta_e=theta_e,
                              source_mag=(20.0, 20.0))  # fmt: skip
    n = len(theta_e)
    lens_x = draws.lens_center_x if draws.lens_center_x is not None else np.zeros(n)
    lens_y = draws.lens_center_y if draws.lens_center_y is not None else np.zeros(n)
    empty = np.zeros((n, 0))
    return SourceParameters(
        source_x=draws.source_x - lens_x,
        source_y=draws.source_y - lens_y,
        n_sersic=draws.n_sersic,
        r_e=draws.r_e if draws.r_e is not None else draws.r_eff,
        r_eff=draws.r_eff,
        axis_ratio=draws.axis_ratio,
        position_angle=draws.position_angle,
        structure_fraction=np.zeros(n),
        knot_x=empty,
        knot_y=empty,
        knot_sigma=empty,
        knot_fraction=empty,
    )
