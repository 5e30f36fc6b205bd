"""Tests of science/core: units against astropy, hashing against hashlib, array helpers."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from astropy import units as u

from stronglens_assets.science.core.arrays import array_module, is_cupy, to_host
from stronglens_assets.science.core.hashing import sha256_bytes, sha256_file, sha256_json
from stronglens_assets.science.core.units import (
    AB_ZERO_POINT,
    mag_to_nanomaggies,
    nanomaggies_to_mag,
)


def test_units_agree_with_astropy_ab_magnitudes() -> None:
    """1 nanomaggy = 1e-9 of the AB zero-point flux = AB 22.5 (astropy's AB system)."""
    mags = np.array([15.0, 20.0, 22.5, 26.0])
    nmgy_in_jy = 1e-9 * (0.0 * u.ABmag).to(u.Jy).value
    fluxes_jy = (mags * u.ABmag).to(u.Jy).value
    np.testing.assert_allclose(mag_to_nanomaggies(mags) * nmgy_in_jy, fluxes_jy, rtol=1e-12)
    np.testing.assert_allclose(nanomaggies_to_mag(fluxes_jy / nmgy_in_jy), mags, atol=1e-12)
    assert AB_ZERO_POINT == 22.5


def test_magnitude_of_nonpositive_or_nonfinite_flux_is_nan() -> None:
    mags = nanomaggies_to_mag([1.0, 0.0, -2.0, np.nan, np.inf])
    assert mags[0] == pytest.approx(22.5)
    assert np.isnan(mags[1:]).all()


def test_hashes_equal_hashlib(tmp_path) -> None:
    data = b"stronglens" * 100_000
    path = tmp_path / "blob"
    path.write_bytes(data)
    expected = hashlib.sha256(data).hexdigest()
    assert sha256_bytes(data) == expected
    assert sha256_file(path, chunk_size=4096) == expected
    assert sha256_json({"b": 1, "a": [1, 2]}) == sha256_json({"a": [1, 2], "b": 1})


def test_numpy_arrays_stay_on_the_host() -> None:
    a = np.arange(3.0)
    assert not is_cupy(a)
    assert array_module(a) is np
    assert to_host(a) is a or np.shares_memory(to_host(a), a)
    assert isinstance(to_host([1, 2]), np.ndarray)
