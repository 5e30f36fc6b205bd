"""Tests of stronglens_assets.science.lensing.ray_tracing against lenstronomy and analytic
values."""

from __future__ import annotations

import numpy as np
import pytest

from stronglens_assets.science.lensing import profiles as P
from stronglens_assets.science.lensing import ray_tracing as L
from stronglens_assets_tests.harness import require_module

lenstronomy = require_module(
    "lenstronomy", "ray tracing is tested against lenstronomy (a dev dependency)"
)
from lenstronomy.Data.imaging_data import ImageData  # noqa: E402
from lenstronomy.Data.psf import PSF  # noqa: E402
from lenstronomy.ImSim.image_model import ImageModel  # noqa: E402
from lenstronomy.LensModel.lens_model import LensModel  # noqa: E402
from lenstronomy.LightModel.light_model import LightModel  # noqa: E402
from lenstronomy.Util import util  # noqa: E402

PIX = 0.262
NPIX = 101
KW_SIE = dict(theta_E=1.2, e1=0.15, e2=-0.08, center_x=0.05, center_y=-0.1)
KW_SHEAR = dict(gamma1=0.04, gamma2=-0.03, ra_0=0.0, dec_0=0.0)
LENS = [{"type": "SIE", **KW_SIE}, {"type": "SHEAR", **KW_SHEAR}]
KW_SRC = dict(amp=1.0, R_sersic=0.25, n_sersic=1.5, e1=0.2, e2=0.1, center_x=0.1, center_y=0.05)


def _random_points(n: int = 2000, seed: int = 42) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(-4, 4, n), rng.uniform(-4, 4, n)
    keep = np.hypot(x - 0.05, y + 0.1) > 1e-3  # avoid the exact lens centre
    return x[keep], y[keep]


def test_sis_check_value_and_centre() -> None:
    ax, ay = L.sis_deflection(1.0, 2.0, 1.0)
    assert float(ax) == pytest.approx(0.4472135955, abs=1e-10)
    assert float(ay) == pytest.approx(0.8944271910, abs=1e-10)
    ax, ay = L.sis_deflection(np.array([0.3, 0.0]), np.array([0.0, 0.0]), 1.0)
    np.testing.assert_allclose(ax, [1.0, 0.0])
    np.testing.assert_allclose(ay, [0.0, 0.0])
    x, y = _random_points()
    ref = LensModel(["SIS"]).alpha(x, y, [dict(theta_E=0.9, center_x=0.2, center_y=-0.3)])
    ours = L.sis_deflection(x, y, 0.9, 0.2, -0.3)
    np.testing.assert_allclose(ours, ref, rtol=1e-12)


@pytest.mark.parametrize(("e1", "e2"), [(0.0, 0.0), (0.15, -0.08), (-0.3, 0.2), (0.0, 0.45)])
def test_sie_matches_lenstronomy(e1: float, e2: float) -> None:
    x, y = _random_points()
    kw = dict(theta_E=1.2, e1=e1, e2=e2, center_x=0.05, center_y=-0.1)
    ref = LensModel(["SIE"]).alpha(x, y, [kw])
    ours = L.sie_deflection(x, y, 1.2, e1, e2, 0.05, -0.1)
    np.testing.assert_allclose(ours[0], ref[0], rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(ours[1], ref[1], rtol=1e-6, atol=1e-12)


def test_round_sie_is_sis() -> None:
    x, y = _random_points()
    np.testing.assert_allclose(
        L.sie_deflection(x, y, 1.1, 0.0, 0.0), L.sis_deflection(x, y, 1.1), rtol=1e-6
    )


def test_sie_shear_ray_shoot_matches_lenstronomy() -> None:
    x, y = _random_points()
    model = LensModel(["SIE", "SHEAR"])
    bx_ref, by_ref = model.ray_shooting(x, y, [KW_SIE, KW_SHEAR])
    bx, by = L.ray_shoot(x, y, LENS)
    np.testing.assert_allclose(bx, bx_ref, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(by, by_ref, rtol=1e-6, atol=1e-12)
    sx, sy = L.shear_deflection(x, y, 0.04, -0.03, 0.3, -0.2)
    rx, ry = LensModel(["SHEAR"]).alpha(
        x, y, [dict(gamma1=0.04, gamma2=-0.03, ra_0=0.3, dec_0=-0.2)]
    )
    np.testing.assert_allclose(sx, rx, rtol=1e-12)
    np.testing.assert_allclose(sy, ry, rtol=1e-12)
    with pytest.raises(ValueError):
        L.ray_shoot(x, y, [{"type": "NFW"}])


def test_einstein_ring_and_magnification() -> None:
    t = np.linspace(0, 2 * np.pi, 100, endpoint=False)
    theta_e, cx, cy = 1.4, 0.3, -0.2
    x, y = cx + theta_e * np.cos(t), cy + theta_e * np.sin(t)
    bx, by = L.ray_shoot(
        x, y, [{"type": "SIS", "theta_E": theta_e, "center_x": cx, "center_y": cy}]
    )
    np.testing.assert_allclose(bx, cx, atol=1e-12)
    np.testing.assert_allclose(by, cy, atol=1e-12)
    # SIS point magnification mu = r / (r - theta_E)
    r = np.array([0.5, 2.0, 3.0])
    mu = L.magnification_map(r, 0 * r, [{"type": "SIS", "theta_e": 1.0}])
    np.testing.assert_allclose(mu, r / (r - 1.0), rtol=1e-6)
    # matches lenstronomy for SIE + SHEAR
    x, y = _random_points(200)
    far = np.hypot(x - 0.05, y + 0.1) > 0.1
    ref = LensModel(["SIE", "SHEAR"]).magnification(x[far], y[far], [KW_SIE, KW_SHEAR])
    np.testing.assert_allclose(L.magnification_map(x[far], y[far], LENS), ref, rtol=1e-4)


def _lenstronomy_image(kw_source: dict, kernel: np.ndarray | None) -> np.ndarray:
    _, _, ra0, dec0, _, _, pix2coord, _ = util.make_grid_with_coordtransform(
        NPIX, PIX, inverse=False
    )
    data = ImageData(
        image_data=np.zeros((NPIX, NPIX)),
        ra_at_xy_0=ra0,
        dec_at_xy_0=dec0,
        transform_pix2angle=pix2coord,
    )
    psf = PSF(psf_type="NONE") if kernel is None else PSF("PIXEL", kernel_point_source=kernel)
    model = ImageModel(
        data,
        psf,
        lens_model_class=LensModel(["SIE", "SHEAR"]),
        source_model_class=LightModel(["SERSIC_ELLIPSE"]),
        kwargs_numerics={"supersampling_factor": 4, "supersampling_convolution": False},
    )
    # lenstronomy's ImageModel multiplies the mean surface brightness by the pixel area too:
    # its images are in flux per pixel, like ours
    return model.image(kwargs_lens=[KW_SIE, KW_SHEAR], kwargs_source=[kw_source])


@pytest.mark.parametrize("with_psf", [False, True])
def test_render_lensed_sources_matches_lenstronomy(with_psf: bool) -> None:
    kernel = P.gaussian_psf_kernel(1.3, PIX, 25) if with_psf else None
    ref = _lenstronomy_image(KW_SRC, kernel)
    n = KW_SRC["n_sersic"]
    src = {
        "type": "SERSIC",
        "amp": KW_SRC["amp"],
        "r_sersic": KW_SRC["R_sersic"],
        "n": n,
        "e1": KW_SRC["e1"],
        "e2": KW_SRC["e2"],
        "center_x": KW_SRC["center_x"],
        "center_y": KW_SRC["center_y"],
    }
    # same b_n as lenstronomy: identical images
    same = L.render_lensed_sources(
        LENS, [{**src, "bn": P.sersic_bn_lenstronomy(n)}], (NPIX, NPIX), PIX, 4, kernel
    )
    assert np.max(np.abs(same - ref)) < 1e-8 * ref.max()
    # exact b_n, source given by its total flux (as the production code uses it)
    flux = P.sersic_total_flux(KW_SRC["amp"], KW_SRC["R_sersic"], n)
    exact_src = {k: v for k, v in src.items() if k != "amp"} | {"flux": flux}
    ours = L.render_lensed_sources(LENS, [exact_src], (NPIX, NPIX), PIX, 4, kernel, xp=np)
    assert ours.shape == (NPIX, NPIX)
    assert ours.sum() == pytest.approx(ref.sum(), rel=0.01)
    assert np.max(np.abs(ours - ref)) < 0.02 * ref.max()
    # wrapper
    single = L.render_lensed_sersic(
        LENS, flux, 0.25, n, 0.2, 0.1, 0.1, 0.05, (NPIX, NPIX), PIX, 4, kernel
    )
    np.testing.assert_allclose(single, ours, rtol=1e-12, atol=0)


def test_lensed_flux_is_magnified_flux() -> None:
    # compact source at beta = 0.5 behind a SIS (theta_E = 1): |mu| = 3 + 1 = 4
    lens = [{"type": "SIS", "theta_E": 1.0}]
    src = {"flux": 2.0, "r_sersic": 0.03, "n": 1.0, "center_x": 0.5, "center_y": 0.0}
    img = L.render_lensed_sources(lens, [src], (81, 81), 0.05, 8)
    assert img.sum() == pytest.approx(4 * 2.0, rel=0.02)
    # the brighter (mu = 3) image is on the +x side (larger column), at x = 1.5"
    row, col = np.unravel_index(np.argmax(img), img.shape)
    assert (row, col) == (40, 40 + 30)
    # no lens: the unlensed Sersic render
    unlensed = L.render_lensed_sources([], [src], (81, 81), 0.05, 8)
    ref = P.render_sersic_image(2.0, 0.03, 1.0, 0.0, 0.0, 0.5, 0.0, (81, 81), 0.05, 8)
    np.testing.assert_allclose(unlensed, ref, rtol=1e-12)


def test_clumpy_source_is_sum_of_components() -> None:
    comps = [
        {"flux": 3.0, "r_sersic": 0.3, "n": 1.0, "e1": 0.1, "e2": 0.0},
        {"flux": 0.5, "r_sersic": 0.05, "n": 0.5, "center_x": 0.2, "center_y": -0.1},
        {"flux": 0.4, "r_sersic": 0.04, "n": 0.5, "center_x": -0.15, "center_y": 0.1},
    ]
    total = L.render_lensed_sources(LENS, comps, (51, 51), PIX, 2)
    parts = sum(L.render_lensed_sources(LENS, [c], (51, 51), PIX, 2) for c in comps)
    np.testing.assert_allclose(total, parts, rtol=1e-12)
    empty = L.render_lensed_sources(LENS, [], (51, 51), PIX, 2)
    assert empty.shape == (51, 51) and not empty.any()
