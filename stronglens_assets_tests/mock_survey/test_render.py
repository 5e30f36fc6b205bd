"""Rendering helpers: PSF convolution, noise level from depth, invvar maps."""

from __future__ import annotations

import numpy as np
import pytest

from stronglens_assets.mock_survey.render import (
    _StampConvolver,
    invvar_map,
    psf_kernel,
    sigma_pix_from_depth,
)
from stronglens_assets.mock_survey.sky import BandConditions
from stronglens_assets.science.lensing.profiles import convolve_fft


@pytest.mark.parametrize("size", [15, 45, 127])
def test_stamp_convolver_matches_convolve_fft(size: int) -> None:
    kernel = psf_kernel(1.4)
    stamps = np.random.default_rng(size).random((4, size, size))
    np.testing.assert_allclose(
        _StampConvolver(kernel)(stamps), convolve_fft(stamps, kernel), atol=1e-13
    )


def test_psf_kernel_and_depth() -> None:
    kernel = psf_kernel(1.3)
    assert kernel.shape[0] % 2 == 1 and kernel.sum() == pytest.approx(1.0)
    assert np.unravel_index(np.argmax(kernel), kernel.shape) == (kernel.shape[0] // 2,) * 2
    sigma_pix = sigma_pix_from_depth(24.0, kernel)
    # PSF-weighted flux error: sigma_pix * sqrt(n_eff); 5 sigma at the depth
    sigma_ps = sigma_pix * np.sqrt(1.0 / np.sum(kernel**2))
    assert 22.5 - 2.5 * np.log10(5 * sigma_ps) == pytest.approx(24.0)


def test_invvar_map_edges_and_strips() -> None:
    cond = BandConditions("g", 1.3, 24.0, 3, ("x", 1000, 1), (("y", 10, 30), ("x", 50, 58)))
    inv = invvar_map(cond, 0.01)
    assert inv.dtype == np.float32 and inv.shape == (3600, 3600)
    assert inv[500, 500] == pytest.approx(1e4, rel=1e-6)
    assert inv[500, 2000] == pytest.approx(1e4 * 4 / 3, rel=1e-6)
    assert (inv[10:30] == 0).all() and (inv[:, 50:58] == 0).all()
    nobs = cond.nobs_at(np.array([500.0, 2000.0, 54.0, -3.0]), np.array([500.0, 500.0, 9.0, 5.0]))
    assert nobs.tolist() == [3, 4, 0, 0]


def test_residual_snr_against_analytic_values() -> None:
    """S/N in the deflector-subtracted residual: sum(arc^2 / (1/invvar + (f L)^2))^(1/2)."""
    from stronglens_assets.mock_survey.render import _residual_snr

    arc = np.full((5, 5), 2.0)
    invvar = np.full((5, 5), 4.0)  # sigma = 0.5
    light = np.zeros((5, 5))
    assert _residual_snr(arc, invvar, light, 0.1) == pytest.approx(np.sqrt(25 * 4.0 * 4.0))
    light[:] = 10.0  # (f L)^2 = 1 -> variance 0.25 + 1
    assert _residual_snr(arc, invvar, light, 0.1) == pytest.approx(np.sqrt(25 * 4.0 / 1.25))
    assert _residual_snr(arc, invvar, light, 0.0) == pytest.approx(20.0)
    invvar[0] = 0.0  # no coverage: no signal
    assert _residual_snr(arc, invvar, light, 0.1) == pytest.approx(np.sqrt(20 * 4.0 / 1.25))
