"""Tests of the injection engine (science/lensing/injection.py): lenstronomy, independent
quadratures, the fused CPU kernel against the array path, per-injection truth, inputs.

The CuPy variants run when CuPy and a GPU are present and are skipped otherwise (a broken
CuPy install fails instead).
"""

from __future__ import annotations

import subprocess
import sys
from types import ModuleType

import numpy as np
import pytest
import scipy.ndimage

from stronglens_assets.science.core.arrays import gpu_array_module
from stronglens_assets.science.core.units import mag_to_nanomaggies
from stronglens_assets.science.lensing import injection as INJ
from stronglens_assets.science.lensing import profiles as P
from stronglens_assets.science.lensing.elementwise import xp_ops
from stronglens_assets.testing.lensing import (
    LENS_KEYWORDS,
    LenstronomyReference,
    random_arc_parameters,
    render_arc_set,
)
from stronglens_assets_tests.harness import require_module

PIX = 0.262
NPIX = 101

# None only when CuPy is not installed or no GPU is present; a broken install fails here
_CUPY = gpu_array_module()
XPS = [
    pytest.param(np, id="numpy"),
    pytest.param(
        _CUPY, id="cupy", marks=pytest.mark.skipif(_CUPY is None, reason="needs CuPy and a GPU")
    ),
]


def _to_np(a: object) -> np.ndarray:
    return np.asarray(a.get()) if hasattr(a, "get") and not isinstance(a, np.ndarray) else a


def _render(p: dict, xp: ModuleType = np, **kw: object) -> np.ndarray:
    if xp is not np:
        p = {k: (None if v is None else xp.asarray(v)) for k, v in p.items()}
    return _to_np(render_arc_set(p, xp=xp, **kw))


def _one(**values: float) -> dict[str, np.ndarray]:
    """One parameter set (scalars -> length-1 arrays, flux/psf (1, B))."""
    p = {
        k: np.atleast_1d(np.asarray(v, dtype=float))
        for k, v in values.items()
        if k not in ("flux", "psf_fwhm")
    }
    p["flux"] = np.atleast_2d(np.asarray(values["flux"], dtype=float))
    p["psf_fwhm"] = (
        None if values.get("psf_fwhm") is None else np.atleast_2d(np.asarray(values["psf_fwhm"]))
    )
    return p


@pytest.fixture(scope="module")
def lenstronomy_ref() -> LenstronomyReference:
    require_module("lenstronomy", "the engine is tested against lenstronomy")
    return LenstronomyReference(NPIX, PIX)


def _assert_matches(ours: np.ndarray, ref: np.ndarray, label: str) -> tuple[float, float]:
    peak = float(ref.max())
    err = float(np.abs(ours - ref).max()) / peak
    flux = abs(float(ours.sum()) / float(ref.sum()) - 1.0)
    assert err <= 0.01, f"{label}: max |diff| = {err:.2%} of the peak"
    assert flux <= 0.005, f"{label}: flux differs by {flux:.2%}"
    return err, flux


# --------------------------------------------------------------------------------------
# lenstronomy: SIE + SHEAR + SERSIC_ELLIPSE
# --------------------------------------------------------------------------------------


def _paper_sets(n: int, seed: int) -> dict[str, np.ndarray]:
    """Paper-prior sets with q_lens = 1 and 0.5 forced on some (the q -> 1 branch)."""
    p = random_arc_parameters(n, seed)
    p["lens_axis_ratio"][: n // 6] = 1.0
    p["lens_axis_ratio"][n // 6 : n // 3] = 0.5
    return p


def test_sie_shear_matches_lenstronomy_with_psf(lenstronomy_ref: LenstronomyReference) -> None:
    """60 sets from the paper's priors (theta_E 0.5-3", sub-pixel lens centres, 10 with
    q_lens = 1 and 10 with 0.5), one band each (bands rotate): max |diff| <= 1% of the peak,
    flux <= 0.5% (lenstronomy's b_n)."""
    p = _paper_sets(60, seed=10)
    ours = _render(p, bn="lenstronomy")
    assert ours.shape == (60, 3, NPIX, NPIX) and ours.dtype == np.float32
    errs = [
        _assert_matches(ours[i, i % 3], lenstronomy_ref.image(p, i, i % 3), f"set {i}")[0]
        for i in range(60)
    ]
    assert np.median(errs) < 0.003


def test_sie_shear_matches_lenstronomy_without_psf(lenstronomy_ref: LenstronomyReference) -> None:
    p = _paper_sets(12, seed=11)
    ours = _render({**p, "psf_fwhm": None}, bn="lenstronomy")
    for i in range(12):
        _assert_matches(ours[i, 1], lenstronomy_ref.image(p, i, 1, psf=False), f"set {i}")


def test_wide_ranges_match_lenstronomy(lenstronomy_ref: LenstronomyReference) -> None:
    """The engine's earlier test ranges (n up to 4, r_eff 0.05-1", offsets to 1.5 theta_E)."""
    p = random_arc_parameters(30, seed=12, ranges="wide")
    ours = _render(p, bn="lenstronomy")
    for i in range(30):
        _assert_matches(ours[i, i % 3], lenstronomy_ref.image(p, i, i % 3), f"set {i}")


def test_sis_default_matches_lenstronomy(lenstronomy_ref: LenstronomyReference) -> None:
    """Without lens keywords: the SIS at the stamp centre (today's model)."""
    p = random_arc_parameters(12, seed=13, lens="sis", ranges="wide")
    ours = _render(p, bn="lenstronomy")
    for i in range(12):
        _assert_matches(ours[i, 0], lenstronomy_ref.image(p, i, 0), f"set {i}")


def test_round_sie_is_the_sis_without_singularity() -> None:
    """q_lens = 1 exactly is the default (same bytes); q_lens -> 1 is continuous."""
    p = random_arc_parameters(8, seed=14, lens="sis")
    sis = _render(p)
    explicit = {
        **p,
        "lens_axis_ratio": np.ones(8),
        "lens_position_angle": np.zeros(8),
        "shear_gamma1": np.zeros(8),
        "shear_gamma2": np.zeros(8),
        "lens_center_x": np.zeros(8),
        "lens_center_y": np.zeros(8),
    }
    assert _render(explicit).tobytes() == sis.tobytes()
    near = _render({**explicit, "lens_axis_ratio": np.full(8, 1 - 1e-7)})
    assert np.isfinite(near).all()
    assert np.abs(near - sis).max() <= 1e-5 * sis.max()


# --------------------------------------------------------------------------------------
# Independent quadratures: flux = magnification x source flux
# --------------------------------------------------------------------------------------


def _image_plane_quadrature(p: dict, i: int, sub: int = 12) -> float:
    """Lensed flux of set ``i`` (unit source flux) on the stamp by brute force: lenstronomy's
    ray shooting and surface brightness on a uniform grid of pixel / ``sub`` spacing."""
    from lenstronomy.LightModel.light_model import LightModel

    ref = LenstronomyReference(NPIX, PIX)
    lens, source = ref.kwargs({**p, "flux": np.ones_like(p["flux"])}, i, 0)
    model = ref.sie if "lens_axis_ratio" in p else ref.sis
    h = PIX / sub
    c = (np.arange(NPIX * sub) - (NPIX * sub - 1) / 2) * h
    total = 0.0
    for rows in np.array_split(np.arange(c.size), 8):
        x, y = np.meshgrid(c, c[rows])
        bx, by = model.ray_shooting(x.ravel(), y.ravel(), lens)
        total += float(LightModel(["SERSIC_ELLIPSE"]).surface_brightness(bx, by, source).sum())
    return total * h * h


@pytest.mark.parametrize("seed", [20, 21, 22])
def test_lensed_flux_is_magnification_times_source_flux(seed: int) -> None:
    """SIE + shear: the rendered arc (no PSF, supersampling 8) holds mu x F, with the
    source-averaged magnification mu from an independent image-plane quadrature."""
    require_module("lenstronomy", "the engine is tested against lenstronomy")
    p = random_arc_parameters(1, seed)
    p["flux"] = np.array([[1.0, 2.0, 4.0]])
    mu = _image_plane_quadrature(p, 0)
    assert mu > 1.5  # strongly lensed
    img = _render({**p, "psf_fwhm": None}, supersample=8, bn="lenstronomy")
    np.testing.assert_allclose(img.sum(axis=(2, 3))[0], mu * p["flux"][0], rtol=0.005)


@pytest.mark.parametrize(("beta_x", "beta_y", "images"), [(1.0, 0.6, 2), (1.6, 0.3, 1)])
def test_compact_source_flux_is_the_point_magnification(
    beta_x: float, beta_y: float, images: int
) -> None:
    """A compact source away from the caustics: mu x F with mu = sum |mu_i| over the images
    that lenstronomy's lens-equation solver finds (the analytic point magnification)."""
    require_module("lenstronomy", "the engine is tested against lenstronomy")
    from lenstronomy.LensModel.Solver.lens_equation_solver import LensEquationSolver

    cx, cy = 0.05, -0.03
    p = _one(
        theta_e=1.5,
        source_x=cx + beta_x,
        source_y=cy + beta_y,
        r_eff=0.08,
        n_sersic=1.0,
        axis_ratio=0.8,
        position_angle=0.3,
        flux=[2.0],
        lens_axis_ratio=0.7,
        lens_position_angle=0.4,
        shear_gamma1=0.03,
        shear_gamma2=-0.02,
        lens_center_x=cx,
        lens_center_y=cy,
    )
    ref = LenstronomyReference(NPIX, PIX)
    lens, _ = ref.kwargs({**p, "psf_fwhm": np.ones((1, 1))}, 0, 0)
    xs, ys = LensEquationSolver(ref.sie).image_position_from_source(
        cx + beta_x, cy + beta_y, lens, min_distance=0.01, search_window=8, precision_limit=1e-10
    )
    assert len(xs) == images
    mu = float(np.abs(ref.sie.magnification(xs, ys, lens)).sum())
    img = _render(p, supersample=16)  # sub-pixels of 0.016" resolve the 0.08" source
    # the finite source (R = 0.08") changes the magnification by ~0.3% here
    assert img.sum() == pytest.approx(2.0 * mu, rel=0.005)


def test_unlensed_source_keeps_its_flux_and_centre() -> None:
    p = _one(
        theta_e=0.0,
        source_x=PIX * 3,
        source_y=-PIX * 5,
        r_eff=0.4,
        n_sersic=1.0,
        axis_ratio=1.0,
        position_angle=0.0,
        flux=[5.0],
        psf_fwhm=[1.2],
    )
    img = _render(p)[0, 0]
    assert img.sum() == pytest.approx(5.0, rel=2e-3)
    row, col = np.unravel_index(img.argmax(), img.shape)
    assert (row, col) == (50 - 5, 50 + 3)  # +x = +column, +y = +row


def test_einstein_ring_is_centred_on_the_lens() -> None:
    """A source behind an off-centre lens makes a ring of radius ~theta_E around the lens."""
    cx, cy, te = 1.3, -0.8, 1.5
    p = _one(
        theta_e=te,
        source_x=cx,
        source_y=cy,
        r_eff=0.1,
        n_sersic=1.0,
        axis_ratio=1.0,
        position_angle=0.0,
        flux=[1.0],
        lens_center_x=cx,
        lens_center_y=cy,
    )
    img = _render(p)[0, 0].astype(np.float64)
    c = (np.arange(NPIX) - 50) * PIX
    x, y = np.meshgrid(c, c)
    w = img / img.sum()
    assert (w * x).sum() == pytest.approx(cx, abs=0.01)
    assert (w * y).sum() == pytest.approx(cy, abs=0.01)
    assert (w * np.hypot(x - cx, y - cy)).sum() == pytest.approx(te, rel=0.05)


# --------------------------------------------------------------------------------------
# The approximations and the two backends
# --------------------------------------------------------------------------------------


def test_adaptive_matches_full_supersampling() -> None:
    """Windows + adaptive supersampling + windowed PSF vs every pixel supersampled and
    convolved, on paper and wide sets plus prior-box corners."""
    p = random_arc_parameters(60, seed=30)
    wide = random_arc_parameters(40, seed=31, ranges="wide")
    fast = np.concatenate([_render(p), _render(wide)])
    full = np.concatenate([_render(p, adaptive=False), _render(wide, adaptive=False)])
    peak = full.max(axis=(2, 3))
    err = np.abs(fast - full).max(axis=(2, 3)) / peak
    flux_err = np.abs(fast.sum(axis=(2, 3)) / full.sum(axis=(2, 3)) - 1.0)
    assert err.max() < 0.005, f"worst set {np.unravel_index(err.argmax(), err.shape)}"
    assert flux_err.max() < 0.002


def _with_clumps(p: dict, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    n = p["theta_e"].size
    frac = rng.uniform(0.02, 0.1, (n, 3))
    frac[::3, 2] = 0.0  # some injections have fewer clumps
    return {
        **p,
        "clump_x": rng.normal(0, 0.2, (n, 3)),
        "clump_y": rng.normal(0, 0.2, (n, 3)),
        "clump_sigma": rng.uniform(0.03, 0.1, (n, 3)),
        "clump_flux_fraction": frac,
    }


@pytest.mark.parametrize(
    "options",
    [{}, {"adaptive": False}, {"supersample": 1}, {"psf_kernel": "integrated"}, {"clumps": True}],
    ids=["default", "not-adaptive", "supersample-1", "integrated-psf", "clumps"],
)
def test_fused_kernel_equals_the_array_path(options: dict) -> None:
    """The numba kernel runs the array path's float32 operations: unconvolved images are
    identical bit for bit; convolved ones differ by the convolution's summation order."""
    opts = dict(options)
    p = random_arc_parameters(40, seed=32)
    wide = random_arc_parameters(20, seed=33, ranges="wide")
    p = {k: np.concatenate([v, wide[k]]) for k, v in p.items()}
    if opts.pop("clumps", False):
        p = _with_clumps(p, 34)
    unit_fast = _render({**p, "psf_fwhm": None}, backend="numba", **opts)
    unit_ref = _render({**p, "psf_fwhm": None}, backend="xp", **opts)
    assert unit_fast.tobytes() == unit_ref.tobytes()
    fast = _render(p, backend="numba", **opts)
    ref = _render(p, backend="xp", **opts)
    peak = ref.max(axis=(2, 3), keepdims=True)
    assert np.abs(fast - ref).max() <= 2e-6 * peak.max()
    assert (np.abs(fast - ref) / peak).max() <= 2e-6
    np.testing.assert_allclose(fast.sum(axis=(2, 3)), ref.sum(axis=(2, 3)), rtol=1e-5)


def test_float32_matches_float64() -> None:
    p = random_arc_parameters(6, seed=35)
    f32 = _render(p, adaptive=False)
    f64 = _render(p, adaptive=False, dtype=np.float64, backend="xp")
    assert f32.dtype == np.float32 and f64.dtype == np.float64
    err = np.abs(f32 - f64).max(axis=(2, 3)) / f64.max(axis=(2, 3))
    assert err.max() < 1e-4
    np.testing.assert_allclose(f32.sum(axis=(2, 3)), f64.sum(axis=(2, 3)), rtol=1e-4)


def test_float32_math_is_accurate() -> None:
    """The engine's float32 exp/log/atan/atanh against float64 NumPy (a few ulp)."""
    ops = xp_ops(np, np.float32)
    rng = np.random.default_rng(36)
    cases = [
        (ops.exp, np.exp, rng.uniform(-87, 88, 200_000), 1.2e-7),
        (ops.log, np.log, np.exp(rng.uniform(-80, 80, 200_000)), 1.0e-7),
        (ops.atan, np.arctan, np.tan(rng.uniform(-1.57, 1.57, 200_000)), 2.2e-7),
        (ops.atanh, np.arctanh, rng.uniform(-0.999, 0.999, 200_000), 1.6e-7),
        (ops.atanh, np.arctanh, rng.uniform(-1e-4, 1e-4, 20_000), 1.6e-7),
    ]
    for ours, ref, x, tol in cases:
        x32 = x.astype(np.float32)
        want = ref(x32.astype(np.float64))
        got = ours(x32).astype(np.float64)
        assert np.max(np.abs(got - want) / np.abs(want)) < tol, ours.__name__
    assert ops.exp(np.float32([-100.0]))[0] == 0.0


def test_exact_bn_differs_from_lenstronomy_bn_by_the_stated_amount() -> None:
    p = random_arc_parameters(40, seed=37, ranges="wide")
    p["psf_fwhm"] = None
    exact, linear = _render(p), _render(p, bn="lenstronomy")
    diff = np.abs(exact - linear).max(axis=(2, 3))[:, 0] / linear.max(axis=(2, 3))[:, 0]
    n = p["n_sersic"]
    assert diff.max() < 0.05
    assert diff[n >= 1.0].max() < 0.01
    assert diff[n >= 2.0].max() < 0.002


def test_deterministic_bytes_band_scaling_and_batch_independence() -> None:
    p = random_arc_parameters(10, seed=38)
    p["flux"][:, 1] = 2.0 * p["flux"][:, 0]
    p["psf_fwhm"][:, 1] = p["psf_fwhm"][:, 0]
    a, b = _render(p), _render(p)
    assert a.tobytes() == b.tobytes()
    np.testing.assert_allclose(a[:, 1], 2.0 * a[:, 0], rtol=1e-6, atol=1e-12)
    many = random_arc_parameters(900, seed=39)  # several groups, rendered in 2 threads
    assert _render(many, workers=2).tobytes() == _render(many).tobytes()
    # an injection does not depend on the others in its batch
    alone = _render({k: v[5:6] for k, v in many.items()})
    assert alone.tobytes() == _render(many)[5:6].tobytes()
    for backend in ("numba", "xp"):
        unit_all = _render({**many, "psf_fwhm": None}, backend=backend)[[5, 700]]
        unit_two = _render({k: v[[5, 700]] for k, v in many.items() if k != "psf_fwhm"}
                           | {"psf_fwhm": None}, backend=backend)  # fmt: skip
        assert unit_all.tobytes() == unit_two.tobytes(), backend


def test_colours_are_the_band_flux_ratios() -> None:
    """All bands share the unit image: band ratios of the arc are the input colours."""
    p = random_arc_parameters(20, seed=40)
    img = _render({**p, "psf_fwhm": None})
    totals = img.sum(axis=(2, 3), dtype=np.float64)
    colours = -2.5 * np.log10(totals / totals[:, 1:2])
    np.testing.assert_allclose(colours, -2.5 * np.log10(p["flux"] / p["flux"][:, 1:2]), atol=1e-5)


def test_chromatic_psf_widths() -> None:
    """A point-like unlensed source rendered with the paper's per-band FWHM (1.05, 1, 0.94) x r
    has per-band second moments of those Gaussians."""
    fwhm_r = 1.3
    p = _one(
        theta_e=0.0,
        source_x=0.0,
        source_y=0.0,
        r_eff=0.01,
        n_sersic=1.0,
        axis_ratio=1.0,
        position_angle=0.0,
        flux=[1.0, 1.0, 1.0],
        psf_fwhm=[1.05 * fwhm_r, fwhm_r, 0.94 * fwhm_r],
    )
    img = _render(p, adaptive=False)[0].astype(np.float64)
    c = (np.arange(NPIX) - 50) * PIX
    x, _ = np.meshgrid(c, c)
    sigma = np.sqrt([(im * x * x).sum() / im.sum() for im in img])
    # sampled Gaussian: second moment = sigma^2 (truncation at 5 sigma is negligible)
    np.testing.assert_allclose(sigma * 2.3548200450309493, p["psf_fwhm"][0], rtol=0.01)
    assert sigma[0] > sigma[1] > sigma[2]


def test_gaussian_kernel_conventions() -> None:
    fwhm = np.array([1.0, 1.3, 1.7])
    k = INJ.gaussian_kernel_1d(fwhm, PIX)
    sigma = fwhm / 2.3548200450309493 / PIX
    for row, s in zip(k, sigma, strict=True):
        delta = np.zeros(101)
        delta[50] = 1.0
        ref = scipy.ndimage.gaussian_filter1d(delta, s, mode="constant", truncate=5.0)
        r = (k.shape[1] - 1) // 2
        np.testing.assert_allclose(row, ref[50 - r : 51 + r], rtol=1e-10, atol=1e-15)
    ki = INJ.gaussian_kernel_1d(fwhm, PIX, kind="integrated")
    np.testing.assert_allclose(ki.sum(axis=1), 1.0)
    d = np.arange(k.shape[1]) - (k.shape[1] - 1) // 2
    var = (ki * d**2).sum(axis=1)
    np.testing.assert_allclose(var, sigma**2 + 1.0 / 12.0, rtol=1e-3)
    with pytest.raises(ValueError, match="psf_kernel"):
        INJ.gaussian_kernel_1d(fwhm, PIX, kind="moffat")  # type: ignore[arg-type]


def test_sie_max_deflection_bounds_the_deflection() -> None:
    """The window bound: no direction deflects more than sie_max_deflection; q = 1: theta_E."""
    from stronglens_assets.science.lensing.ray_tracing import sie_deflection

    rng = np.random.default_rng(41)
    t = rng.uniform(0, 2 * np.pi, 20_000)
    r = rng.uniform(0.01, 5, 20_000)
    for q in (0.3, 0.5, 0.8, 1.0):
        e1, e2 = P.ellipticity_from_phi_q(0.7, q)
        ax, ay = sie_deflection(r * np.cos(t), r * np.sin(t), 1.7, e1, e2)
        bound = float(INJ.sie_max_deflection(1.7, q))
        assert np.hypot(ax, ay).max() <= bound
        assert np.hypot(ax, ay).max() >= bound / 1.01
    assert float(INJ.sie_max_deflection(2.0, 1.0)) == pytest.approx(2.0, rel=2e-3)


# --------------------------------------------------------------------------------------
# Clumps
# --------------------------------------------------------------------------------------


def test_clumps_keep_the_flux_and_sit_where_placed() -> None:
    """Unlensed: the clumpy source still holds the flux; a bright compact clump is where its
    offset puts it."""
    p = _one(
        theta_e=0.0,
        source_x=0.0,
        source_y=0.0,
        r_eff=0.5,
        n_sersic=1.0,
        axis_ratio=1.0,
        position_angle=0.0,
        flux=[3.0],
        clump_x=[[PIX * 10, 0.0]],
        clump_y=[[-PIX * 4, 0.0]],
        clump_sigma=[[0.05, 0.1]],
        clump_flux_fraction=[[0.4, 0.0]],
    )
    p = {k: np.asarray(v, dtype=float) if k.startswith("clump") else v for k, v in p.items()}
    img = _render(p)[0, 0]
    assert img.sum() == pytest.approx(3.0, rel=2e-3)
    row, col = np.unravel_index(img.argmax(), img.shape)
    assert (row, col) == (50 - 4, 50 + 10)
    smooth = _render({k: v for k, v in p.items() if not k.startswith("clump")})[0, 0]
    assert smooth[50, 50] > img[50, 50]  # the Sersic holds 60% of the flux


# --------------------------------------------------------------------------------------
# Per-injection truth
# --------------------------------------------------------------------------------------


def test_arc_truth_lensed_magnitude_magnification_and_snr() -> None:
    p = random_arc_parameters(12, seed=50)
    arcs = _render(p)
    rng = np.random.default_rng(51)
    invvar = rng.uniform(1e3, 4e3, arcs.shape)
    invvar[0, :, 40:60, 40:60] = 0.0  # a masked patch
    truth = INJ.arc_truth(
        arcs,
        p["flux"],
        invvar,
        p["theta_e"],
        lens_center_x=p["lens_center_x"],
        lens_center_y=p["lens_center_y"],
    )
    total = arcs.astype(np.float64).sum(axis=(2, 3))
    np.testing.assert_allclose(truth.lensed_flux, total, rtol=1e-10)
    np.testing.assert_allclose(truth.lensed_mag, 22.5 - 2.5 * np.log10(total), atol=1e-9)
    np.testing.assert_allclose(truth.magnification, total / p["flux"], rtol=1e-10)
    assert (truth.magnification > 1).all()
    # the annulus S/N, one pixel at a time
    c = (np.arange(NPIX) - 50) * PIX
    for i in (0, 3):
        for b in range(3):
            signal = var = 0.0
            count = 0
            for row in range(NPIX):
                for col in range(NPIX):
                    r = np.hypot(c[col] - p["lens_center_x"][i], c[row] - p["lens_center_y"][i])
                    iv = invvar[i, b, row, col]
                    if abs(r - p["theta_e"][i]) <= 0.75 and iv > 0:
                        signal += float(arcs[i, b, row, col])
                        var += 1.0 / iv
                        count += 1
            assert truth.annulus_pixels[i, b] == count
            assert truth.arc_snr[i, b] == pytest.approx(signal / np.sqrt(var), rel=1e-9)
    columns = truth.columns(("g", "r", "z"))
    np.testing.assert_array_equal(columns["lensed_mag_r"], truth.lensed_mag[:, 1])
    wider = INJ.arc_truth(arcs, p["flux"], invvar, p["theta_e"], half_width=p["psf_fwhm"])
    assert (wider.annulus_pixels > 0).all()
    with pytest.raises(ValueError, match="half_width"):
        INJ.arc_truth(arcs, p["flux"], invvar, p["theta_e"], half_width=-1.0)
    with pytest.raises(ValueError, match="invvar"):
        INJ.arc_truth(arcs, p["flux"], invvar[:, :2], p["theta_e"])


# --------------------------------------------------------------------------------------
# inject: Poisson noise, clipping, hosts untouched
# --------------------------------------------------------------------------------------


def _arcs_and_hosts(n: int = 6) -> tuple[np.ndarray, np.ndarray]:
    arcs = _render(random_arc_parameters(n, seed=16))
    hosts = np.random.default_rng(3).normal(0.0, 0.01, arcs.shape).astype(np.float32)
    return arcs, hosts


@pytest.mark.parametrize("xp", XPS)
def test_inject_without_options_adds_and_copies(xp: ModuleType) -> None:
    arcs, hosts = _arcs_and_hosts()
    h, a = xp.asarray(hosts), xp.asarray(arcs)
    before = hosts.copy()
    rng = np.random.default_rng(0) if xp is np else xp.random.default_rng(0)
    out = _to_np(INJ.inject(h, a, rng=rng))
    np.testing.assert_array_equal(_to_np(h), before)
    np.testing.assert_allclose(out, hosts + arcs, rtol=0, atol=1e-7)
    assert out.dtype == np.float32


def test_poisson_variance_is_arc_flux_over_gain() -> None:
    arc = np.linspace(0.0, 2.0, 2 * 11 * 11, dtype=np.float32).reshape(1, 2, 11, 11)
    arcs = np.repeat(arc, 4000, axis=0)
    hosts = np.zeros_like(arcs)
    gain = np.array([50.0, 400.0])
    out = INJ.inject(hosts, arcs, poisson_gain=gain, rng=np.random.default_rng(42))
    dev = out.astype(np.float64) - arcs
    expected_var = arc[0].astype(np.float64) / gain[:, None, None]
    var = dev.var(axis=0)
    mean = dev.mean(axis=0)
    lit = expected_var > 0
    for b in range(2):
        ratio = var[b][lit[b]].sum() / expected_var[b][lit[b]].sum()
        assert ratio == pytest.approx(1.0, abs=0.02)
        z = (var[b][lit[b]] - expected_var[b][lit[b]]) / (
            expected_var[b][lit[b]] * np.sqrt(2 / 4000) + 1.0 / (gain[b] ** 2 * 4000)
        )
        assert np.abs(z).max() < 6
    np.testing.assert_array_less(np.abs(mean), 5 * np.sqrt(expected_var / 4000) + 1e-9)
    assert np.all(dev[:, ~lit] == 0)  # no flux, no noise


def test_poisson_is_the_papers_formula() -> None:
    """I' = I + (E' - E) / g with E = g max(I, 0), E' ~ Poisson(E): negative pixels keep their
    value; the same generator state gives the same draws as the formula written out."""
    arcs, hosts = _arcs_and_hosts(3)
    arcs[0, 0, :5, :5] = -0.01
    gain = np.array([150.0, 100.0, 200.0])
    out = INJ.inject(hosts, arcs, poisson_gain=gain, rng=np.random.default_rng(7))
    g = gain.reshape(1, -1, 1, 1)
    intensity = arcs.astype(np.float64)
    electrons = np.maximum(intensity, 0.0) * g
    drawn = np.random.default_rng(7).poisson(electrons)
    want = hosts + (intensity + (drawn - electrons) / g).astype(np.float32)
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(out[0, 0, :5, :5], (hosts + arcs)[0, 0, :5, :5])


def test_poisson_gain_per_cutout_and_band() -> None:
    """An (N, B) gain (each host's own) is the same formula with g per cutout and band; a
    row-constant (N, B) gain gives the bytes of the (B,) gain."""
    arcs, hosts = _arcs_and_hosts(3)
    per_band = np.array([150.0, 100.0, 200.0])
    gain = np.stack([per_band, 2 * per_band, 0.5 * per_band])
    out = INJ.inject(hosts, arcs, poisson_gain=gain, rng=np.random.default_rng(3))
    g = gain[:, :, None, None]
    intensity = arcs.astype(np.float64)
    electrons = np.maximum(intensity, 0.0) * g
    drawn = np.random.default_rng(3).poisson(electrons)
    want = hosts + (intensity + (drawn - electrons) / g).astype(np.float32)
    np.testing.assert_array_equal(out, want)
    tiled = np.tile(per_band, (len(arcs), 1))
    a = INJ.inject(hosts, arcs, poisson_gain=tiled, rng=np.random.default_rng(4))
    b = INJ.inject(hosts, arcs, poisson_gain=per_band, rng=np.random.default_rng(4))
    assert a.tobytes() == b.tobytes()
    with pytest.raises(ValueError, match=r"poisson_gain must be a scalar, shape \(B,\) or"):
        INJ.inject(hosts, arcs, poisson_gain=np.ones((len(arcs) + 1, 3)), rng=None)


def test_gain_1e12_equals_no_noise_within_float_error() -> None:
    arcs, hosts = _arcs_and_hosts()
    clean = INJ.inject(hosts, arcs, rng=np.random.default_rng(0))
    noisy = INJ.inject(hosts, arcs, poisson_gain=1e12, rng=np.random.default_rng(0))
    # Poisson scatter sqrt(arc / 1e12) = 1e-6 sqrt(arc) nanomaggies (< 1e-5 of the DR10 sky
    # noise): 6 sigma plus two float32 ulps of the sum
    bound = 6e-6 * np.sqrt(np.maximum(arcs, 0)) + 2 * np.spacing(np.abs(clean))
    assert np.all(np.abs(noisy - clean) <= bound)


def test_poisson_is_seeded() -> None:
    arcs, hosts = _arcs_and_hosts()
    a = INJ.inject(hosts, arcs, poisson_gain=100.0, rng=np.random.default_rng(5))
    b = INJ.inject(hosts, arcs, poisson_gain=100.0, rng=np.random.default_rng(5))
    assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("xp", XPS)
def test_clip_rescales_arcs_brighter_than_the_magnitude_limit(xp: ModuleType) -> None:
    arcs, hosts = _arcs_and_hosts(8)
    arcs[:4] *= 1000.0 / arcs[:4].sum(axis=(2, 3)).max(axis=1)[:, None, None, None]  # mag 15
    f_lim = 10.0  # mag 20 in nanomaggies
    totals = arcs.sum(axis=(2, 3), dtype=np.float64)
    out = _to_np(INJ.inject(xp.asarray(hosts), xp.asarray(arcs), clip=20.0, rng=None))
    added = (out.astype(np.float64) - hosts).sum(axis=(2, 3))
    bright = totals.max(axis=1) > f_lim
    assert bright[:4].all()
    np.testing.assert_allclose(added[bright].max(axis=1), f_lim, rtol=1e-4)
    np.testing.assert_allclose(
        added[bright] / added[bright].max(axis=1, keepdims=True),
        totals[bright] / totals[bright].max(axis=1, keepdims=True),
        rtol=1e-4,
    )
    np.testing.assert_allclose(out[~bright], (hosts + arcs)[~bright], atol=1e-7)
    assert np.all(added.max(axis=1) <= f_lim * (1 + 1e-4))


def test_clip_then_poisson() -> None:
    arcs, hosts = _arcs_and_hosts(4)
    arcs *= 1000.0 / arcs.sum(axis=(2, 3)).max(axis=1)[:, None, None, None]
    out = INJ.inject(hosts, arcs, clip=20.0, poisson_gain=1e12, rng=np.random.default_rng(1))
    added = (out.astype(np.float64) - hosts).sum(axis=(2, 3)).max(axis=1)
    np.testing.assert_allclose(added, 10.0, rtol=1e-3)
    assert mag_to_nanomaggies(20.0) == pytest.approx(10.0)


# --------------------------------------------------------------------------------------
# GPU: the CuPy array path renders what NumPy renders
# --------------------------------------------------------------------------------------


@pytest.mark.skipif(_CUPY is None, reason="needs CuPy and a GPU")
def test_cupy_renders_the_numpy_bytes() -> None:
    p = _with_clumps(random_arc_parameters(50, seed=60), 61)
    unit_gpu = _render({**p, "psf_fwhm": None}, xp=_CUPY)
    unit_cpu = _render({**p, "psf_fwhm": None})
    assert unit_gpu.tobytes() == unit_cpu.tobytes()
    gpu, cpu = _render(p, xp=_CUPY), _render(p)
    assert np.abs(gpu - cpu).max() <= 2e-6 * cpu.max()


# --------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("theta_e", np.nan, "theta_e .*index 2"),
        ("theta_e", -0.5, "theta_e .*index 2"),
        ("r_eff", np.nan, "r_eff .*index 2"),
        ("r_eff", -0.1, "r_eff .*index 2"),
        ("r_eff", 0.0, "r_eff .*index 2"),
        ("flux", -1.0, r"flux .*index \(2, 0\)"),
        ("flux", np.nan, r"flux .*index \(2, 0\)"),
        ("axis_ratio", 0.0, "axis_ratio .*index 2"),
        ("axis_ratio", 1.2, "axis_ratio .*index 2"),
        ("axis_ratio", np.nan, "axis_ratio .*index 2"),
        ("n_sersic", np.nan, "n_sersic .*index 2"),
        ("psf_fwhm", -1.0, r"psf_fwhm .*index \(2, 0\)"),
        ("source_x", np.inf, "source_x .*index 2"),
        ("lens_axis_ratio", 0.0, "lens_axis_ratio .*index 2"),
        ("lens_axis_ratio", 1.01, "lens_axis_ratio .*index 2"),
        ("lens_axis_ratio", np.nan, "lens_axis_ratio .*index 2"),
        ("shear_gamma1", 1.0, "shear_gamma1/shear_gamma2 .*index 2"),
        ("shear_gamma2", -0.99, "shear_gamma1/shear_gamma2 .*index 2"),
        ("lens_center_x", 14.0, "lens_center_x .*inside.*index 2"),
        ("lens_center_y", -13.3, "lens_center_y .*inside.*index 2"),
        ("lens_position_angle", np.nan, "lens_position_angle .*index 2"),
    ],
)
def test_bad_parameter_values_name_the_parameter(key: str, value: float, match: str) -> None:
    p = random_arc_parameters(4, seed=17)
    if key == "shear_gamma2":
        p["shear_gamma1"] = p["shear_gamma1"].copy()
        p["shear_gamma1"][2] = 0.2
    p[key] = p[key].copy()
    p[key][2] = value
    with pytest.raises(ValueError, match=match):
        _render(p)


@pytest.mark.parametrize(
    ("key", "shape", "match"),
    [
        ("source_x", (3,), "source_x"),
        ("r_eff", (5,), "r_eff"),
        ("position_angle", (4, 1), "position_angle"),
        ("flux", (4,), "flux"),
        ("flux", (3, 3), "flux"),
        ("psf_fwhm", (4, 2), "psf_fwhm"),
        ("lens_axis_ratio", (5,), "lens_axis_ratio"),
        ("lens_center_y", (3,), "lens_center_y"),
    ],
)
def test_mismatched_shapes_name_the_parameter(key: str, shape: tuple[int, ...], match: str) -> None:
    p = random_arc_parameters(4, seed=18)
    p[key] = np.full(shape, 0.5)
    with pytest.raises(ValueError, match=match):
        _render(p)


def test_bad_clumps_name_the_parameter() -> None:
    p = _with_clumps(random_arc_parameters(4, seed=19), 20)
    cases = [
        ("clump_sigma", (1, 0), 0.0, r"clump_sigma .*\(1, 0\)"),
        ("clump_flux_fraction", (2, 1), -0.1, r"clump_flux_fraction .*\(2, 1\)"),
        ("clump_flux_fraction", 3, 0.5, "clump_flux_fraction .*index 3"),
        ("clump_x", (0, 0), np.nan, "clump_x"),
    ]
    for key, where, value, match in cases:
        q = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in p.items()}
        q[key][where] = value
        with pytest.raises(ValueError, match=match):
            _render(q)
    with pytest.raises(ValueError, match="clump_y"):
        _render({**p, "clump_y": np.zeros((4, 2))})
    with pytest.raises(ValueError, match="missing"):
        _render({k: v for k, v in p.items() if k != "clump_sigma"})


def test_bad_engine_options() -> None:
    p = random_arc_parameters(2, seed=21)
    with pytest.raises(ValueError, match="backend"):
        _render(p, backend="gpu")
    with pytest.raises(ValueError, match="numba"):
        _render(p, backend="numba", dtype=np.float64)
    with pytest.raises(ValueError, match="dtype"):
        _render(p, dtype=np.int32)


def test_bad_inject_inputs_are_rejected_and_hosts_untouched() -> None:
    arcs, hosts = _arcs_and_hosts(3)
    bad = hosts.copy()
    bad[1, 2, 10, 10] = np.nan
    snapshot = bad.copy()
    with pytest.raises(ValueError, match=r"hosts .*cutout: 1"):
        INJ.inject(bad, arcs, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(bad, snapshot)
    with pytest.raises(ValueError, match="hosts and arcs"):
        INJ.inject(hosts, arcs[:2], rng=np.random.default_rng(0))
    nan_arcs = arcs.copy()
    nan_arcs[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="arcs"):
        INJ.inject(hosts, nan_arcs, rng=np.random.default_rng(0))
    for gain in (0.0, -5.0, np.nan, [1.0, 2.0]):
        with pytest.raises(ValueError, match="poisson_gain"):
            INJ.inject(hosts, arcs, poisson_gain=gain, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="clip"):
        INJ.inject(hosts, arcs, clip=float("nan"), rng=None)


def test_lens_keywords_are_the_engines() -> None:
    import inspect

    params = inspect.signature(INJ.render_arcs).parameters
    assert all(name in params for name in LENS_KEYWORDS)


def test_cpu_path_never_imports_cupy() -> None:
    code = (
        "import sys, numpy as np\n"
        "from stronglens_assets.science.lensing.injection import render_arcs, inject\n"
        "one = np.array([1.0])\n"
        "a = render_arcs(one, one, one, np.array([0.2]), one, np.array([0.7]), np.array([0.0]),"
        " np.ones((1, 3)), np.ones((1, 3)), lens_axis_ratio=np.array([0.7]))\n"
        "inject(np.zeros_like(a), a, poisson_gain=10.0, rng=np.random.default_rng(0))\n"
        "assert 'cupy' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
