"""NEST HEALPix helpers, checked against healpy directly."""

from __future__ import annotations

import healpy as hp
import numpy as np
import pytest

from stronglens_assets.science.catalogs import bricks as B
from stronglens_assets.science.catalogs import healpix as H

FULL_SKY_DEG2 = 4.0 * np.pi * (180.0 / np.pi) ** 2


def _uniform_sphere(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.uniform(0.0, 360.0, n), np.rad2deg(np.arcsin(rng.uniform(-1.0, 1.0, n)))


def _points_in_brick(info: B.BrickInfo, n: int, rng: np.random.Generator):
    """n points uniform in area inside the brick, plus points along its four edges."""
    s1, s2 = np.sin(np.deg2rad([info.dec1, info.dec2]))
    ra = rng.uniform(info.ra1, info.ra2, n)
    dec = np.rad2deg(np.arcsin(rng.uniform(s1, s2, n)))
    edge_ra = np.linspace(info.ra1, info.ra2 - 1e-9, 500)
    edge_dec = np.linspace(info.dec1, info.dec2, 500)
    ra = np.concatenate([ra, edge_ra, edge_ra, np.full(500, info.ra1), np.full(500, info.ra2)])
    dec = np.concatenate(
        [dec, np.full(500, info.dec1), np.full(500, info.dec2), edge_dec, edge_dec]
    )
    return ra % 360.0, np.clip(dec, -90.0, 90.0)


def test_constants():
    assert H.MAX_PARTITION_NSIDE == 32
    assert 12 * H.MAX_PARTITION_NSIDE**2 == 12_288


@pytest.mark.parametrize("nside", [1, 2, 32, 1024, 2**29])
def test_healpix_pixel_matches_healpy(nside):
    ra, dec = _uniform_sphere(5000, seed=nside % 1000)
    ra = np.concatenate([ra, [0.0, 360.0, 359.9999999, 180.0, 45.0]])
    dec = np.concatenate([dec, [90.0, -90.0, 0.0, 0.0, -45.0]])
    got = H.healpix_pixel(ra, dec, nside)
    assert isinstance(got, np.ndarray)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, hp.ang2pix(nside, ra, dec, nest=True, lonlat=True))
    scalar = H.healpix_pixel(10.0, 20.0, nside)
    assert isinstance(scalar, int)
    assert scalar == hp.ang2pix(nside, 10.0, 20.0, nest=True, lonlat=True)


@pytest.mark.parametrize("nside", [0, -4, 3, 12, 2**30, 2.0, 16.5, "16", None, True])
def test_bad_nside(nside):
    with pytest.raises(ValueError, match="nside"):
        H.healpix_pixel(10.0, 20.0, nside)
    with pytest.raises(ValueError, match="nside"):
        H.pixel_area_deg2(nside)
    with pytest.raises(ValueError, match="nside"):
        H.pixels_covering_bricks(["1126p222"], nside)


def test_healpix_pixel_bad_coords():
    with pytest.raises(ValueError):
        H.healpix_pixel([1.0, np.nan], [0.0, 0.0], 32)
    with pytest.raises(ValueError):
        H.healpix_pixel(1.0, 91.0, 32)


@pytest.mark.parametrize("nside", [1, 8, 32, 4096, 2**29])
def test_pixel_area(nside):
    assert H.pixel_area_deg2(nside) == pytest.approx(FULL_SKY_DEG2 / (12 * nside**2), rel=1e-12)
    assert H.pixel_area_deg2(nside) == pytest.approx(hp.nside2pixarea(nside, degrees=True))


@pytest.mark.parametrize(("fine", "coarse"), [(32, 32), (32, 1), (1024, 32), (2**29, 8)])
def test_coarse_pixel_matches_healpy(fine, coarse):
    ra, dec = _uniform_sphere(5000, seed=3)
    pix_fine = hp.ang2pix(fine, ra, dec, nest=True, lonlat=True)
    want = hp.ang2pix(coarse, ra, dec, nest=True, lonlat=True)
    np.testing.assert_array_equal(H.coarse_pixel(pix_fine, fine, coarse), want)
    assert H.coarse_pixel(int(pix_fine[0]), fine, coarse) == want[0]


def test_coarse_pixel_errors():
    with pytest.raises(ValueError, match="nside_coarse"):
        H.coarse_pixel([0, 1], 8, 16)
    with pytest.raises(ValueError, match="nside_fine"):
        H.coarse_pixel([0, 1], 12, 4)
    with pytest.raises(ValueError, match=r"\[0, 768\)"):
        H.coarse_pixel([0, 768], 8, 4)
    with pytest.raises(ValueError, match="integers"):
        H.coarse_pixel([0.0, 1.0], 8, 4)


# A mid-latitude brick, the first/last bricks of a row (RA wrap), equator row, a brick in the
# 10-column row next to each pole (long constant-Dec edges), and both pole bricks.
COVER_BRICKS = [
    "1126p222",
    B.brick_name(0.01, 30.1),
    B.brick_name(359.99, 30.1),
    B.brick_name(359.99, -60.0),
    "0001p000",
    B.brick_name(10.0, 89.7),
    B.brick_name(200.0, -89.7),
    B.brick_name(100.0, -89.5),
    "1800p900",
    "1800m900",
]


@pytest.mark.parametrize("nside", [1, 32, 1024, 4096])
def test_pixels_cover_points_in_bricks(nside):
    rng = np.random.default_rng(nside)
    cover = H.pixels_covering_bricks(COVER_BRICKS, nside)
    assert cover.dtype.kind == "i"
    assert np.all(np.diff(cover) > 0)  # sorted, unique
    for name in COVER_BRICKS:
        info = B.parse_brick_name(name)
        ra, dec = _points_in_brick(info, 2000, rng)
        pix = hp.ang2pix(nside, ra, dec, nest=True, lonlat=True)
        missing = np.setdiff1d(pix, cover)
        assert missing.size == 0, f"{name}: {missing.size} pixels not covered at nside={nside}"
        centre = hp.ang2pix(nside, info.ra, info.dec, nest=True, lonlat=True)
        assert centre in cover


@pytest.mark.parametrize("name", COVER_BRICKS)
def test_pixels_cover_is_local(name):
    """Per brick, the cover holds only pixels near the brick (not a runaway superset)."""
    nside = 1024
    info = B.parse_brick_name(name)
    cover = H.pixels_covering_bricks([name], nside)
    ra, dec = hp.pix2ang(nside, cover, nest=True, lonlat=True)
    corners_ra = [info.ra1, info.ra2, info.ra2, info.ra1]
    corners_dec = [info.dec1, info.dec1, info.dec2, info.dec2]
    brick_radius = max(
        hp.rotator.angdist([info.ra, info.dec], [r, d], lonlat=True)[0]
        for r, d in zip(corners_ra, corners_dec, strict=True)
    )
    dist = hp.rotator.angdist(np.vstack([ra, dec]), [info.ra, info.dec], lonlat=True)
    pix_size = hp.max_pixrad(nside)
    assert np.all(dist <= brick_radius + 2.5 * pix_size)
    # and it is not wildly larger than the brick: area within ~ perimeter * 2 pixels
    brick_area = (info.ra2 - info.ra1) * np.rad2deg(
        np.sin(np.deg2rad(info.dec2)) - np.sin(np.deg2rad(info.dec1))
    )
    assert cover.size * H.pixel_area_deg2(nside) < 1.5 * brick_area + 0.05


def test_pixels_covering_bricks_misc():
    assert H.pixels_covering_bricks([], 32).size == 0
    one = H.pixels_covering_bricks(["1126p222"], 32)
    twice = H.pixels_covering_bricks(["1126p222", "1126p222"], 32)
    np.testing.assert_array_equal(one, twice)
    with pytest.raises(B.BrickNameError, match="'0000p000'"):
        H.pixels_covering_bricks(["1126p222", "0000p000"], 32)
    # union over all bricks in a band covers every pixel centre hit by the band at nside 32
    names = np.unique(B.brick_name(np.arange(0.0, 360.0, 0.05), 10.1))
    cover = H.pixels_covering_bricks(names.tolist(), 32)
    ra, dec = np.meshgrid(np.arange(0.0, 360.0, 0.01), np.linspace(10.0, 10.25, 11))
    assert np.isin(hp.ang2pix(32, ra.ravel(), dec.ravel(), nest=True, lonlat=True), cover).all()
