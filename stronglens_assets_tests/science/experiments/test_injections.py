"""Injection runs: retries with new hosts, counted failures, pairing of noise variants."""

from __future__ import annotations

import numpy as np
import pytest

from stronglens_assets.science.experiments.config import derived_rng
from stronglens_assets.science.experiments.injections import run_injections
from stronglens_assets.science.lensing.priors import load_priors
from stronglens_assets.settings import PROJECT_ROOT

SIZE = 41


@pytest.fixture(scope="module")
def priors():
    return load_priors(PROJECT_ROOT / "configs", "demo")


def _hosts(n: int, bad: list[int]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    cutout = rng.normal(0, 0.01, (n, 3, SIZE, SIZE)).astype(np.float32)
    psfsize = np.full((n, 3), 1.3, np.float32)
    usable = np.ones(n, bool)
    usable[bad] = False
    cutout[bad, 0, 0, 0] = np.nan
    return {
        "cutout": cutout,
        "invvar": np.full((n, 3, SIZE, SIZE), 1e4, np.float32),
        "psfsize": psfsize,
        "usable": usable,
    }


def _run(priors, hosts, candidates, gain=None, **kw):
    return run_injections(
        priors,
        hosts,
        candidates,
        12,
        prior="paper_2026",
        theta_e=1.0,
        source_mag=(20.0, 21.0),
        beta_frac=None,
        params_rng=derived_rng(1, "t"),
        noise_rng=derived_rng(1, "noise"),
        poisson_gain=gain,
        **kw,
    )


def test_unusable_hosts_are_retried_and_never_used(priors) -> None:
    hosts = _hosts(6, bad=[0, 1, 2])
    run = _run(priors, hosts, np.arange(6), max_retries=50)
    assert run.n_failed == 0 and len(run) == 12
    assert set(run.host_row.tolist()) <= {3, 4, 5}
    assert np.isfinite(run.images).all()
    # the arc is in the image: injected minus host is the (positive) lensed flux
    flux = (run.images - hosts["cutout"][run.host_row]).sum(axis=(2, 3))[:, 1]
    np.testing.assert_allclose(flux, 10 ** (-0.4 * (run.lensed_mag - 22.5)), rtol=1e-3)


def test_injections_failing_every_retry_are_counted(priors) -> None:
    hosts = _hosts(4, bad=[0, 1, 2, 3])
    run = _run(priors, hosts, np.arange(4), max_retries=5)
    assert run.n_failed == 12 and len(run) == 0 and run.failures


def test_noise_variants_share_hosts_and_parameters(priors) -> None:
    hosts = _hosts(5, bad=[])
    clean = _run(priors, hosts, np.arange(5))
    noisy = _run(priors, hosts, np.arange(5), gain=150.0)
    control = _run(priors, hosts, np.arange(5), gain=1e12)
    assert (clean.host_row == noisy.host_row).all()
    np.testing.assert_array_equal(clean.params.source_x, noisy.params.source_x)
    assert not np.allclose(clean.images, noisy.images)
    np.testing.assert_allclose(control.images, clean.images, atol=1e-5)


def test_each_hosts_own_gain(priors) -> None:
    """``host_gain`` (per host row and band): hosts whose gains all equal the fixed gain give
    the fixed gain's bytes; a host's noise scales with its own gain; bad gains name the field."""
    hosts = _hosts(5, bad=[])
    fixed = _run(priors, hosts, np.arange(5), gain=150.0)
    same = _run(priors, hosts, np.arange(5), host_gain=np.full((5, 3), 150.0))
    assert fixed.images.tobytes() == same.images.tobytes()
    clean = _run(priors, hosts, np.arange(5))
    gains = np.full((5, 3), 150.0)
    gains[2] = 1e12  # host row 2 is (nearly) noiseless
    mixed = _run(priors, hosts, np.arange(5), host_gain=gains)
    at_2 = mixed.host_row == 2
    assert at_2.any() and (~at_2).any()
    np.testing.assert_allclose(mixed.images[at_2], clean.images[at_2], atol=1e-5)
    assert not np.allclose(mixed.images[~at_2], clean.images[~at_2], atol=1e-5)
    with pytest.raises(ValueError, match="not both"):
        _run(priors, hosts, np.arange(5), gain=150.0, host_gain=gains)
    with pytest.raises(ValueError, match=r"host_gain must be \(hosts, bands\)"):
        _run(priors, hosts, np.arange(5), host_gain=gains[:4])
    gains[3] = np.nan
    with pytest.raises(ValueError, match="host_gain of host row 3"):
        _run(priors, hosts, np.arange(5), host_gain=gains)
