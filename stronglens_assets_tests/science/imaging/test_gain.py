"""Gain of a sky-limited coadd (science/imaging/gain.py): analytic values and a Poisson
simulation of a sky-limited pixel."""

from __future__ import annotations

import numpy as np
import pytest

from stronglens_assets.science.imaging.gain import (
    DECAM_DARK_SKY_MAG_ARCSEC2,
    host_gains,
    sky_limited_gain,
)

PIX = 0.262


def _sky(mu: float) -> float:
    """Sky per 0.262" pixel (nanomaggies) written out: 10^(-0.4 (mu - 22.5)) x 0.262^2."""
    return 10.0 ** (-0.4 * (mu - 22.5)) * PIX**2


def test_gain_is_sky_over_pixel_variance() -> None:
    # r: mu 21.0 -> 10^0.6 x 0.262^2 = 0.27328 nmgy per pixel; sigma 0.006 nmgy
    assert sky_limited_gain(_sky(21.0), 0.006**2) == pytest.approx(
        10**0.6 * 0.262**2 / 3.6e-5, rel=1e-12
    )
    assert sky_limited_gain(_sky(21.0), 0.006**2) == pytest.approx(7591.0, rel=1e-4)
    np.testing.assert_allclose(sky_limited_gain([1.0, 2.0], [4.0, 0.5]), [0.25, 4.0], rtol=1e-15)


def test_host_gain_is_sky_times_median_invvar_of_valid_pixels() -> None:
    sky = np.array([_sky(DECAM_DARK_SKY_MAG_ARCSEC2[b]) for b in "grz"])
    invvar = np.empty((3, 3, 21, 21), np.float32)
    invvar[:] = np.array([1e4, 2e4, 5e3], np.float32)[None, :, None, None]
    invvar[1] *= 2  # doubled invvar (a deeper host): double the gain
    invvar[2, :, :, :10] = 0.0  # a masked strip and NaNs are left out of the median
    invvar[2, :, 0, 10:] = np.nan
    invvar[2, :, 1, 10:] = 3e9  # a few outliers do not move it
    gains = host_gains(invvar, sky)
    want = sky * np.array([1e4, 2e4, 5e3])
    np.testing.assert_allclose(gains[0], want, rtol=1e-12)
    np.testing.assert_allclose(gains[1], 2 * want, rtol=1e-12)
    np.testing.assert_allclose(gains[2], want, rtol=1e-12)
    assert gains.shape == (3, 3) and gains.dtype == np.float64


def test_gain_of_a_simulated_sky_limited_pixel() -> None:
    """Electrons of sky ~ Poisson(S g) per pixel, image = electrons / g: its variance is S / g,
    so the gain recovered from the measured variance (as from invvar = 1 / variance) is g."""
    rng = np.random.default_rng(2024)
    for mu, true_gain in ((22.0, 150.0), (21.0, 3000.0), (19.9, 20.0)):
        sky = _sky(mu)
        image = rng.poisson(sky * true_gain, size=200_000) / true_gain
        assert image.mean() == pytest.approx(sky, rel=0.01)
        var = image.var()
        # variance of a variance estimate: sqrt(2 / n) ~ 0.3% relative; 2% is ~6 sigma
        assert var == pytest.approx(sky / true_gain, rel=0.02)
        assert sky_limited_gain(sky, var) == pytest.approx(true_gain, rel=0.02)
        invvar = np.full((1, 1, 4, 4), 1.0 / var)
        assert host_gains(invvar, [sky])[0, 0] == pytest.approx(true_gain, rel=0.02)


def test_bad_input_names_the_field() -> None:
    good = np.ones((2, 3, 5, 5))
    sky = np.ones(3)
    bad = good.copy()
    bad[1, 2] = 0.0
    bad[1, 2, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"invvar of host neg-1 band z .*all zero or NaN"):
        host_gains(bad, sky, bands=["g", "r", "z"], names=["neg-0", "neg-1"])
    with pytest.raises(ValueError, match=r"invvar of host 1 band 2"):
        host_gains(bad, sky)
    for sky_bad in ([1.0, 0.0, 1.0], [1.0, -1.0, 1.0], [np.nan, 1.0, 1.0]):
        with pytest.raises(ValueError, match="sky_per_pixel"):
            host_gains(good, sky_bad)
    with pytest.raises(ValueError, match="sky_per_pixel must have one value per band"):
        host_gains(good, [1.0, 1.0])
    with pytest.raises(ValueError, match="invvar must be"):
        host_gains(good[0], sky)
    with pytest.raises(ValueError, match="sky_per_pixel"):
        sky_limited_gain(0.0, 1.0)
    with pytest.raises(ValueError, match="pixel_variance"):
        sky_limited_gain(1.0, [1.0, -2.0])
