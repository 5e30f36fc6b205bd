"""Tests of stronglens_assets.science.lensing.profiles against lenstronomy and analytic values."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import scipy.special

from stronglens_assets.science.lensing import profiles as P
from stronglens_assets_tests.harness import require_module

lenstronomy = require_module(
    "lenstronomy", "profiles are tested against lenstronomy (a dev dependency)"
)
from lenstronomy.LightModel.light_model import LightModel  # noqa: E402
from lenstronomy.Util import param_util, util  # noqa: E402

SERSIC_CASES = [
    # n, R_sersic, e1, e2, center_x, center_y
    (0.5, 0.3, 0.0, 0.0, 0.0, 0.0),
    (1.0, 0.5, 0.2, -0.1, 0.1, -0.2),
    (2.5, 0.8, -0.3, 0.25, -0.3, 0.05),
    (4.0, 1.2, 0.05, 0.4, 0.0, 0.0),
    (6.0, 0.2, -0.45, 0.0, 0.2, 0.2),
]


def _log_polar_flux(sb_func, r_max: float, r_min: float = 1e-6) -> float:
    """Integrate sb_func(x, y) over the plane in log-polar coordinates (dA = r^2 du dt)."""
    u = np.linspace(np.log(r_min), np.log(r_max), 3001)
    t = np.linspace(0.0, 2.0 * np.pi, 129)[:-1]
    r = np.exp(u)[:, None]
    x, y = r * np.cos(t)[None, :], r * np.sin(t)[None, :]
    integrand = sb_func(x, y) * r**2
    radial = integrand.mean(axis=1) * 2.0 * np.pi
    return float(np.trapezoid(radial, u))


def _fwhm_central_row(kernel: np.ndarray, pixel_scale: float) -> float:
    c = kernel.shape[0] // 2
    prof = kernel[c, c:]
    half = prof[0] / 2.0
    i = int(np.argmax(prof < half))
    frac = (prof[i - 1] - half) / (prof[i - 1] - prof[i])
    return 2.0 * (i - 1 + frac) * pixel_scale


def test_sersic_bn_exact() -> None:
    for n in (0.5, 1.0, 2.0, 4.0, 6.0):
        bn = P.sersic_bn(n)
        assert isinstance(bn, float)
        assert scipy.special.gammainc(2 * n, bn) == pytest.approx(0.5, abs=1e-12)
    assert P.sersic_bn(1.0) == pytest.approx(1.678346990, rel=1e-8)
    assert P.sersic_bn(4.0) == pytest.approx(7.669249443, rel=1e-8)
    # lenstronomy's linear approximation is close to the exact root for n >= 1
    assert P.sersic_bn_lenstronomy(4.0) == pytest.approx(P.sersic_bn(4.0), rel=2e-3)
    np.testing.assert_allclose(P.sersic_bn(np.array([1.0, 4.0])), [1.678347, 7.669249], 1e-6)
    with pytest.raises(ValueError):
        P.sersic_bn(0.0)


@pytest.mark.parametrize(("n", "r_s", "e1", "e2", "cx", "cy"), SERSIC_CASES)
def test_sersic_surface_brightness_matches_lenstronomy(n, r_s, e1, e2, cx, cy) -> None:
    x, y = util.make_grid(61, 0.05)  # includes (0, 0): smoothing floor
    kw = dict(amp=2.7, R_sersic=r_s, n_sersic=n, e1=e1, e2=e2, center_x=cx, center_y=cy)
    ref = LightModel(["SERSIC_ELLIPSE"]).surface_brightness(x, y, [kw])
    ours = P.sersic_surface_brightness(
        x, y, 2.7, r_s, n, e1, e2, cx, cy, bn=P.sersic_bn_lenstronomy(n)
    )
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=0)
    # the default (exact b_n) agrees exactly at R = R_sersic and differs slightly elsewhere
    exact = P.sersic_surface_brightness(x, y, 2.7, r_s, n, e1, e2, cx, cy)
    assert np.all(np.isfinite(exact)) and exact.shape == x.shape


def test_sersic_surface_brightness_at_half_light_radius_is_amp() -> None:
    phi, q = 0.6, 0.5
    e1, e2 = P.ellipticity_from_phi_q(phi, q)
    r_s = 0.7
    # points on the ellipse sqrt(q x'^2 + y'^2 / q) = R_sersic
    t = np.linspace(0, 2 * np.pi, 50)
    xp_, yp_ = r_s / np.sqrt(q) * np.cos(t), r_s * np.sqrt(q) * np.sin(t)
    x = np.cos(phi) * xp_ - np.sin(phi) * yp_
    y = np.sin(phi) * xp_ + np.cos(phi) * yp_
    sb = P.sersic_surface_brightness(x, y, 3.0, r_s, 2.0, e1, e2)
    np.testing.assert_allclose(sb, 3.0, rtol=1e-10)


@pytest.mark.parametrize(("n", "r_s", "e1", "e2", "cx", "cy"), SERSIC_CASES)
def test_total_flux_formula_vs_numerical_integration(n, r_s, e1, e2, cx, cy) -> None:
    amp = 1.9
    expected = P.sersic_total_flux(amp, r_s, n)
    numeric = _log_polar_flux(
        lambda x, y: P.sersic_surface_brightness(x, y, amp, r_s, n, e1, e2), r_max=1100 * r_s
    )
    assert numeric == pytest.approx(expected, rel=1e-3)
    # the axis ratio does not change the total for the circularised radius convention
    _, q = P.phi_q_from_ellipticity(e1, e2)
    assert P.sersic_total_flux(amp, r_s, n, q=q) == expected
    # exact b_n: half of the flux inside the (elliptical) radius R_sersic
    half = _log_polar_flux(
        lambda x, y: P.sersic_surface_brightness(x, y, amp, r_s, n) * (np.hypot(x, y) <= r_s),
        r_max=r_s,
    )
    assert half == pytest.approx(expected / 2, rel=2e-3)


def test_total_flux_vs_lenstronomy_and_inverse() -> None:
    light = LightModel(["SERSIC_ELLIPSE"])
    for n, r_s, e1, e2, *_ in SERSIC_CASES:
        kw = dict(amp=1.3, R_sersic=r_s, n_sersic=n, e1=e1, e2=e2, center_x=0, center_y=0)
        ref = light.total_flux([kw])[0]
        ours = P.sersic_total_flux(1.3, r_s, n, bn=P.sersic_bn_lenstronomy(n))
        assert ours == pytest.approx(ref, rel=1e-10)
        amp = P.sersic_amp_for_flux(ours, r_s, n, bn=P.sersic_bn_lenstronomy(n))
        assert amp == pytest.approx(1.3, rel=1e-12)
        assert P.sersic_amp_for_flux(P.sersic_total_flux(2.0, r_s, n), r_s, n) == pytest.approx(
            2.0, rel=1e-12
        )
    with pytest.raises(ValueError):
        P.sersic_total_flux(1.0, 1.0, 1.0, q=0.0)


def test_render_sersic_image_flux_on_fine_grid() -> None:
    flux = 12.5  # nanomaggies
    img = P.render_sersic_image(flux, 0.3, 1.0, 0.2, 0.1, 0.0, 0.0, (101, 101), 0.05, 4)
    assert img.shape == (101, 101)
    assert img.sum() == pytest.approx(flux, rel=1e-2)
    # a compact source placed at +x / +y lands at larger column / row indices
    off = P.render_sersic_image(flux, 0.1, 1.0, 0.0, 0.0, 0.5, -0.25, (101, 101), 0.05, 4)
    row, col = np.unravel_index(np.argmax(off), off.shape)
    assert (row, col) == (50 - 5, 50 + 10)


def test_render_sersic_image_batched_and_xp() -> None:
    flux = np.array([1.0, 3.0]).reshape(2, 1, 1)
    r_s = np.array([0.4, 0.8]).reshape(2, 1, 1)
    batch = P.render_sersic_image(flux, r_s, 1.5, 0.1, -0.2, 0.1, 0.0, (31, 33), 0.262, 3, xp=np)
    assert batch.shape == (2, 31, 33)
    for i in range(2):
        single = P.render_sersic_image(
            float(flux[i, 0, 0]), float(r_s[i, 0, 0]), 1.5, 0.1, -0.2, 0.1, 0.0, (31, 33), 0.262, 3
        )
        np.testing.assert_allclose(batch[i], single, rtol=1e-12)


def test_pixel_grid_matches_lenstronomy() -> None:
    for num, s in ((101, 1), (11, 4), (10, 3)):
        ra, dec, *_ = util.make_grid_with_coordtransform(num, 0.262, inverse=False)
        ra_s, dec_s = util.make_subgrid(ra, dec, s) if s > 1 else (ra, dec)
        x, y = P.pixel_grid((num, num), 0.262, s)
        np.testing.assert_allclose(x, util.array2image(ra_s), atol=1e-12)
        np.testing.assert_allclose(y, util.array2image(dec_s), atol=1e-12)
    x, y = P.pixel_grid((5, 7), 0.5)
    assert x.shape == (5, 7) and x[0, 3] == 0.0 and y[2, 0] == 0.0
    assert x[0, 4] == 0.5 and y[3, 0] == 0.5  # +x = +column, +y = +row


def test_ellipticity_conversions_match_lenstronomy() -> None:
    rng = np.random.default_rng(3)
    phi = rng.uniform(-np.pi, np.pi, 50)
    q = rng.uniform(0.2, 1.0, 50)
    e1, e2 = P.ellipticity_from_phi_q(phi, q)
    r1, r2 = param_util.phi_q2_ellipticity(phi, q)
    np.testing.assert_allclose(e1, r1, atol=1e-14)
    np.testing.assert_allclose(e2, r2, atol=1e-14)
    phi2, q2 = P.phi_q_from_ellipticity(e1, e2)
    rphi, rq = param_util.ellipticity2phi_q(e1, e2)
    np.testing.assert_allclose(phi2, rphi, atol=1e-14)
    np.testing.assert_allclose(q2, rq, atol=1e-14)
    np.testing.assert_allclose(q2, q, rtol=1e-10)
    # orientation is defined modulo pi
    np.testing.assert_allclose(np.cos(2 * phi2), np.cos(2 * phi), atol=1e-10)


def test_psf_kernels_normalised_and_fwhm() -> None:
    for kern in (
        P.gaussian_psf_kernel(1.3, 0.262, 25),
        P.moffat_psf_kernel(1.3, 0.262, 25),
        P.moffat_psf_kernel(1.1, 0.262, 33, beta=2.5),
    ):
        assert kern.shape[0] % 2 == 1
        assert kern.sum() == pytest.approx(1.0, abs=1e-12)
        c = kern.shape[0] // 2
        assert np.unravel_index(np.argmax(kern), kern.shape) == (c, c)
        np.testing.assert_allclose(kern, kern.T, atol=1e-15)
        np.testing.assert_allclose(kern, kern[::-1, ::-1], atol=1e-15)
    fine = 0.01
    assert _fwhm_central_row(P.gaussian_psf_kernel(1.0, fine, 301), fine) == pytest.approx(
        1.0, rel=0.02
    )
    assert _fwhm_central_row(P.moffat_psf_kernel(1.0, fine, 201), fine) == pytest.approx(
        1.0, rel=0.02
    )
    with pytest.raises(ValueError):
        P.gaussian_psf_kernel(1.0, 0.262, 24)


def test_convolve_fft_matches_scipy_and_batches() -> None:
    rng = np.random.default_rng(0)
    img = rng.normal(size=(3, 41, 37))
    for kern in (P.gaussian_psf_kernel(1.2, 0.262, 15), rng.normal(size=(6, 9))):
        ours = P.convolve_fft(img, kern)
        assert ours.shape == img.shape
        for i in range(3):
            ref = scipy.signal.fftconvolve(img[i], kern, mode="same")
            np.testing.assert_allclose(ours[i], ref, atol=1e-12)
    # flux is conserved for a source well inside the stamp
    src = P.render_sersic_image(5.0, 0.3, 1.0, 0.0, 0.0, 0.0, 0.0, (101, 101), 0.262, 2)
    conv = P.convolve_fft(src, P.gaussian_psf_kernel(1.3, 0.262, 25), xp=np)
    assert conv.sum() == pytest.approx(src.sum(), rel=1e-10)
