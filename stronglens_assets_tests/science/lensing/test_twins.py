"""Truth-based twins: arc removal leaves host + noise, twins keep the lensed magnitudes."""

from __future__ import annotations

import numpy as np
import pytest

from stronglens_assets.mock_survey import draw_brick_sky, load_demo_sky
from stronglens_assets.mock_survey.render import (
    LENS_STAMP_NPIX,
    lens_stamp_centers,
    psf_kernel,
    render_lens_arcs,
)
from stronglens_assets.mock_survey.sky import lens_geometry
from stronglens_assets.science.catalogs.bricks import PIXEL_SCALE_ARCSEC
from stronglens_assets.science.core.units import nanomaggies_to_mag
from stronglens_assets.science.lensing.priors import load_priors
from stronglens_assets.science.lensing.structured_source import lensed_unit_images
from stronglens_assets.science.lensing.twins import (
    add_arcs,
    embed_stamps,
    lensed_flux,
    matched_twin_arcs,
    remove_arcs,
    sersic_twin_sources,
    twin_sources,
)
from stronglens_assets.settings import PROJECT_ROOT

BANDS = ("g", "r", "z")


@pytest.fixture(scope="module")
def originals():
    config = load_demo_sky()
    lenses = draw_brick_sky(config, "0366m037", None).lenses.iloc[:8].reset_index(drop=True)
    kernels = [psf_kernel(f) for f in (1.5, 1.4, 1.3)]
    arcs = render_lens_arcs(lenses, BANDS, dict(zip(BANDS, kernels, strict=True)))
    ix, iy = lens_stamp_centers(lenses)
    lens = lens_geometry(
        lenses,
        (lenses["x"].to_numpy() - ix) * PIXEL_SCALE_ARCSEC,
        (lenses["y"].to_numpy() - iy) * PIXEL_SCALE_ARCSEC,
    )
    return config, lenses, lens, kernels, arcs


def test_arc_removal_leaves_host_and_noise(originals) -> None:
    """I = host + noise + arc -> I - arc = host + noise, to float32 rounding of I."""
    _, _, _, _, arcs = originals
    rng = np.random.default_rng(0)
    n = arcs.shape[0]
    host = rng.lognormal(-3, 1, (n, 3, 101, 101)).astype(np.float32)
    noise = rng.normal(0, 0.01, (n, 3, 101, 101)).astype(np.float32)
    image = (host + noise) + embed_stamps(arcs, (101, 101)).astype(np.float32)
    removed = remove_arcs(image, arcs)
    ulp = np.spacing(np.abs(image)).max()
    np.testing.assert_allclose(removed, host + noise, rtol=0, atol=2 * ulp)
    # the arc was there: without removal the difference is the arc itself
    assert np.abs(image - (host + noise)).max() > 100 * ulp
    with pytest.raises(ValueError, match="agree"):
        remove_arcs(image, arcs[:, :2])


def test_twins_keep_the_lensed_magnitudes(originals) -> None:
    """Same-model, Sersic and dose-response twins: per band, the original's lensed magnitude."""
    config, lenses, lens, kernels, arcs = originals
    theta_e = lenses["theta_e"].to_numpy()
    priors = load_priors(PROJECT_ROOT / "configs", "demo")
    sources = {
        "same_model": twin_sources(config.lenses.source_model(), theta_e, np.random.default_rng(1)),
        "sersic": sersic_twin_sources(priors, "paper_2026", theta_e, np.random.default_rng(2)),
    }
    for f in (0.0, 0.15, 0.3, 0.6):
        model = config.lenses.source_model(f)
        sources[f"dose_{f}"] = twin_sources(model, theta_e, np.random.default_rng(3))
    want = nanomaggies_to_mag(lensed_flux(arcs))
    for name, source in sources.items():
        unit = lensed_unit_images(lens, source, size=LENS_STAMP_NPIX)
        twins = matched_twin_arcs(unit, arcs, kernels)
        np.testing.assert_allclose(nanomaggies_to_mag(lensed_flux(twins)), want, atol=1e-9)
        assert np.abs(twins - arcs).max() > 0.05 * np.abs(arcs).max(), name  # another arc
    assert (sources["sersic"].knot_fraction.size == 0) and sources["sersic"].r_eff.min() > 0
    # dose-response twins share every draw but the knots' flux share
    np.testing.assert_array_equal(sources["dose_0.0"].source_x, sources["dose_0.6"].source_x)
    np.testing.assert_allclose(sources["dose_0.6"].knot_fraction.sum(axis=1), 0.6)


def test_add_arcs_adds_the_arc_and_its_shot_noise() -> None:
    rng = np.random.default_rng(4)
    background = np.zeros((1, 1, 201, 201), dtype=np.float32)
    arcs = np.full((1, 1, 201, 201), 2.0)
    out = add_arcs(background, arcs, np.array([[50.0]]), rng)
    assert out.mean() == pytest.approx(2.0, abs=5 * np.sqrt(2.0 / 50.0 / out.size))
    assert out.var() == pytest.approx(2.0 / 50.0, rel=0.03)
    with pytest.raises(ValueError, match="gain"):
        add_arcs(background, arcs, np.array([[0.0]]), rng)
