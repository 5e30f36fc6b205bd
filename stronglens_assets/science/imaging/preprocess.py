"""Cutout preprocessing: the ONE function between a DR10 cutout and the networks.

Training, validation scoring, the evaluation assets and the D06 injection experiments all call
:func:`preprocess`, so an injected cutout is seen exactly as a training cutout.

Convention (per cutout, per band, no information shared between cutouts or bands):

1. centre crop: ``crop x crop`` pixels around the cutout centre (pixel ``(size - 1) / 2`` of
   an odd cutout lands on pixel ``crop // 2`` of the crop; 64 px = 16.8" at 0.262"/px);
2. non-finite pixels are set to 0 nanomaggies;
3. robust sky statistics over the crop's outer region, pixels at radius
   ``>= STAT_RADIUS_PX`` (20 px = 5.2") from the centre: median ``m`` and
   ``s = 1.4826 * MAD`` (the Gaussian-equivalent sigma), floored at ``MIN_SCALE``;
4. ``(x - m) / s`` clipped to ``[-clip, clip]`` (default 50: the sky sits near N(0, 1), lens
   galaxy cores keep their profile up to 50 sigma).

Input ``(N, 3, H, W)`` float nanomaggies (``H, W >= crop``; DR10 cutouts are 101 x 101),
output ``(N, 3, crop, crop)`` float32. NumPy or CuPy arrays (the array module of the input is
used, so D06 runs it on the GPU unchanged).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from stronglens_assets.science.core.arrays import array_module

DEFAULT_CROP = 64
STAT_RADIUS_PX = 20.0
DEFAULT_CLIP = 50.0
MIN_SCALE = 1e-6
#: 1 / Phi^-1(3/4): MAD -> Gaussian sigma.
MAD_TO_SIGMA = 1.482602218505602


def radius_grid(size: int) -> np.ndarray:
    """Distance in pixels of each pixel of a ``size x size`` stamp from its centre.

    The centre is pixel ``size // 2`` in both axes (the crop centre of :func:`centre_crop`).
    """
    coords = np.arange(size, dtype=np.float64) - size // 2
    return np.hypot(coords[None, :], coords[:, None])


def centre_crop(cutouts: Any, crop: int = DEFAULT_CROP) -> Any:
    """The central ``crop x crop`` pixels of ``(..., H, W)`` stamps (a view, no copy)."""
    height, width = cutouts.shape[-2:]
    if crop > height or crop > width or crop < 1:
        raise ValueError(f"cannot crop {crop} x {crop} pixels from {height} x {width} cutouts")
    top = height // 2 - crop // 2
    left = width // 2 - crop // 2
    return cutouts[..., top : top + crop, left : left + crop]


def preprocess(
    cutouts: Any,
    crop: int = DEFAULT_CROP,
    *,
    clip: float = DEFAULT_CLIP,
    stat_radius: float = STAT_RADIUS_PX,
) -> Any:
    """Centre-crop and normalise cutouts (see the module docstring for the convention).

    Args:
        cutouts: ``(N, B, H, W)`` (or one ``(B, H, W)``) float nanomaggies.
        crop: output size in pixels.
        clip: normalised values are clipped to ``[-clip, clip]``.
        stat_radius: sky statistics use crop pixels at least this far (px) from the centre.

    Returns:
        ``(N, B, crop, crop)`` float32 (``(B, crop, crop)`` for a single cutout).
    """
    xp = array_module(cutouts)
    single = cutouts.ndim == 3
    if single:
        cutouts = cutouts[None]
    if cutouts.ndim != 4:
        raise ValueError(f"expected (N, B, H, W) cutouts, got shape {tuple(cutouts.shape)}")
    ring = radius_grid(crop) >= stat_radius
    if not ring.any():
        raise ValueError(f"stat_radius {stat_radius} px leaves no pixel in a {crop} px crop")
    images = xp.asarray(centre_crop(cutouts, crop), dtype=xp.float32)
    images = xp.nan_to_num(images, nan=0.0, posinf=0.0, neginf=0.0)
    sky = images[..., xp.asarray(ring)]
    median = xp.median(sky, axis=-1)
    mad = xp.median(xp.abs(sky - median[..., None]), axis=-1)
    scale = xp.maximum(mad * MAD_TO_SIGMA, MIN_SCALE).astype(xp.float32)
    out = (images - median[..., None, None]) / scale[..., None, None]
    out = xp.clip(out, -clip, clip).astype(xp.float32, copy=False)
    return out[0] if single else out


def radial_mask(size: int, inner: float = 0.0, outer: float | None = None) -> np.ndarray:
    """``(size, size)`` float32 mask: 1 where ``inner <= r < outer`` (px from the centre).

    ``outer=None`` means no outer limit. Used by the annulus/core ablation: the annulus-only
    model sees ``inner = core radius``; the core-only model sees ``outer = core radius``.
    """
    radius = radius_grid(size)
    keep = radius >= inner
    if outer is not None:
        keep &= radius < outer
    return keep.astype(np.float32)
