"""Tests of science/core: units against astropy, hashing against hashlib, array helpers and the
GPU probe, column checks, the npz reader/writer."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import sys
import types

import numpy as np
import pytest
from astropy import units as u

from stronglens_assets.errors import StronglensError
from stronglens_assets.science.core.arrays import (
    array_module,
    gpu_array_module,
    is_cupy,
    to_host,
)
from stronglens_assets.science.core.columns import MissingColumnsError, require_columns
from stronglens_assets.science.core.hashing import sha256_bytes, sha256_file, sha256_json
from stronglens_assets.science.core.npz import NpzError, decode_npz, encode_npz
from stronglens_assets.science.core.units import (
    AB_ZERO_POINT,
    mag_to_nanomaggies,
    nanomaggies_to_mag,
    sky_nanomaggies_per_pixel,
)


def test_units_agree_with_astropy_ab_magnitudes() -> None:
    """1 nanomaggy = 1e-9 of the AB zero-point flux = AB 22.5 (astropy's AB system)."""
    mags = np.array([15.0, 20.0, 22.5, 26.0])
    nmgy_in_jy = 1e-9 * (0.0 * u.ABmag).to(u.Jy).value
    fluxes_jy = (mags * u.ABmag).to(u.Jy).value
    np.testing.assert_allclose(mag_to_nanomaggies(mags) * nmgy_in_jy, fluxes_jy, rtol=1e-12)
    np.testing.assert_allclose(nanomaggies_to_mag(fluxes_jy / nmgy_in_jy), mags, atol=1e-12)
    assert AB_ZERO_POINT == 22.5


def test_sky_per_pixel_is_surface_brightness_times_pixel_area() -> None:
    """mu = 22.5 mag/arcsec^2 is 1 nmgy per arcsec^2; each 2.5 mag brighter is x10; a pixel of
    0.262" holds 0.262^2 arcsec^2 (astropy's AB system for the flux)."""
    nmgy_in_jy = 1e-9 * (0.0 * u.ABmag).to(u.Jy).value
    mu = np.array([22.5, 20.0, 21.0])
    per_arcsec2 = (mu * u.ABmag).to(u.Jy).value / nmgy_in_jy
    np.testing.assert_allclose(
        sky_nanomaggies_per_pixel(mu, 0.262), per_arcsec2 * 0.262**2, rtol=1e-12
    )
    assert sky_nanomaggies_per_pixel(20.0, 0.5) == pytest.approx(10.0 * 0.25, rel=1e-12)


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


def _fake_cupy(status: int | None, count: int = 1) -> types.ModuleType:
    """A stand-in ``cupy`` whose device query returns ``count`` or raises a CUDA error."""

    class CUDARuntimeError(RuntimeError):
        def __init__(self, code: int) -> None:
            super().__init__(f"cuda status {code}")
            self.status = code

    def get_device_count() -> int:
        if status is not None:
            raise CUDARuntimeError(status)
        return count

    runtime = types.SimpleNamespace(
        CUDARuntimeError=CUDARuntimeError, getDeviceCount=get_device_count
    )
    module = types.ModuleType("cupy")
    module.cuda = types.SimpleNamespace(runtime=runtime)  # type: ignore[attr-defined]
    return module


def test_gpu_probe_skips_only_when_cupy_or_the_gpu_is_absent(monkeypatch) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: object() if name == "cupy" else real_find_spec(name, *a),
    )
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(None, count=1))
    assert gpu_array_module() is sys.modules["cupy"]
    for no_gpu in (35, 100):  # no NVIDIA driver, no device
        monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(no_gpu))
        assert gpu_array_module() is None
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(None, count=0))
    assert gpu_array_module() is None
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(2))  # out of memory: a real error
    with pytest.raises(RuntimeError, match="cuda status 2"):
        gpu_array_module()
    monkeypatch.setitem(sys.modules, "cupy", None)  # installed but the import fails
    with pytest.raises(ImportError):
        gpu_array_module()


def test_gpu_probe_without_cupy_installed(monkeypatch) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "cupy" else real_find_spec(name, *a),
    )
    assert gpu_array_module() is None


def test_require_columns_names_every_missing_column() -> None:
    require_columns(["a", "b"], ("a",), "table")
    with pytest.raises(MissingColumnsError, match=r"my table lacks column\(s\) 'c', 'd'; fix"):
        require_columns(["a", "b"], ("a", "c", "d"), "my table", hint="fix")
    assert issubclass(MissingColumnsError, ValueError)
    assert issubclass(MissingColumnsError, StronglensError)

    class OwnError(ValueError):
        pass

    with pytest.raises(OwnError, match="'x'"):
        require_columns([], ["x"], "t", error=OwnError)


def test_npz_round_trip_is_deterministic_and_refuses_pickles() -> None:
    arrays = {"a": np.arange(6.0).reshape(2, 3), "b": np.array([1, 2], dtype=np.int8)}
    data = encode_npz(arrays)
    assert data == encode_npz(arrays)
    back = decode_npz(data)
    assert list(back) == ["a", "b"] and np.array_equal(back["a"], arrays["a"])
    assert list(decode_npz(data, ["b", "missing"])) == ["b"]
    with pytest.raises(NpzError, match="dtype object"):
        encode_npz({"o": np.array([{"x": 1}], dtype=object)})
    buffer = io.BytesIO()
    np.savez(buffer, o=np.array([{"x": 1}], dtype=object))  # a pickle inside an npz
    with pytest.raises(ValueError, match="allow_pickle"):
        decode_npz(buffer.getvalue())
    single = io.BytesIO()
    np.save(single, np.arange(3))
    with pytest.raises(ValueError, match=r"not an \.npz archive"):
        decode_npz(single.getvalue())
