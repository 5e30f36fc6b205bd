"""Tests of the injection engine (science/lensing/injection.py): lenstronomy, analytic values,
inputs.

The CuPy variants run when CuPy and a GPU are present and are skipped otherwise.
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


def _draw(n: int, seed: int, bands: int = 3) -> dict[str, np.ndarray]:
    """Random parameters over the prior ranges of issue 10 (offsets up to 1.5 theta_E)."""
    rng = np.random.default_rng(seed)
    te = rng.uniform(0.5, 3.0, n)
    off = rng.uniform(0.0, 1.5, n) * te
    ang = rng.uniform(0.0, 2 * np.pi, n)
    return {
        "theta_e": te,
        "source_x": off * np.cos(ang),
        "source_y": off * np.sin(ang),
        "r_eff": rng.uniform(0.05, 1.0, n),
        "n_sersic": rng.uniform(0.5, 4.0, n),
        "axis_ratio": rng.uniform(0.3, 1.0, n),
        "position_angle": rng.uniform(0.0, np.pi, n),
        "flux": mag_to_nanomaggies(rng.uniform(19.0, 24.0, (n, bands))),
        "psf_fwhm": rng.uniform(0.9, 1.8, (n, bands)),
    }


def _render(p: dict[str, np.ndarray], xp: ModuleType = np, **kw: object) -> np.ndarray:
    args = [
        p[k]
        for k in (
            "theta_e",
            "source_x",
            "source_y",
            "r_eff",
            "n_sersic",
            "axis_ratio",
            "position_angle",
            "flux",
        )
    ]
    return _to_np(INJ.render_arcs(*args, p.get("psf_fwhm"), xp=xp, **kw))


# --------------------------------------------------------------------------------------
# lenstronomy reference
# --------------------------------------------------------------------------------------


class _Lenstronomy:
    """SIS + SERSIC_ELLIPSE ImageModel, supersampling 4, GAUSSIAN PSF (or none)."""

    def __init__(self) -> None:
        require_module("lenstronomy", "the engine is tested against lenstronomy")
        from lenstronomy.Data.imaging_data import ImageData
        from lenstronomy.LensModel.lens_model import LensModel
        from lenstronomy.LightModel.light_model import LightModel
        from lenstronomy.Util import util

        _, _, ra0, dec0, _, _, pix2coord, _ = util.make_grid_with_coordtransform(
            NPIX, PIX, inverse=False
        )
        self.data = ImageData(
            image_data=np.zeros((NPIX, NPIX)),
            ra_at_xy_0=ra0,
            dec_at_xy_0=dec0,
            transform_pix2angle=pix2coord,
        )
        self.lens = LensModel(["SIS"])
        self.light = LightModel(["SERSIC_ELLIPSE"])

    def image(self, p: dict[str, np.ndarray], i: int, band: int, psf: bool) -> np.ndarray:
        from lenstronomy.Data.psf import PSF
        from lenstronomy.ImSim.image_model import ImageModel
        from lenstronomy.Util import param_util

        kpsf = PSF("GAUSSIAN", fwhm=float(p["psf_fwhm"][i, band])) if psf else PSF("NONE")
        model = ImageModel(
            self.data,
            kpsf,
            lens_model_class=self.lens,
            source_model_class=self.light,
            kwargs_numerics={"supersampling_factor": 4, "supersampling_convolution": False},
        )
        e1, e2 = param_util.phi_q2_ellipticity(p["position_angle"][i], p["axis_ratio"][i])
        kw = {
            "amp": 1.0,
            "R_sersic": p["r_eff"][i],
            "n_sersic": p["n_sersic"][i],
            "e1": e1,
            "e2": e2,
            "center_x": p["source_x"][i],
            "center_y": p["source_y"][i],
        }
        kw["amp"] = p["flux"][i, band] / self.light.total_flux([kw])[0]
        return model.image(
            kwargs_lens=[{"theta_E": p["theta_e"][i], "center_x": 0.0, "center_y": 0.0}],
            kwargs_source=[kw],
        )


@pytest.fixture(scope="module")
def lenstronomy_ref() -> _Lenstronomy:
    return _Lenstronomy()


def _assert_matches(ours: np.ndarray, ref: np.ndarray, what: str) -> None:
    peak = ref.max()
    err = np.abs(ours - ref).max() / peak
    assert err < 0.01, f"{what}: max |diff| = {err:.2e} of the peak"
    flux_err = abs(ours.sum() / ref.sum() - 1.0)
    assert flux_err < 0.005, f"{what}: total flux off by {flux_err:.2e}"


@pytest.mark.parametrize("xp", XPS)
def test_matches_lenstronomy_on_random_parameter_sets(
    xp: ModuleType, lenstronomy_ref: _Lenstronomy
) -> None:
    """60 random sets x 3 bands: within 1% of the peak and 0.5% in total flux."""
    p = _draw(60, seed=10)
    ours = _render(p, xp, bn="lenstronomy")
    assert ours.shape == (60, 3, NPIX, NPIX)
    assert ours.dtype == np.float32
    for i in range(60):
        band = i % 3  # one lenstronomy render per set keeps the test quick; bands rotate
        ref = lenstronomy_ref.image(p, i, band, psf=True)
        _assert_matches(ours[i, band], ref, f"set {i} band {band}")


def test_no_psf_path_matches_lenstronomy(lenstronomy_ref: _Lenstronomy) -> None:
    p = _draw(8, seed=11)
    p["psf_fwhm"] = None
    ours = _render(p, bn="lenstronomy")
    for i in range(8):
        _assert_matches(ours[i, 0], lenstronomy_ref.image(p, i, 0, psf=False), f"set {i}")


def test_all_bands_and_extreme_corners_match_full_supersampling() -> None:
    """The adaptive window/supersampling vs supersampling every pixel, 100 sets
    plus the corners of the prior box: the tolerance that the speed-ups must respect."""
    p = _draw(100, seed=12)
    corners = np.array(np.meshgrid([0.5, 3.0], [0.05, 1.0], [0.5, 4.0], [0.3, 1.0])).reshape(4, -1)
    k = corners.shape[1]
    for key, row in zip(("theta_e", "r_eff", "n_sersic", "axis_ratio"), corners, strict=True):
        p[key] = np.concatenate([p[key], row])
    for key, val in (("source_x", 1.5 * corners[0]), ("source_y", 0.0 * corners[0])):
        p[key] = np.concatenate([p[key], val])
    p["position_angle"] = np.concatenate([p["position_angle"], np.full(k, 0.3)])
    p["flux"] = np.concatenate([p["flux"], np.ones((k, 3))])
    p["psf_fwhm"] = np.concatenate([p["psf_fwhm"], np.full((k, 3), 1.0)])
    fast = _render(p)
    full = _render(p, adaptive=False)  # float32 (== float64 to 1e-4, test below)
    peak = full.max(axis=(2, 3))
    err = np.abs(fast - full).max(axis=(2, 3)) / peak
    flux_err = np.abs(fast.sum(axis=(2, 3)) / full.sum(axis=(2, 3)) - 1.0)
    assert err.max() < 0.01, f"worst set {np.unravel_index(err.argmax(), err.shape)}"
    assert flux_err.max() < 0.005


def test_float32_matches_float64() -> None:
    p = _draw(6, seed=13)
    f32 = _render(p, adaptive=False)
    f64 = _render(p, adaptive=False, dtype=np.float64)
    assert f32.dtype == np.float32 and f64.dtype == np.float64
    err = np.abs(f32 - f64).max(axis=(2, 3)) / f64.max(axis=(2, 3))
    assert err.max() < 1e-4
    np.testing.assert_allclose(f32.sum(axis=(2, 3)), f64.sum(axis=(2, 3)), rtol=1e-4)


def test_exact_bn_differs_from_lenstronomy_bn_by_the_stated_amount() -> None:
    """Default b_n is the exact root; lenstronomy's linear b_n changes the profile shape
    (the total flux to infinity is normalised in both): the relative b_n difference is 3%
    at n = 0.5, 0.4% at n = 1 and < 0.1% at n >= 2, the peak difference follows."""
    p = _draw(40, seed=14)
    p["psf_fwhm"] = None
    exact, linear = _render(p), _render(p, bn="lenstronomy")
    diff = np.abs(exact - linear).max(axis=(2, 3))[:, 0] / linear.max(axis=(2, 3))[:, 0]
    n = p["n_sersic"]
    assert diff.max() < 0.05
    assert diff[n >= 1.0].max() < 0.01
    assert diff[n >= 2.0].max() < 0.002


def test_deterministic_bytes_and_band_scaling() -> None:
    p = _draw(10, seed=15)
    p["flux"][:, 1] = 2.0 * p["flux"][:, 0]
    p["psf_fwhm"][:, 1] = p["psf_fwhm"][:, 0]
    a, b = _render(p), _render(p)
    assert a.tobytes() == b.tobytes()
    many = _draw(900, seed=19)  # several groups of injections, rendered in 2 threads
    assert _render(many, workers=2).tobytes() == _render(many).tobytes()
    np.testing.assert_allclose(a[:, 1], 2.0 * a[:, 0], rtol=1e-6, atol=1e-12)


# --------------------------------------------------------------------------------------
# Analytic checks
# --------------------------------------------------------------------------------------


def _source_averaged_magnification(te: float, p: dict[str, np.ndarray]) -> float:
    """SIS magnification averaged over the source light, by quadrature in the source
    plane (independent of the image-plane ray shooting): |mu| = 2 theta_E / |beta| summed
    over both images for |beta| < theta_E, 1 + theta_E / |beta| beyond."""
    h = 0.002
    c = np.arange(-2.5, 2.5, h) + h / 2
    bx, by = np.meshgrid(c + p["source_x"][0], c + p["source_y"][0])
    e1, e2 = P.ellipticity_from_phi_q(p["position_angle"][0], p["axis_ratio"][0])
    sb = P.sersic_surface_brightness(
        bx,
        by,
        1.0,
        p["r_eff"][0],
        p["n_sersic"][0],
        e1,
        e2,
        p["source_x"][0],
        p["source_y"][0],
    )
    b = np.hypot(bx, by)
    mu = np.where(b < te, 2 * te / b, 1 + te / b)
    return float((sb * mu).sum() / sb.sum())


@pytest.mark.parametrize("xp", XPS)
@pytest.mark.parametrize("beta_frac", [0.3, 0.5, 1.6])
def test_lensed_flux_is_magnification_times_source_flux(xp: ModuleType, beta_frac: float) -> None:
    """Compact source away from the caustic: lensed flux = magnification x source flux,
    with the SIS magnification (2 theta_E / beta for two images, 1 + theta_E / beta for
    one) averaged over the source light; supersampling 8 resolves the source."""
    te, beta = 1.5, beta_frac * 1.5
    p = {
        "theta_e": np.array([te]),
        "source_x": np.array([beta * np.cos(0.7)]),
        "source_y": np.array([beta * np.sin(0.7)]),
        "r_eff": np.array([0.15]),
        "n_sersic": np.array([1.0]),
        "axis_ratio": np.array([0.8]),
        "position_angle": np.array([0.2]),
        "flux": np.array([[1.0, 3.0]]),
        "psf_fwhm": np.array([[1.0, 1.4]]),
    }
    mu = _source_averaged_magnification(te, p)
    point = 2 * te / beta if beta < te else 1 + te / beta
    assert mu == pytest.approx(point, rel=0.15)  # finite-source correction is small
    img = _render(p, xp, supersample=8)
    np.testing.assert_allclose(img.sum(axis=(2, 3))[0], mu * p["flux"][0], rtol=0.005)
    p["psf_fwhm"] = None
    img = _render(p, xp, supersample=8)
    np.testing.assert_allclose(img.sum(axis=(2, 3))[0], mu * p["flux"][0], rtol=0.005)


def test_unlensed_source_keeps_its_flux_and_centre() -> None:
    p = {
        "theta_e": np.array([0.0]),
        "source_x": np.array([0.262 * 3]),
        "source_y": np.array([-0.262 * 5]),
        "r_eff": np.array([0.4]),
        "n_sersic": np.array([1.0]),
        "axis_ratio": np.array([1.0]),
        "position_angle": np.array([0.0]),
        "flux": np.array([[5.0]]),
        "psf_fwhm": np.array([[1.2]]),
    }
    img = _render(p)[0, 0]
    assert img.sum() == pytest.approx(5.0, rel=2e-3)
    row, col = np.unravel_index(img.argmax(), img.shape)
    assert (row, col) == (50 - 5, 50 + 3)  # +x = +column, +y = +row


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
    # pixel integration broadens: variance grows by 1/12 pixel^2
    d = np.arange(k.shape[1]) - (k.shape[1] - 1) // 2
    var = (ki * d**2).sum(axis=1)
    np.testing.assert_allclose(var, sigma**2 + 1.0 / 12.0, rtol=1e-3)
    with pytest.raises(ValueError, match="psf_kernel"):
        INJ.gaussian_kernel_1d(fwhm, PIX, kind="moffat")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------
# inject: Poisson noise, clipping, hosts untouched
# --------------------------------------------------------------------------------------


def _arcs_and_hosts(n: int = 6) -> tuple[np.ndarray, np.ndarray]:
    p = _draw(n, seed=16)
    arcs = _render(p)
    rng = np.random.default_rng(3)
    hosts = rng.normal(0.0, 0.01, arcs.shape).astype(np.float32)
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
    # sample variance of 4000 draws: relative scatter sqrt(2/4000) ~ 2.2%, pooled per band
    for b in range(2):
        ratio = var[b][lit[b]].sum() / expected_var[b][lit[b]].sum()
        assert ratio == pytest.approx(1.0, abs=0.02)
        # per pixel: 5 sigma of the variance estimator (plus the Poisson skewness)
        z = (var[b][lit[b]] - expected_var[b][lit[b]]) / (
            expected_var[b][lit[b]] * np.sqrt(2 / 4000) + 1.0 / (gain[b] ** 2 * 4000)
        )
        assert np.abs(z).max() < 6
    np.testing.assert_array_less(np.abs(mean), 5 * np.sqrt(expected_var / 4000) + 1e-9)
    assert np.all(dev[:, ~lit] == 0)  # no flux, no noise


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
    # colours (band ratios) kept; faint arcs untouched
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


# --------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("theta_e", np.nan, "theta_e"),
        ("theta_e", -0.5, "theta_e"),
        ("r_eff", np.nan, "r_eff"),
        ("r_eff", -0.1, "r_eff"),
        ("r_eff", 0.0, "r_eff"),
        ("flux", -1.0, "flux"),
        ("flux", np.nan, "flux"),
        ("axis_ratio", 0.0, "axis_ratio"),
        ("axis_ratio", 1.2, "axis_ratio"),
        ("axis_ratio", np.nan, "axis_ratio"),
        ("n_sersic", np.nan, "n_sersic"),
        ("psf_fwhm", -1.0, "psf_fwhm"),
        ("source_x", np.inf, "source_x"),
    ],
)
def test_bad_parameter_values_name_the_parameter(key: str, value: float, match: str) -> None:
    p = _draw(4, seed=17)
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
    ],
)
def test_mismatched_shapes_name_the_parameter(key: str, shape: tuple[int, ...], match: str) -> None:
    p = _draw(4, seed=18)
    p[key] = np.ones(shape)
    with pytest.raises(ValueError, match=match):
        _render(p)


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


def test_cpu_path_never_imports_cupy() -> None:
    code = (
        "import sys, numpy as np\n"
        "from stronglens_assets.science.lensing.injection import render_arcs, inject\n"
        "a = render_arcs(*[np.array([1.0])] * 3, np.array([0.2]), np.array([1.0]),"
        " np.array([0.7]), np.array([0.0]), np.ones((1, 3)), np.ones((1, 3)))\n"
        "inject(np.zeros_like(a), a, poisson_gain=10.0, rng=np.random.default_rng(0))\n"
        "assert 'cupy' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
