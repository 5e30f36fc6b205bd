"""Source realism of the mock lenses: the structure knob, colours, shot noise, arc truth."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from stronglens_assets.mock_survey import DemoSkyConfig, draw_brick_sky
from stronglens_assets.mock_survey.render import (
    LENS_STAMP_NPIX,
    _add_noise,
    lens_stamp_centers,
    psf_kernel,
    render_lens_arcs,
)
from stronglens_assets.mock_survey.sky import BandConditions, _lens_parameters
from stronglens_assets.mock_survey.writer import brick_paths
from stronglens_assets.science.catalogs.bricks import BRICK_NPIX, PIXEL_SCALE_ARCSEC
from stronglens_assets.science.core.npz import decode_npz
from stronglens_assets.science.lensing.injection import render_arcs
from stronglens_assets.science.lensing.profiles import convolve_fft, phi_q_from_ellipticity
from stronglens_assets_tests.harness import TEST_BRICKS, BuiltSky

BRICK = "0366m037"


def _with_fraction(config: DemoSkyConfig, fraction: float) -> DemoSkyConfig:
    lenses = config.lenses.model_copy(update={"structure_fraction": fraction})
    return config.model_copy(update={"lenses": lenses})


def test_structure_fraction_zero_is_the_engines_sersic(demo_config: DemoSkyConfig) -> None:
    """Pixel comparison: with no structure a mock arc is the injection engine's Sersic
    (``render_arcs``, parameters mapped here from the truth columns by their documented
    meaning: lens q/angle from e1/e2, source centre = lens centre + offset), convolved with
    the brick's PSF and scaled to the source flux."""
    sky = draw_brick_sky(_with_fraction(demo_config, 0.0), BRICK, None)
    lenses = sky.lenses.iloc[:6].reset_index(drop=True)
    kernels = {b: psf_kernel(1.2 + 0.1 * j) for j, b in enumerate(sky.bands)}
    arcs = render_lens_arcs(lenses, sky.bands, kernels)

    ix, iy = lens_stamp_centers(lenses)
    lx = (lenses["x"].to_numpy() - ix) * PIXEL_SCALE_ARCSEC
    ly = (lenses["y"].to_numpy() - iy) * PIXEL_SCALE_ARCSEC
    phi_l, q_l = phi_q_from_ellipticity(lenses["e1"].to_numpy(), lenses["e2"].to_numpy())
    engine = render_arcs(
        lenses["theta_e"],
        lx + lenses["src_x"].to_numpy(),
        ly + lenses["src_y"].to_numpy(),
        lenses["src_r_e"].to_numpy() * np.sqrt(lenses["src_q"].to_numpy()),
        lenses["src_n"],
        lenses["src_q"],
        lenses["src_phi"],
        np.ones((len(lenses), 1)),
        None,
        lens_axis_ratio=q_l,
        lens_position_angle=phi_l,
        shear_gamma1=lenses["gamma1"],
        shear_gamma2=lenses["gamma2"],
        lens_center_x=lx,
        lens_center_y=ly,
        size=LENS_STAMP_NPIX,
        pixel_scale=PIXEL_SCALE_ARCSEC,
        supersample=4,
    )[:, 0]
    for j, b in enumerate(sky.bands):
        expected = convolve_fft(engine.astype(np.float64), kernels[b])
        expected *= lenses[f"src_flux_{b}"].to_numpy()[:, None, None]
        peak = np.abs(expected).max()
        np.testing.assert_allclose(arcs[:, j], expected, rtol=0, atol=1e-5 * peak)
    # and the knots change the image (same draws, only the knot fluxes differ)
    knotty = draw_brick_sky(_with_fraction(demo_config, 0.3), BRICK, None).lenses.iloc[:6]
    pd.testing.assert_series_equal(knotty["src_x"], lenses["src_x"], check_index=False)
    with_knots = render_lens_arcs(knotty.reset_index(drop=True), sky.bands, kernels)
    assert np.abs(with_knots - arcs).max() > 0.05 * np.abs(arcs).max()


def test_source_colours_are_the_measured_arc_colours(demo_config: DemoSkyConfig) -> None:
    """g - r ~ N(1.23, 0.39), r - z ~ N(0.95, 0.27) (PROTOCOL.md) for every source."""
    n = 4000
    rng = np.random.default_rng(5)
    params = _lens_parameters(rng, demo_config, n, np.zeros(n), np.zeros(n))
    g_r = params["src_mag_g"] - params["src_mag_r"]
    r_z = params["src_mag_r"] - params["src_mag_z"]
    assert abs(g_r.mean() - 1.23) < 4 * 0.39 / math.sqrt(n)
    assert abs(r_z.mean() - 0.95) < 4 * 0.27 / math.sqrt(n)
    assert abs(g_r.std() - 0.39) < 0.03 and abs(r_z.std() - 0.27) < 0.02


def test_noise_variance_is_sky_plus_light_over_gain() -> None:
    """Pixel variance = sigma^2 + light / gain (shot noise of the light); zero light: sigma^2."""
    sigma, gain, light = 0.02, 50.0, 0.4
    cond = BandConditions("r", 1.3, 24.0, 3, None, ())
    image = np.zeros((BRICK_NPIX, BRICK_NPIX), dtype=np.float32)
    image[: BRICK_NPIX // 2] = light
    noisy = image.copy()
    _add_noise(noisy, cond, sigma, np.random.default_rng(1), gain, np.random.default_rng(2))
    lit = (noisy - image)[: BRICK_NPIX // 2]
    dark = (noisy - image)[BRICK_NPIX // 2 :]
    # 6.5e6 pixels each: the variance is known to ~0.06% (1 sigma)
    assert lit.var(dtype=np.float64) == pytest.approx(sigma**2 + light / gain, rel=3e-3)
    assert dark.var(dtype=np.float64) == pytest.approx(sigma**2, rel=3e-3)


def test_arc_truth_is_written(built_sky: BuiltSky) -> None:
    """The noiseless arc stamps are stored per lens and hold the recorded arc fluxes."""
    brick = TEST_BRICKS[0]
    paths = brick_paths(built_sky.root, brick)
    lenses = pd.read_parquet(paths.truth_lenses)
    truth = decode_npz(paths.truth_arcs.read_bytes())
    assert truth["arcs"].shape == (len(lenses), 3, LENS_STAMP_NPIX, LENS_STAMP_NPIX)
    assert list(truth["name"]) == list(lenses["name"])
    assert list(truth["bands"]) == ["g", "r", "z"]
    for j, b in enumerate("grz"):
        np.testing.assert_allclose(
            truth["arcs"][:, j].sum(axis=(1, 2), dtype=np.float64), lenses[f"arc_flux_{b}"]
        )
        assert truth[f"psf_{b}"].sum() == pytest.approx(1.0)
        assert (lenses[f"gain_{b}"] > 0).all()
    for col in ("src_r_e", "src_n", "src_q", "src_phi", "lens_phi", "structure_fraction"):
        assert lenses[col].notna().all()
