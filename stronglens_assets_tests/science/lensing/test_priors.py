"""Injection priors: validation (errors name the field), sampling against analytic laws (KS
tests), R_e conventions, PSF per band, clumps, the D06 design's grid."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import stats

from stronglens_assets.config import ConfigError
from stronglens_assets.science.experiments.config import load_d06_config
from stronglens_assets.science.lensing.injection import LENS_KEYWORDS
from stronglens_assets.science.lensing.priors import (
    Distribution,
    injection_psf_fwhm,
    load_priors,
    priors_sha256,
    sample_injections,
)
from stronglens_assets.science.lensing.profiles import (
    ellipticity_from_phi_q,
    sersic_surface_brightness,
)
from stronglens_assets.settings import PROJECT_ROOT

CONFIG_DIR = PROJECT_ROOT / "configs"


def _raw() -> dict:
    return yaml.safe_load((CONFIG_DIR / "injection_priors.yaml").read_text())


def _write(tmp_path: Path, data: dict) -> Path:
    (tmp_path / "injection_priors.yaml").write_text(yaml.safe_dump(data))
    return tmp_path


def test_shipped_priors_full_and_demo() -> None:
    full = load_priors(CONFIG_DIR, "full")
    demo = load_priors(CONFIG_DIR, "demo")
    d06 = load_d06_config(CONFIG_DIR, "full")
    # the paper's grid: 11 x 7 x 5 = 385 cells, 500 injections per non-empty one
    assert (len(d06.grid.theta_e), len(d06.grid.psf_fwhm), len(d06.grid.depth_5sig)) == (11, 7, 5)
    assert d06.grid.injections_per_cell == 500 and d06.prior == full.default_prior
    assert priors_sha256(full) == priors_sha256(demo)  # the priors do not change with size
    np.testing.assert_array_equal(full.gain_array(), [150.0] * 3)  # the paper's gain
    np.testing.assert_array_equal(full.gain_array(prior="provisional_v1"), [9600.0, 7000.0, 2600.0])
    assert priors_sha256(full) == priors_sha256(load_priors(CONFIG_DIR, "full"))


PAPER = ("priors", "paper_2026")


def _at(data: dict, *path: str) -> dict:
    for key in path:
        data = data[key]
    return data


@pytest.mark.parametrize(
    ("edit", "field", "words"),
    [
        (
            lambda d: _at(d, *PAPER, "source").update(r_e={"dist": "uniform", "low": 3, "high": 1}),
            "priors.paper_2026.source.r_e",
            "inverted",
        ),
        (
            lambda d: _at(d, *PAPER, "source").update(
                r_e={"dist": "uniform", "low": -1, "high": 1}
            ),
            "priors.paper_2026.source",
            "r_e",
        ),
        (
            lambda d: _at(d, *PAPER, "lens").update(
                axis_ratio={"dist": "uniform", "low": 0.5, "high": 1.2}
            ),
            "priors.paper_2026.lens",
            "axis_ratio",
        ),
        (
            lambda d: _at(d, *PAPER, "lens").update(
                shear_gamma1={"dist": "normal", "mean": 0.0, "std": 0.5}
            ),
            "priors.paper_2026.lens",
            "shear_gamma1",
        ),
        (
            lambda d: _at(d, *PAPER, "source").update(r_e_convention="major"),
            "priors.paper_2026.source.r_e_convention",
            "semi_major",
        ),
        (lambda d: _at(d, *PAPER, "colours").pop("r-z"), "priors.paper_2026.colours", "'z'"),
        (
            lambda d: _at(d, *PAPER, "colours").update({"g-z": {"dist": "fixed", "value": 1}}),
            "priors.paper_2026.colours.g-z",
            "reference band",
        ),
        (lambda d: _at(d, *PAPER, "psf").pop("band_scale"), "priors.paper_2026.psf", "band_scale"),
        (
            lambda d: _at(d, *PAPER, "clumps").update(count=[0, 9]),
            "priors.paper_2026.clumps",
            "count",
        ),
        (lambda d: _at(d, *PAPER, "lens").update(thetaE=1.0), "priors.paper_2026.lens.thetaE", ""),
        (lambda d: d.update(default_prior="paper"), "default_prior", "paper_2026"),
        (lambda d: d.update(thetaE_typo=1), "thetaE_typo", "Extra inputs"),
        # the engine renders 0.2 <= n <= 10: a prior beyond fails at load, not mid-grid
        (
            lambda d: _at(d, "priors", "provisional_v1", "source").update(
                n_sersic={"dist": "uniform", "low": 0.1, "high": 4}
            ),
            "priors.provisional_v1.source",
            "n_sersic",
        ),
        (lambda d: _at(d, *PAPER, "poisson_gain").update(r=-5.0), "priors", "> 0"),
    ],
)
def test_bad_priors_name_the_field(tmp_path: Path, edit, field: str, words: str) -> None:
    data = copy.deepcopy(_raw())
    edit(data)
    with pytest.raises(ConfigError) as info:
        load_priors(_write(tmp_path, data), "full")
    message = str(info.value)
    assert "injection_priors.yaml" in message
    assert field in message
    assert words in message


def _ks(draws: np.ndarray, cdf) -> float:
    return stats.kstest(draws, cdf).pvalue


def test_distributions_follow_their_laws() -> None:
    rng = np.random.default_rng(1)
    n = 20_000
    uniform = Distribution(dist="uniform", low=0.5, high=3.0).sample(n, rng)
    assert _ks(uniform, stats.uniform(0.5, 2.5).cdf) > 1e-3
    logu = Distribution(dist="loguniform", low=0.05, high=1.0).sample(n, rng)
    assert _ks(logu, stats.loguniform(0.05, 1.0).cdf) > 1e-3
    area = Distribution(dist="uniform_area", low=0.1, high=1.0).sample(n, rng)
    assert _ks(area, lambda x: (np.clip(x, 0.1, 1.0) ** 2 - 0.01) / 0.99) > 1e-3
    normal = Distribution(dist="normal", mean=0.3, std=0.15).sample(n, rng)
    assert _ks(normal, stats.norm(0.3, 0.15).cdf) > 1e-3
    assert np.all(Distribution(dist="fixed", value=2.0).sample(5, rng) == 2.0)


def _paper_draws(n: int, seed: int = 11, **kw) -> tuple:
    priors = load_priors(CONFIG_DIR, "full")
    kw = {"theta_e": 1.5, "source_mag": (23.0, 26.0), **kw}
    return priors, sample_injections(priors, n, np.random.default_rng(seed), **kw)


def test_paper_prior_sampling_laws() -> None:
    """KS tests of every per-injection draw of paper_2026 against PROTOCOL.md's laws."""
    n = 20_000
    _, d = _paper_draws(n)
    uniform = stats.uniform
    laws = {
        "n_sersic": (d.n_sersic, uniform(0.5, 1.5).cdf),
        "r_e": (d.r_e, uniform(0.15, 0.35).cdf),
        "axis_ratio": (d.axis_ratio, uniform(0.3, 0.7).cdf),
        "beta_frac": (d.beta_frac, lambda x: (np.clip(x, 0.1, 0.4) ** 2 - 0.01) / 0.15),
        "source_mag": (d.source_mag, uniform(23.0, 3.0).cdf),
        "g-r": (d.mags[:, 0] - d.mags[:, 1], stats.norm(1.15, 0.30).cdf),
        "r-z": (d.mags[:, 1] - d.mags[:, 2], stats.norm(0.85, 0.20).cdf),
        "lens_axis_ratio": (d.lens_axis_ratio, uniform(0.5, 0.5).cdf),
        "lens_position_angle": (d.lens_position_angle, uniform(0.0, math.pi).cdf),
        "shear_gamma1": (d.shear_gamma1, stats.norm(0.0, 0.05).cdf),
        "shear_gamma2": (d.shear_gamma2, stats.norm(0.0, 0.05).cdf),
        "lens_center_x": (d.lens_center_x, stats.norm(0.0, 0.05).cdf),
        "lens_center_y": (d.lens_center_y, stats.norm(0.0, 0.05).cdf),
        "position_angle": (d.position_angle, uniform(0.0, math.pi).cdf),
    }
    for name, (values, cdf) in laws.items():
        assert _ks(values, cdf) > 1e-3, name
    assert np.all(d.theta_e == 1.5)
    # the source sits beta_frac x theta_E from the jittered lens centre, at a uniform angle
    dx, dy = d.source_x - d.lens_center_x, d.source_y - d.lens_center_y
    np.testing.assert_allclose(np.hypot(dx, dy), d.beta_frac * d.theta_e)
    assert _ks(np.arctan2(dy, dx), uniform(-math.pi, 2 * math.pi).cdf) > 1e-3
    np.testing.assert_allclose(d.flux, 10 ** (-0.4 * (d.mags - 22.5)))
    assert d.clump_x is None  # clumps off in the paper's model
    assert set(d.render_kwargs()) == set(LENS_KEYWORDS)


def test_semi_major_r_e_is_converted_to_the_engines_circularised_r_eff() -> None:
    """paper_2026's R_e is the semi-major-axis half-light radius: the sampler's r_eff =
    R_e sqrt(q), and the rendered profile holds half its light inside the ellipse of
    semi-major axis R_e (elliptical radius sqrt(x'^2 + y'^2 / q^2))."""
    _, d = _paper_draws(200)
    np.testing.assert_allclose(d.r_eff, d.r_e * np.sqrt(d.axis_ratio))
    h = 0.004
    c = np.arange(-6.0, 6.0, h) + h / 2
    x, y = np.meshgrid(c, c)
    for i in range(3):
        q, phi, r_e = d.axis_ratio[i], d.position_angle[i], d.r_e[i]
        e1, e2 = ellipticity_from_phi_q(phi, q)
        sb = sersic_surface_brightness(x, y, 1.0, d.r_eff[i], d.n_sersic[i], e1, e2)
        xr = np.cos(phi) * x + np.sin(phi) * y
        yr = -np.sin(phi) * x + np.cos(phi) * y
        inside = np.hypot(xr, yr / q) < r_e
        assert sb[inside].sum() / sb.sum() == pytest.approx(0.5, abs=0.01)
    # the circularised convention passes R_e through
    priors = load_priors(CONFIG_DIR, "full")
    old = sample_injections(priors, 50, np.random.default_rng(3), prior="provisional_v1")
    np.testing.assert_array_equal(old.r_eff, old.r_e)
    assert old.lens_axis_ratio is not None and np.all(old.lens_axis_ratio == 1.0)


def test_experiment_settings_and_their_errors() -> None:
    priors = load_priors(CONFIG_DIR, "full")
    rng = np.random.default_rng(4)
    with pytest.raises(ValueError, match="theta_e"):
        sample_injections(priors, 5, rng, source_mag=(23, 26))
    with pytest.raises(ValueError, match="source_mag"):
        sample_injections(priors, 5, rng, theta_e=1.0)
    with pytest.raises(ValueError, match="theta_e"):
        sample_injections(priors, 5, rng, theta_e=-1.0, source_mag=(23, 26))
    with pytest.raises(KeyError, match="nope"):
        sample_injections(priors, 5, rng, prior="nope", theta_e=1.0, source_mag=(23, 26))
    _, wide = _paper_draws(20_000, beta_frac=(0.1, 1.0), source_mag=(18.0, 26.0))
    assert _ks(wide.beta_frac, lambda x: (np.clip(x, 0.1, 1.0) ** 2 - 0.01) / 0.99) > 1e-3
    assert _ks(wide.source_mag, stats.uniform(18.0, 8.0).cdf) > 1e-3
    per = np.linspace(0.5, 3.0, 7)
    _, grid = _paper_draws(7, theta_e=per)
    np.testing.assert_array_equal(grid.theta_e, per)
    # same stream, same draws; theta_e given or drawn keeps the other draws
    _, a = _paper_draws(50, seed=9)
    _, b = _paper_draws(50, seed=9, theta_e=2.0)
    np.testing.assert_array_equal(a.n_sersic, b.n_sersic)
    np.testing.assert_array_equal(a.shear_gamma1, b.shear_gamma1)


def test_psf_per_band_from_the_host() -> None:
    priors = load_priors(CONFIG_DIR, "full")
    host = np.array([[1.5, 1.3, 1.2], [1.0, 0.9, 1.4]])
    paper = injection_psf_fwhm(priors, host)
    np.testing.assert_allclose(paper, host[:, 1:2] * np.array([1.05, 1.0, 0.94]))
    np.testing.assert_array_equal(injection_psf_fwhm(priors, host, prior="provisional_v1"), host)
    with pytest.raises(ValueError, match="host_psfsize"):
        injection_psf_fwhm(priors, host[:, :2])


def test_clumps_when_switched_on(tmp_path: Path) -> None:
    data = _raw()
    data["priors"]["paper_2026"]["clumps"]["probability"] = 0.5
    priors = load_priors(_write(tmp_path, data), "full")
    n = 20_000
    d = sample_injections(priors, n, np.random.default_rng(5), theta_e=1.5, source_mag=(23, 26))
    frac = d.clump_flux_fraction
    count = (frac > 0).sum(axis=1)
    has = count > 0
    assert frac.shape == (n, 4)
    assert abs(has.mean() - 0.5) < 0.02
    assert set(np.unique(count[has])) == {1, 2, 3, 4}
    assert _ks(frac[has].sum(axis=1), stats.uniform(0.15, 0.30).cdf) > 1e-3
    assert np.all(d.clump_sigma[frac > 0] >= 0.03) and np.all(d.clump_sigma <= 0.10)
    # positions inside the half-light ellipse (semi-major R_e) of each source
    phi = d.position_angle[:, None]
    xr = np.cos(phi) * d.clump_x + np.sin(phi) * d.clump_y
    yr = -np.sin(phi) * d.clump_x + np.cos(phi) * d.clump_y
    assert np.all(np.hypot(xr, yr / d.axis_ratio[:, None]) <= d.r_e[:, None] * (1 + 1e-9))
    # the draws before the clumps are those of the clump-free prior
    _, plain = _paper_draws(n, seed=5)
    np.testing.assert_array_equal(plain.lens_center_y, d.lens_center_y)
