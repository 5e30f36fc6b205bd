"""Effective gain (e-/nanomaggy) of a sky-limited coadd pixel, from its sky and its noise.

In a sky-limited image the pixel noise is the sky's Poisson noise: ``S g`` electrons of sky
per pixel (``S`` nanomaggies, gain ``g`` e-/nanomaggy) have variance ``S g`` e-^2, i.e.
``S / g`` nmgy^2, which equals the pixel variance ``sigma^2 = 1 / invvar``. Hence

    ``g = S / sigma^2 = S invvar``  (e-/nanomaggy; ``S`` nmgy per pixel, invvar 1/nmgy^2),

the gain at which the Poisson option of the injection engine
(:func:`~stronglens_assets.science.lensing.injection.inject`) adds the noise a coadd of that
depth would give an arc's electrons. ``S`` comes from a sky surface brightness ``mu`` (AB mag /
arcsec^2): ``S = 10^(-0.4 (mu - 22.5)) pixscale^2``
(:func:`~stronglens_assets.science.core.units.sky_nanomaggies_per_pixel`). The mock survey
sets its shot noise with the same formula; the D06 per-host gain uses each host's median
invvar per band (:func:`host_gains`).

DR10's coadd invvar is sky-only (object light does not enter it), so it is the right
``sigma^2`` here; the per-host sky of real DR10 would come from the survey's CCD tables (not
shipped): :data:`DECAM_DARK_SKY_MAG_ARCSEC2` is a dark-time default.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["DECAM_DARK_SKY_MAG_ARCSEC2", "host_gains", "sky_limited_gain"]

#: Dark-time DECam sky surface brightness (AB mag / arcsec^2) per band: the default sky of the
#: mock survey and of the per-host gain on survey data without per-host sky.
DECAM_DARK_SKY_MAG_ARCSEC2: dict[str, float] = {"g": 22.0, "r": 21.0, "z": 19.9}


def sky_limited_gain(sky_per_pixel: npt.ArrayLike, pixel_variance: npt.ArrayLike) -> Any:
    """Gain ``g = S / sigma^2`` (e-/nanomaggy) of a sky-limited pixel: sky ``S`` (nanomaggies
    per pixel) and pixel variance ``sigma^2`` (nmgy^2), broadcast against each other (float64).

    Raises:
        ValueError: a sky that is not finite and > 0 (``sky_per_pixel``) or a variance that is
            not finite and > 0 (``pixel_variance``).
    """
    sky = np.asarray(sky_per_pixel, dtype=np.float64)
    var = np.asarray(pixel_variance, dtype=np.float64)
    if not np.all(np.isfinite(sky) & (sky > 0)):
        raise ValueError(f"sky_per_pixel must be finite and > 0 (nanomaggies), got {sky}")
    if not np.all(np.isfinite(var) & (var > 0)):
        raise ValueError(f"pixel_variance must be finite and > 0 (nmgy^2), got {var}")
    return sky / var


def host_gains(
    invvar: npt.ArrayLike,
    sky_per_pixel: npt.ArrayLike,
    *,
    bands: Sequence[str] | None = None,
    names: Sequence[str] | None = None,
) -> np.ndarray:
    """Per-host, per-band gain ``g_b = S_b median(invvar_b)`` (e-/nanomaggy), float64 ``(N, B)``.

    The median runs over each stamp's finite, positive invvar pixels (zero-invvar pixels are
    unobserved), so masked strips and stamp edges do not bias it.

    Args:
        invvar: ``(N, B, H, W)`` inverse variance (1/nmgy^2) of the hosts' cutouts.
        sky_per_pixel: ``(B,)`` sky per pixel (nanomaggies) of each band.
        bands, names: band and host names used in error messages (default: indices).

    Raises:
        ValueError: ``invvar`` not 4-d or ``sky_per_pixel`` not ``(B,)``; a sky not finite
            and > 0; a host and band with no finite positive invvar pixel (named).
    """
    iv = np.asarray(invvar, dtype=np.float64)
    sky = np.asarray(sky_per_pixel, dtype=np.float64)
    if iv.ndim != 4:
        raise ValueError(f"invvar must be (N, B, H, W), got shape {iv.shape}")
    if sky.shape != (iv.shape[1],):
        raise ValueError(
            f"sky_per_pixel must have one value per band ({iv.shape[1]}), got {sky.shape}"
        )
    if not np.all(np.isfinite(sky) & (sky > 0)):
        raise ValueError(f"sky_per_pixel must be finite and > 0 (nanomaggies), got {sky}")
    valid = np.isfinite(iv) & (iv > 0)
    empty = ~valid.reshape(iv.shape[0], iv.shape[1], -1).any(axis=2)
    if empty.any():
        n, b = (int(i) for i in np.argwhere(empty)[0])
        host = names[n] if names is not None else n
        band = bands[b] if bands is not None else b
        raise ValueError(
            f"invvar of host {host} band {band} has no finite positive pixel (all zero or NaN): "
            f"no noise level, so no gain ({int(empty.sum())} host-band stamps like it)"
        )
    median = np.nanmedian(np.where(valid, iv, np.nan).reshape(iv.shape[0], iv.shape[1], -1), axis=2)
    return sky_limited_gain(sky[None, :], 1.0 / median)
