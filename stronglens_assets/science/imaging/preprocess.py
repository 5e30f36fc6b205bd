"""Cutout preprocessing: the ONE function between a DR10 cutout and the networks.

Training, validation scoring, the evaluation assets and the D06 injection experiments all call
:func:`preprocess` with the model's settings (``ModelConfig.preprocessing``, recorded with its
checkpoint), so an injected cutout is seen exactly as a training cutout. Two methods, per
cutout and per band (no information shared between cutouts or bands); non-finite pixels are
set to 0 nanomaggies first:

``raw_robust`` (:class:`RawRobust`, the paper's): the full stamp (101 x 101 for DR10 cutouts,
no crop); median ``m`` and **raw** (unscaled) MAD ``s`` of the annulus
``annulus_inner_px <= r < annulus_outer_px`` (20 and 32 px: 5.2"-8.4") around the stamp's
centre; ``(x - m) / s`` clipped to ``[-clip, clip]`` (10; the paper's "clip20" experiment is
``clip = 20``).

``crop_robust`` (:class:`CropRobust`, the seeds' 64 x 64 crops): centre crop of ``crop``
pixels (pixel ``(size - 1) / 2`` of an odd cutout lands on pixel ``crop // 2``; 64 px = 16.8"
at 0.262"/px); median ``m`` and ``s = 1.4826 * MAD`` (the Gaussian-equivalent sigma) of the
crop's pixels at radius ``>= stat_radius_px`` (20 px) from its centre; ``(x - m) / s``
clipped to ``[-clip, clip]`` (50: the sky sits near N(0, 1), lens cores keep their profile).

``s`` is floored at ``MIN_SCALE``. Radii are in pixels from pixel ``size // 2``. Input
``(N, 3, H, W)`` float nanomaggies, output float32 ``(N, 3, P, P)`` with ``P`` =
:attr:`output_px`. NumPy or CuPy arrays (the array module of the input is used, so D06 runs
it on the GPU unchanged).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, TypeAdapter, ValidationError, model_validator

from stronglens_assets.config import ConfigError, StrictModel
from stronglens_assets.science.core.arrays import array_module

__all__ = [
    "DEFAULT_PREPROCESSING",
    "MAD_TO_SIGMA",
    "MIN_SCALE",
    "CropRobust",
    "Preprocessing",
    "RawRobust",
    "centre_crop",
    "preprocess",
    "preprocessing_from",
    "preprocessing_with",
    "radial_mask",
    "radius_grid",
]

MIN_SCALE = 1e-6
#: 1 / Phi^-1(3/4): MAD -> Gaussian sigma (``crop_robust`` only; ``raw_robust`` keeps the MAD).
MAD_TO_SIGMA = 1.482602218505602


def radius_grid(size: int) -> np.ndarray:
    """Distance in pixels of each pixel of a ``size x size`` stamp from its centre.

    The centre is pixel ``size // 2`` in both axes (the crop centre of :func:`centre_crop`).
    """
    coords = np.arange(size, dtype=np.float64) - size // 2
    return np.hypot(coords[None, :], coords[:, None])


def centre_crop(cutouts: Any, crop: int) -> Any:
    """The central ``crop x crop`` pixels of ``(..., H, W)`` stamps (a view, no copy)."""
    height, width = cutouts.shape[-2:]
    if crop > height or crop > width or crop < 1:
        raise ValueError(f"cannot crop {crop} x {crop} pixels from {height} x {width} cutouts")
    top = height // 2 - crop // 2
    left = width // 2 - crop // 2
    return cutouts[..., top : top + crop, left : left + crop]


class CropRobust(StrictModel):
    """``crop_robust``: centre crop, robust sigma of the crop's outer pixels (module doc)."""

    method: Literal["crop_robust"] = "crop_robust"
    crop: int = Field(default=64, ge=8)
    stat_radius_px: float = Field(default=20.0, gt=0)
    clip: float = Field(default=50.0, gt=0)

    @model_validator(mode="after")
    def _ring(self) -> CropRobust:
        if not (radius_grid(self.crop) >= self.stat_radius_px).any():
            raise ValueError(
                f"stat_radius_px {self.stat_radius_px} leaves no pixel in a {self.crop} px crop"
            )
        return self

    @property
    def output_px(self) -> int:
        """Side of the network input in pixels."""
        return self.crop


class RawRobust(StrictModel):
    """``raw_robust``: the full stamp, raw MAD of an annulus (the paper's; module doc)."""

    method: Literal["raw_robust"] = "raw_robust"
    annulus_inner_px: float = Field(default=20.0, ge=0)
    annulus_outer_px: float = Field(default=32.0, gt=0)
    clip: float = Field(default=10.0, gt=0)
    stamp_px: int = Field(default=101, ge=8)

    @model_validator(mode="after")
    def _annulus(self) -> RawRobust:
        if self.annulus_outer_px <= self.annulus_inner_px:
            raise ValueError("annulus_outer_px must be larger than annulus_inner_px")
        if self.annulus_outer_px > self.stamp_px // 2 + 1:
            raise ValueError(
                f"annulus_outer_px {self.annulus_outer_px} reaches beyond the "
                f"{self.stamp_px} px stamp"
            )
        return self

    @property
    def output_px(self) -> int:
        """Side of the network input in pixels (the stamp: no crop)."""
        return self.stamp_px


Preprocessing = Annotated[CropRobust | RawRobust, Field(discriminator="method")]
"""A model's preprocessing settings; ``method`` picks :class:`RawRobust` or :class:`CropRobust`."""

DEFAULT_PREPROCESSING = CropRobust()
_ADAPTER: TypeAdapter[CropRobust | RawRobust] = TypeAdapter(Preprocessing)


def preprocessing_from(value: Mapping[str, Any], source: str = "preprocessing") -> Any:
    """Settings from a mapping (a checkpoint's record, an override); :class:`ConfigError`
    names ``source`` and the field (an unknown ``method`` lists the known ones)."""
    try:
        return _ADAPTER.validate_python(dict(value))
    except ValidationError as exc:
        raise ConfigError(f"{source}: invalid preprocessing {dict(value)}: {exc}") from exc


def preprocessing_with(settings: Any, override: Mapping[str, Any], source: str) -> Any:
    """``settings`` with the fields of ``override`` replaced (validated; e.g. ``{"clip": 20}``,
    the paper's clip20 experiment). The method cannot change."""
    if "method" in override and override["method"] != settings.method:
        raise ConfigError(f"{source}: an override cannot change the method {settings.method!r}")
    return preprocessing_from({**settings.model_dump(), **override}, source)


def _region(settings: Any, cutouts: Any) -> tuple[Any, np.ndarray, float]:
    """(images to normalise, statistics mask, MAD factor) of ``settings``."""
    if isinstance(settings, CropRobust):
        ring = radius_grid(settings.crop) >= settings.stat_radius_px
        return centre_crop(cutouts, settings.crop), ring, MAD_TO_SIGMA
    height, width = cutouts.shape[-2:]
    if height != width or height != settings.stamp_px:
        raise ValueError(
            f"raw_robust expects {settings.stamp_px} x {settings.stamp_px} stamps (no crop), "
            f"got {height} x {width}"
        )
    radius = radius_grid(height)
    ring = (radius >= settings.annulus_inner_px) & (radius < settings.annulus_outer_px)
    return cutouts, ring, 1.0


def preprocess(cutouts: Any, settings: Any = DEFAULT_PREPROCESSING) -> Any:
    """Normalise cutouts by ``settings`` (:class:`RawRobust` or :class:`CropRobust`; see the
    module docstring for the conventions).

    Args:
        cutouts: ``(N, B, H, W)`` (or one ``(B, H, W)``) float nanomaggies.
        settings: the model's preprocessing (``ModelConfig.preprocessing``).

    Returns:
        ``(N, B, P, P)`` float32, ``P = settings.output_px`` (``(B, P, P)`` for one cutout).
    """
    if not isinstance(settings, CropRobust | RawRobust):
        raise TypeError(f"settings must be CropRobust or RawRobust, got {type(settings).__name__}")
    xp = array_module(cutouts)
    single = cutouts.ndim == 3
    if single:
        cutouts = cutouts[None]
    if cutouts.ndim != 4:
        raise ValueError(f"expected (N, B, H, W) cutouts, got shape {tuple(cutouts.shape)}")
    region, ring, factor = _region(settings, cutouts)
    images = xp.asarray(region, dtype=xp.float32)
    images = xp.nan_to_num(images, nan=0.0, posinf=0.0, neginf=0.0)
    sky = images[..., xp.asarray(ring)]
    median = xp.median(sky, axis=-1)
    mad = xp.median(xp.abs(sky - median[..., None]), axis=-1)
    scale = xp.maximum(mad * factor, MIN_SCALE).astype(xp.float32)
    out = (images - median[..., None, None]) / scale[..., None, None]
    out = xp.clip(out, -settings.clip, settings.clip).astype(xp.float32, copy=False)
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
