"""Injection priors: validation (errors name the field), sampling against analytic laws, grid."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import stats

from stronglens_assets.config import ConfigError
from stronglens_assets.science.core.units import mag_to_nanomaggies
from stronglens_assets.science.experiments import load_d06_config
from stronglens_assets.science.lensing.priors import (
    BRIGHT_ARC_VARIANTS,
    PARAMETERS,
    Distribution,
    bright_arc_distributions,
    grid_cells,
    load_priors,
    priors_sha256,
    probe_distributions,
    sample_parameters,
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
    assert full.grid.n_cells * d06.grid.injections_per_cell == 110_000
    assert len(grid_cells(full.grid)) == full.grid.n_cells
    assert demo.grid.n_cells < full.grid.n_cells
    assert set(full.bright_arc.variants) == set(BRIGHT_ARC_VARIANTS)
    assert priors_sha256(full) != priors_sha256(demo)
    assert priors_sha256(full) == priors_sha256(load_priors(CONFIG_DIR, "full"))


@pytest.mark.parametrize(
    ("edit", "field", "words"),
    [
        (
            lambda d: d["distributions"].update(theta_e={"dist": "uniform", "low": 3, "high": 1}),
            "distributions.theta_e",
            "inverted",
        ),
        (
            lambda d: d["distributions"].update(theta_e={"dist": "uniform", "low": -1, "high": 1}),
            "distributions",
            "theta_e",
        ),
        (lambda d: d["grid"].update(theta_e=[-0.5, 1.0]), "grid", "theta_e"),
        (lambda d: d["grid"].update(source_mag=[24.0, 22.0]), "grid", "increasing"),
        (lambda d: d["distributions"]["r_eff"].update(sigma=1.0), "distributions.r_eff.sigma", ""),
        (lambda d: d.update(thetaE_typo=1), "thetaE_typo", "Extra inputs"),
        (lambda d: d["bright_arc"]["variants"].pop("clip20"), "bright_arc.variants", "clip20"),
        (
            lambda d: d["bright_arc"].update(mag_bins=[20.0, 19.0]),
            "bright_arc.mag_bins",
            "increasing",
        ),
        (lambda d: d["grid"].update(axis_ratio=[0.5, 1.2]), "grid", "axis_ratio"),
        # the engine renders 0.2 <= n <= 10: a prior beyond fails at load, not mid-grid
        (lambda d: d["grid"].update(n_sersic=[1.0, 12.0]), "grid", "n_sersic"),
        (
            lambda d: d["distributions"].update(
                n_sersic={"dist": "uniform", "low": 0.1, "high": 4}
            ),
            "distributions",
            "n_sersic",
        ),
        (lambda d: d["poisson_gain"].update(r=-5.0), "poisson_gain", "> 0"),
        (
            lambda d: d["bright_arc"]["variants"]["baseline"].update(gain=10.0),
            "bright_arc.variants.baseline",
            "poisson",
        ),
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


def test_demo_profile_override_is_validated(tmp_path: Path) -> None:
    data = _raw()
    data["profiles"]["demo"]["grid"]["theta_e"] = [-1.0]
    with pytest.raises(ConfigError, match="grid"):
        load_priors(_write(tmp_path, data), "demo")


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


def test_sample_parameters_geometry_fluxes_and_seed() -> None:
    priors = load_priors(CONFIG_DIR, "full")
    a = sample_parameters(priors, 500, np.random.default_rng(7))
    b = sample_parameters(priors, 500, np.random.default_rng(7))
    for name, value in a.arrays().items():
        np.testing.assert_array_equal(value, b.arrays()[name], err_msg=name)
    # source offset = beta_frac x theta_E
    np.testing.assert_allclose(np.hypot(a.source_x, a.source_y), a.beta_frac * a.theta_e)
    # reference band is r; fluxes are nanomaggies at zero point 22.5
    r = priors.bands.index("r")
    np.testing.assert_array_equal(a.mags[:, r], a.source_mag)
    np.testing.assert_allclose(a.flux, 10 ** (-0.4 * (a.mags - 22.5)))
    assert mag_to_nanomaggies(np.array([22.5, 20.0]))[1] == pytest.approx(10.0)
    for name in PARAMETERS:
        low, high = getattr(priors.distributions, name).support()
        values = getattr(a, name)
        assert values.min() >= low and values.max() <= high, name
    assert np.all((a.position_angle >= 0) & (a.position_angle < math.pi))


def test_fixed_parameters_keep_the_stream() -> None:
    priors = load_priors(CONFIG_DIR, "full")
    free = sample_parameters(priors, 50, np.random.default_rng(3))
    cell = sample_parameters(
        priors, 50, np.random.default_rng(3), fixed={"theta_e": 1.5, "source_mag": 23.0}
    )
    assert np.all(cell.theta_e == 1.5) and np.all(cell.source_mag == 23.0)
    # the other draws (and the colours, angles) are unchanged
    np.testing.assert_array_equal(free.n_sersic, cell.n_sersic)
    np.testing.assert_array_equal(free.position_angle, cell.position_angle)
    np.testing.assert_allclose(free.mags - free.source_mag[:, None], cell.mags - 23.0, atol=1e-12)
    with pytest.raises(ValueError, match="theta_e"):
        sample_parameters(priors, 5, np.random.default_rng(3), fixed={"theta_e": -1.0})


def test_grid_cells_are_the_cartesian_product() -> None:
    priors = load_priors(CONFIG_DIR, "full")
    cells = grid_cells(priors.grid)
    assert list(cells.columns) == ["cell", *PARAMETERS]
    assert list(cells["cell"]) == list(range(880))
    assert len(cells.drop_duplicates(list(PARAMETERS))) == 880
    # last axis fastest
    assert cells["axis_ratio"].iloc[:2].tolist() == priors.grid.axis_ratio
    assert cells["theta_e"].iloc[-1] == priors.grid.theta_e[-1]


def test_variant_and_probe_distributions() -> None:
    priors = load_priors(CONFIG_DIR, "full")
    baseline = bright_arc_distributions(priors, "baseline")
    unrestricted = bright_arc_distributions(priors, "unrestricted")
    assert baseline.source_mag == priors.bright_arc.source_mag == unrestricted.source_mag
    assert baseline.beta_frac == priors.bright_arc.restricted.beta_frac
    assert unrestricted.beta_frac == priors.distributions.beta_frac
    assert probe_distributions(priors).beta_frac.support()[1] <= 0.4
    with pytest.raises(KeyError, match="nope"):
        bright_arc_distributions(priors, "nope")
