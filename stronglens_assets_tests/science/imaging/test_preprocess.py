"""The one preprocessing function: crop geometry, robust normalisation, masks."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.stats import mad_std

from stronglens_assets.config import ConfigError
from stronglens_assets.science.imaging.preprocess import (
    CropRobust,
    RawRobust,
    centre_crop,
    preprocess,
    preprocessing_from,
    preprocessing_with,
    radial_mask,
)


def _cutouts(n: int = 4, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    sky = rng.normal(0.002, 0.01, size=(n, 3, 101, 101))
    sky[:, :, 45:56, 45:56] += rng.uniform(0.5, 2.0, size=(n, 3, 1, 1))  # a bright core
    return sky.astype(np.float32)


def test_shape_dtype_and_centre():
    x = np.zeros((2, 3, 101, 101), np.float32)
    x[:, :, 50, 50] = 1.0  # the cutout centre
    out = preprocess(x + np.random.default_rng(1).normal(0, 1e-3, x.shape), CropRobust(crop=64))
    assert out.shape == (2, 3, 64, 64) and out.dtype == np.float32
    assert np.unravel_index(np.argmax(out[0, 0]), (64, 64)) == (32, 32)
    assert preprocess(x[0] + 1e-3 * np.arange(101), CropRobust(crop=32)).shape == (3, 32, 32)


def test_sky_statistics_match_astropy_on_the_outer_ring():
    x = _cutouts()
    crop = x[..., 18:82, 18:82].astype(np.float64)  # 64 px around pixel 50
    yy, xx = np.mgrid[0:64, 0:64] - 32
    ring = np.hypot(xx, yy) >= 20
    out = preprocess(x, CropRobust(crop=64, clip=1e9))
    for i in range(len(x)):
        for b in range(3):
            pixels = crop[i, b][ring]
            expected = (crop[i, b] - np.median(pixels)) / mad_std(pixels)
            np.testing.assert_allclose(out[i, b], expected, rtol=1e-4, atol=1e-4)
    # normalised sky: median 0, robust sigma 1 on the ring
    assert abs(np.median(out[0, 0][ring])) < 1e-6
    assert mad_std(out[0, 0][ring]) == pytest.approx(1.0, rel=1e-5)


def test_invariant_to_per_band_offset_and_positive_scale():
    x = _cutouts()
    offset = np.array([0.1, -0.3, 5.0], np.float32)[None, :, None, None]
    scale = np.array([2.0, 0.5, 30.0], np.float32)[None, :, None, None]
    np.testing.assert_allclose(preprocess(x * scale + offset), preprocess(x), atol=2e-3)


def test_clip_and_non_finite_pixels():
    x = _cutouts(2)
    x[0, 1, 50, 50] = np.nan
    x[1, 2, 40, 40] = np.inf
    out = preprocess(x, CropRobust(crop=64, clip=5.0))
    assert np.isfinite(out).all()
    assert out.max() == pytest.approx(5.0) and out.min() >= -5.0


def test_flat_band_does_not_divide_by_zero():
    x = np.zeros((1, 3, 101, 101), np.float32)
    assert np.isfinite(preprocess(x)).all()


def test_bad_shapes():
    with pytest.raises(ValueError, match="cannot crop"):
        centre_crop(np.zeros((1, 3, 50, 50)), 64)
    with pytest.raises(ValueError, match="expected"):
        preprocess(np.zeros((101, 101)))


def test_radial_mask_counts_lattice_points():
    # integer points with x^2 + y^2 < 25: 81 with <= 25, minus the 12 on the circle
    assert radial_mask(64, 0.0, 5.0).sum() == 69
    core, annulus = radial_mask(64, 0.0, 5.0), radial_mask(64, 5.0, None)
    assert np.array_equal(core + annulus, np.ones((64, 64), np.float32))


def test_raw_robust_is_the_raw_mad_of_the_annulus_on_the_full_stamp():
    """PROTOCOL.md: annulus 20 <= r < 32 px around pixel 50, raw (unscaled) MAD from scipy,
    clip [-10, 10], no crop."""
    from scipy.stats import median_abs_deviation

    x = _cutouts(3, seed=4)
    yy, xx = np.mgrid[0:101, 0:101] - 50
    r = np.hypot(xx, yy)
    annulus = (r >= 20) & (r < 32)
    out = preprocess(x, RawRobust())
    assert out.shape == (3, 3, 101, 101) and out.dtype == np.float32
    for i in range(len(x)):
        for b in range(3):
            pixels = x[i, b][annulus].astype(np.float64)
            mad = median_abs_deviation(pixels, scale=1.0)
            expected = np.clip((x[i, b] - np.median(pixels)) / mad, -10, 10)
            np.testing.assert_allclose(out[i, b], expected, rtol=1e-4, atol=1e-4)
    assert out.max() == pytest.approx(10.0)  # the bright core is clipped at +10
    clip20 = preprocess(x, preprocessing_with(RawRobust(), {"clip": 20}, "test"))
    assert clip20.max() == pytest.approx(20.0)
    unclipped = np.abs(out) < 10
    np.testing.assert_array_equal(clip20[unclipped], out[unclipped])  # only the clip moves


def test_raw_robust_needs_the_full_stamp_and_a_valid_annulus():
    with pytest.raises(ValueError, match="101 x 101 stamps"):
        preprocess(np.zeros((1, 3, 64, 64), np.float32), RawRobust())
    with pytest.raises(ValueError, match="annulus_outer_px must be larger"):
        RawRobust(annulus_inner_px=32, annulus_outer_px=20)
    with pytest.raises(ValueError, match="beyond the 101 px stamp"):
        RawRobust(annulus_outer_px=80)
    with pytest.raises(TypeError, match="CropRobust or RawRobust"):
        preprocess(np.zeros((1, 3, 101, 101)), 64)


def test_settings_from_records_and_overrides():
    assert preprocessing_from({"method": "raw_robust"}) == RawRobust()
    assert preprocessing_from({"method": "crop_robust", "crop": 48}) == CropRobust(crop=48)
    with pytest.raises(ConfigError, match=r"checkpoints/m/preprocessing\.json.*'zscale'"):
        preprocessing_from({"method": "zscale"}, "checkpoints/m/preprocessing.json")
    with pytest.raises(ConfigError, match="cannot change the method"):
        preprocessing_with(RawRobust(), {"method": "crop_robust"}, "override")
    with pytest.raises(ConfigError, match=r"override.*clip"):
        preprocessing_with(RawRobust(), {"clip": -1}, "override")
