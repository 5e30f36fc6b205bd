"""Photometric units of the Legacy Surveys: AB magnitudes and nanomaggies.

DR10 images, sweep fluxes and injected arcs are in **nanomaggies** (nmgy); the AB zero point is
22.5: ``m = 22.5 - 2.5 log10(f / nmgy)`` and ``f = 10^(-0.4 (m - 22.5))`` nmgy. Inverse
variances are in 1/nmgy^2.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

#: AB magnitude of a flux of one nanomaggy (Legacy Surveys ``MAGZERO``).
AB_ZERO_POINT: float = 22.5


def mag_to_nanomaggies(mag: npt.ArrayLike, zero_point: float = AB_ZERO_POINT) -> Any:
    """Flux in nanomaggies of AB magnitude ``mag``: ``10^(-0.4 (mag - zero_point))`` (float64)."""
    return 10.0 ** (-0.4 * (np.asarray(mag, dtype=np.float64) - zero_point))


def sky_nanomaggies_per_pixel(sky_mag_arcsec2: npt.ArrayLike, pixel_scale: float) -> Any:
    """Sky flux per pixel (nanomaggies) of a surface brightness ``sky_mag_arcsec2`` (AB mag /
    arcsec^2) on pixels of ``pixel_scale`` arcsec: ``10^(-0.4 (mu - 22.5)) pixel_scale^2``."""
    return mag_to_nanomaggies(sky_mag_arcsec2) * pixel_scale**2


def nanomaggies_to_mag(flux: npt.ArrayLike, zero_point: float = AB_ZERO_POINT) -> Any:
    """AB magnitude of ``flux`` in nanomaggies (float64); NaN where ``flux <= 0`` or not finite."""
    f = np.asarray(flux, dtype=np.float64)
    positive = np.isfinite(f) & (f > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        mag = zero_point - 2.5 * np.log10(np.where(positive, f, 1.0))
    return np.where(positive, mag, np.nan)
