"""Cutout extraction from DR10-format coadd bricks (science/imaging/cutouts.py)."""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stronglens_assets.resources.coadds import LocalCoaddSource, dr10_coadd_path
from stronglens_assets.science.catalogs.bricks import BRICK_NPIX, brick_wcs
from stronglens_assets.science.imaging.cutouts import (
    BANDS,
    CUTOUT_SIZE,
    REJECT_REASONS,
    CoaddNotFoundError,
    CorruptCoaddError,
    MissingCoaddError,
    _plan_blocks,
    extract_brick_cutouts,
    pack_shard,
    validate_fits,
)
from stronglens_assets_tests.fixtures_coadds import (
    TEST_BRICK,
    brick_grid_wcs,
    coadd_header,
    default_pattern,
    full_read,
    sky_of_pixels,
    write_brick,
    write_coadd,
)

SMALL = 400
H = CUTOUT_SIZE // 2


def _objects(wcs, xs, ys, dx=0.0, dy=0.0) -> pd.DataFrame:
    xs, ys = np.asarray(xs, float), np.asarray(ys, float)
    ra, dec = sky_of_pixels(wcs, xs + dx, ys + dy)
    return pd.DataFrame({"objid": np.arange(xs.size) + 100, "ra": ra, "dec": dec})


@pytest.fixture(scope="session")
def small_brick(tmp_path_factory) -> Path:
    """Root of a 400x400 DR10-layout test brick with :func:`default_pattern` pixels."""
    root = tmp_path_factory.mktemp("small_brick")
    write_brick(root, TEST_BRICK, SMALL)
    return root


@pytest.fixture
def small_copy(small_brick: Path, tmp_path: Path) -> Path:
    """A private copy of the small brick that a test may damage."""
    dest = tmp_path / "copy"
    shutil.copytree(small_brick, dest)
    return dest


@pytest.fixture(scope="session")
def real_brick(tmp_path_factory) -> tuple[Path, np.ndarray, np.ndarray]:
    """One real-geometry (3600x3600, brick_wcs) brick with Gaussian point sources.

    Returns (root, source x, source y) (0-based pixels). Each band has its own amplitude;
    invvar and psfsize are constants per band (written once, copied across bands).
    """
    root = tmp_path_factory.mktemp("real_brick")
    header = coadd_header(TEST_BRICK, BRICK_NPIX)
    xs = np.array([1799, 60, 3539, 2500, 1000, 40, 3100])
    ys = np.array([1799, 3000, 55, 2501, 3549, 1800, 3562])
    img = np.zeros((BRICK_NPIX, BRICK_NPIX), dtype=np.float32)
    yy, xx = np.mgrid[-4:5, -4:5]
    blob = np.exp(-(xx**2 + yy**2) / (2 * 1.2**2)).astype(np.float32)
    for x, y in zip(xs, ys, strict=True):
        y0, x0 = max(y - 4, 0), max(x - 4, 0)
        y1, x1 = min(y + 5, BRICK_NPIX), min(x + 5, BRICK_NPIX)
        img[y0:y1, x0:x1] += blob[y0 - y + 4 : y1 - y + 4, x0 - x + 4 : x1 - x + 4]
    const = {"invvar": 4.0, "psfsize": 1.5}
    for j, band in enumerate(BANDS):
        write_coadd(root / dr10_coadd_path(TEST_BRICK, "image", band), img * (j + 1), header)
        for product, value in const.items():
            dest = root / dr10_coadd_path(TEST_BRICK, product, band)
            if j == 0:
                write_coadd(dest, np.full_like(img, value), header)
            else:
                shutil.copyfile(root / dr10_coadd_path(TEST_BRICK, product, BANDS[0]), dest)
    return root, xs, ys


# ------------------------------------------------------------------------------------------
# Real geometry
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["auto", "dense"])
def test_point_sources_land_on_the_central_pixel(real_brick, mode):
    root, xs, ys = real_brick
    source = LocalCoaddSource(root)
    wcs = brick_wcs(TEST_BRICK)
    objects = _objects(wcs, xs, ys, dx=0.3, dy=-0.4)  # off-centre within the pixel
    dense = {"auto": None, "dense": 0.0}[mode]  # auto: section reads (5 sparse objects)
    kwargs = {} if dense is None else {"dense_fraction": dense}
    cut, ivar, psf, index = extract_brick_cutouts(
        TEST_BRICK, objects, source.opener(TEST_BRICK), **kwargs
    )
    assert list(index["x"]) == list(xs) and list(index["y"]) == list(ys)
    # 1799 centre, 60/3539/55 are >= 50 px inside; 3549 is the last valid row (3549 + 50 =
    # 3599); 40 px and 3562 (38 px) from an edge are dropped.
    assert list(index["status"]) == ["ok", "ok", "ok", "ok", "ok", "edge", "edge"]
    assert list(index["cutout_row"]) == [0, 1, 2, 3, 4, -1, -1]
    assert cut.shape == (5, 3, CUTOUT_SIZE, CUTOUT_SIZE) and cut.dtype == np.float32
    assert ivar.shape == cut.shape and ivar.dtype == np.float32
    assert psf.shape == (5, 3) and psf.dtype == np.float32
    np.testing.assert_array_equal(psf, 1.5)
    np.testing.assert_array_equal(ivar, 4.0)
    for j, band in enumerate(BANDS):
        full = full_read(source.open(TEST_BRICK, "image", band))
        for row in range(5):
            x, y = xs[row], ys[row]
            stamp = cut[row, j]
            assert np.unravel_index(np.argmax(stamp), stamp.shape) == (H, H)
            np.testing.assert_array_equal(stamp, full[y - H : y + H + 1, x - H : x + H + 1])


def test_default_wcs_is_the_brick_wcs(real_brick):
    root, _, _ = real_brick
    wcs = brick_wcs(TEST_BRICK)
    # CRVAL (the brick centre) is FITS pixel 1800.5 = 0-based 1799.5, the corner of 4 pixels
    assert np.allclose(wcs.world_to_pixel_values(*wcs.wcs.crval), 1799.5)
    objects = _objects(wcs, [1799.5 + 0.2, 1234.2], [1799.5 - 0.2, 2345.7])
    opener = LocalCoaddSource(root).opener(TEST_BRICK)
    *_, index = extract_brick_cutouts(TEST_BRICK, objects, opener)
    assert list(index["x"]) == [1800, 1234] and list(index["y"]) == [1799, 2346]


# ------------------------------------------------------------------------------------------
# Alignment of products and bands, statuses
# ------------------------------------------------------------------------------------------
def test_products_and_bands_are_aligned(small_brick):
    wcs = brick_grid_wcs(TEST_BRICK, SMALL)
    xs, ys = np.array([50, 200, 349, 120]), np.array([50, 333, 349, 77])
    objects = _objects(wcs, xs, ys, dx=-0.45, dy=0.45)
    source = LocalCoaddSource(small_brick)
    cut, ivar, psf, index = extract_brick_cutouts(
        TEST_BRICK, objects, source.opener(TEST_BRICK), wcs=wcs
    )
    assert (index["status"] == "ok").all()
    yy, xx = np.mgrid[-H : H + 1, -H : H + 1]
    for j, band in enumerate(BANDS):
        image = full_read(source.open(TEST_BRICK, "image", band))
        invvar = full_read(source.open(TEST_BRICK, "invvar", band))
        psfmap = full_read(source.open(TEST_BRICK, "psfsize", band))
        for k, (x, y) in enumerate(zip(xs, ys, strict=True)):
            box = (slice(y - H, y + H + 1), slice(x - H, x + H + 1))
            np.testing.assert_array_equal(cut[k, j], image[box])
            np.testing.assert_array_equal(ivar[k, j], invvar[box])
            assert psf[k, j] == psfmap[y, x]
            # the known patterns: right product, right band, right pixels
            np.testing.assert_array_equal(cut[k, j], default_pattern("image", band, yy + y, xx + x))
            np.testing.assert_allclose(
                ivar[k, j], default_pattern("invvar", band, yy + y, xx + x), atol=0.1
            )
            assert psf[k, j] == pytest.approx(
                float(default_pattern("psfsize", band, np.array(y), np.array(x))), abs=1e-6
            )


def test_statuses_and_index(small_copy):
    wcs = brick_grid_wcs(TEST_BRICK, SMALL)
    header = coadd_header(TEST_BRICK, SMALL)
    yy, xx = np.mgrid[0:SMALL, 0:SMALL]
    # NaN pixel in the r image near object 1; no coverage around object 2 in z invvar
    image_r = default_pattern("image", "r", yy, xx)
    image_r[210, 95] = np.nan
    write_coadd(small_copy / dr10_coadd_path(TEST_BRICK, "image", "r"), image_r, header)
    invvar_z = default_pattern("invvar", "z", yy, xx)
    invvar_z[280:300, 280:300] = 0.0  # 400 px = 3.9% of a 101x101 cutout
    write_coadd(small_copy / dr10_coadd_path(TEST_BRICK, "invvar", "z"), invvar_z, header)

    xs = np.array([100, 100, 300, 200, 40, 60, 1500])
    ys = np.array([100, 200, 300, 200, 200, 359, 200])
    objects = _objects(wcs, xs, ys)
    objects["objid"] = ["a", "b", "c", "d", "e", "f", "g"]
    opener = LocalCoaddSource(small_copy).opener(TEST_BRICK)

    cut, ivar, psf, index = extract_brick_cutouts(
        TEST_BRICK, objects, opener, wcs=wcs, max_zero_invvar_frac=0.03
    )
    assert list(index.columns) == [
        "objid", "brick", "ra", "dec", "x", "y", "status", "cutout_row"
    ]  # fmt: skip
    assert list(index["objid"]) == list("abcdefg")
    assert (index["brick"] == TEST_BRICK).all()
    assert list(index["status"]) == [
        "ok", "nonfinite", "zero_invvar", "ok", "edge", "edge", "outside_brick"
    ]  # fmt: skip
    assert list(index["cutout_row"]) == [0, -1, -1, 1, -1, -1, -1]
    assert cut.shape[0] == ivar.shape[0] == psf.shape[0] == 2
    assert np.isfinite(cut).all()
    np.testing.assert_array_equal(
        cut[1, 0], default_pattern("image", "g", yy[150:251, 150:251], xx[150:251, 150:251])
    )

    # a looser threshold accepts the partly uncovered object
    *_, index2 = extract_brick_cutouts(
        TEST_BRICK, objects, opener, wcs=wcs, max_zero_invvar_frac=0.05
    )
    assert index2.loc[2, "status"] == "ok"


@pytest.mark.parametrize("bad_value", [0.0, -1.0])
def test_nonpositive_psfsize_is_rejected_with_its_reason(small_copy, bad_value):
    """A PSF FWHM <= 0 (e.g. a fill value where no exposure defined the PSF) is no PSF."""
    wcs = brick_grid_wcs(TEST_BRICK, SMALL)
    header = coadd_header(TEST_BRICK, SMALL)
    yy, xx = np.mgrid[0:SMALL, 0:SMALL]
    psf_g = default_pattern("psfsize", "g", yy, xx)
    psf_g[200, 100] = bad_value  # the pixel of object "b" only
    write_coadd(small_copy / dr10_coadd_path(TEST_BRICK, "psfsize", "g"), psf_g, header)
    objects = _objects(wcs, [100, 100, 200], [100, 200, 200])
    objects["objid"] = ["a", "b", "c"]
    opener = LocalCoaddSource(small_copy).opener(TEST_BRICK)
    _, _, psf, index = extract_brick_cutouts(TEST_BRICK, objects, opener, wcs=wcs)
    assert list(index["status"]) == ["ok", "bad_psfsize", "ok"]
    assert list(index["cutout_row"]) == [0, -1, 1]
    assert (psf > 0).all()
    assert "bad_psfsize" in REJECT_REASONS


def test_sparse_and_dense_reads_agree(small_brick):
    wcs = brick_grid_wcs(TEST_BRICK, SMALL)
    rng = np.random.default_rng(3)
    xs, ys = rng.integers(H, SMALL - H, 40), rng.integers(H, SMALL - H, 40)
    objects = _objects(wcs, xs, ys)
    opener = LocalCoaddSource(small_brick).opener(TEST_BRICK)
    results = [
        extract_brick_cutouts(TEST_BRICK, objects, opener, wcs=wcs, dense_fraction=f, **kw)
        for f, kw in ((0.0, {}), (2.0, {}), (2.0, {"merge_gap_pixels": 0}))
    ]
    for other in results[1:]:
        for a, b in zip(results[0][:3], other[:3], strict=True):
            np.testing.assert_array_equal(a, b)
        pd.testing.assert_frame_equal(results[0].index, other.index)


def test_plan_blocks_merges_nearby_boxes_only():
    y0 = np.array([0, 50, 2000, 3000, 3010])
    x0 = np.array([0, 3000, 100, 100, 3400])
    blocks, fraction = _plan_blocks(y0, x0, 101, 101, (1, 3600), (3600, 3600), 100_000)
    groups = sorted(sorted(b.members.tolist()) for b in blocks)
    assert groups == [[0, 1], [2], [3, 4]]
    assert fraction == pytest.approx((151 + 101 + 111) / 3600)
    b = next(b for b in blocks if 0 in b.members.tolist())
    assert (b.y0, b.y1, b.x0, b.x1) == (0, 151, 0, 3101)
    # 2-d tiles: far-apart columns of one row band are separate reads
    blocks2, _ = _plan_blocks(y0[:2] * 0, x0[:2], 101, 101, (100, 100), (3600, 3600), 0)
    assert len(blocks2) == 2


def test_no_candidates_reads_nothing():
    def open_file(product, band):
        raise AssertionError("no file should be opened")

    wcs = brick_grid_wcs(TEST_BRICK, SMALL)
    objects = _objects(wcs, [10, 5000], [10, 10])
    cut, ivar, psf, index = extract_brick_cutouts(TEST_BRICK, objects, open_file, wcs=wcs)
    assert cut.shape == (0, 3, 101, 101) and ivar.shape == cut.shape and psf.shape == (0, 3)
    assert list(index["status"]) == ["edge", "outside_brick"]
    empty = extract_brick_cutouts(TEST_BRICK, objects.iloc[:0], open_file, wcs=wcs)
    assert len(empty.index) == 0 and empty.cutouts.shape[0] == 0


# ------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------
def test_missing_band_raises_naming_it(small_copy):
    (small_copy / dr10_coadd_path(TEST_BRICK, "invvar", "z")).unlink()
    wcs = brick_grid_wcs(TEST_BRICK, SMALL)
    opener = LocalCoaddSource(small_copy).opener(TEST_BRICK)
    with pytest.raises(MissingCoaddError) as err:
        extract_brick_cutouts(TEST_BRICK, _objects(wcs, [200], [200]), opener, wcs=wcs)
    assert (err.value.brick, err.value.product, err.value.band) == (TEST_BRICK, "invvar", "z")
    assert TEST_BRICK in str(err.value) and "invvar" in str(err.value) and "'z'" in str(err.value)


def test_absent_brick(tmp_path):
    source = LocalCoaddSource(tmp_path)
    assert not source.has_brick(TEST_BRICK)
    with pytest.raises(
        CoaddNotFoundError, match=re.escape("legacysurvey-1126p222-image-g.fits.fz")
    ):
        source.open(TEST_BRICK, "image", "g")
    wcs = brick_grid_wcs(TEST_BRICK, SMALL)
    with pytest.raises(MissingCoaddError, match=TEST_BRICK):
        extract_brick_cutouts(
            TEST_BRICK, _objects(wcs, [200], [200]), source.opener(TEST_BRICK), wcs=wcs
        )


@pytest.mark.filterwarnings("ignore::astropy.utils.exceptions.AstropyUserWarning")
@pytest.mark.filterwarnings("ignore::astropy.io.fits.verify.VerifyWarning")
@pytest.mark.parametrize("damage", ["truncate", "garbage", "truncate_header", "flip_tiles"])
def test_corrupt_file_raises_naming_it(small_copy, damage):
    path = small_copy / dr10_coadd_path(TEST_BRICK, "image", "r")
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) * 2 // 3])
    elif damage == "truncate_header":
        path.write_bytes(data[:3000])
    elif damage == "garbage":
        path.write_bytes(np.random.default_rng(0).bytes(len(data)))
    else:  # overwrite the compressed heap (past the headers) with garbage
        start = 2 * 2880 + 400 * 8
        rng = np.random.default_rng(1)
        path.write_bytes(data[:start] + rng.bytes(len(data) - start))
    wcs = brick_grid_wcs(TEST_BRICK, SMALL)
    opener = LocalCoaddSource(small_copy).opener(TEST_BRICK)
    objects = _objects(wcs, [200, 60], [200, 300])
    with pytest.raises(CorruptCoaddError) as err:
        extract_brick_cutouts(TEST_BRICK, objects, opener, wcs=wcs, dense_fraction=0.0)
    assert str(path) in str(err.value) and err.value.path == str(path)
    if damage != "flip_tiles":  # structurally intact: only decompression can tell
        with pytest.raises(CorruptCoaddError, match=str(path)):
            validate_fits(path)


def test_validate_fits_accepts_good_files(small_brick):
    for path in sorted(small_brick.rglob("*.fits.fz")):
        validate_fits(path)
    with pytest.raises(FileNotFoundError):
        validate_fits(small_brick / "nope.fits.fz")


def test_wrong_image_shape_is_reported(small_brick):
    opener = LocalCoaddSource(small_brick).opener(TEST_BRICK)
    wcs = brick_wcs(TEST_BRICK)  # 3600 px grid, files are 400 px
    objects = _objects(wcs, [1799], [1799])
    with pytest.raises(CorruptCoaddError, match="shape"):
        extract_brick_cutouts(TEST_BRICK, objects, opener)


def test_argument_checks(small_brick):
    wcs = brick_grid_wcs(TEST_BRICK, SMALL)
    opener = LocalCoaddSource(small_brick).opener(TEST_BRICK)
    objects = _objects(wcs, [200], [200])
    with pytest.raises(ValueError, match="odd"):
        extract_brick_cutouts(TEST_BRICK, objects, opener, size=100, wcs=wcs)
    with pytest.raises(ValueError, match="future work"):
        extract_brick_cutouts(TEST_BRICK, objects, opener, edge_policy="stitch", wcs=wcs)
    with pytest.raises(ValueError, match="objid"):
        extract_brick_cutouts(TEST_BRICK, objects.drop(columns="objid"), opener, wcs=wcs)
    bad = objects.assign(ra=np.nan)
    with pytest.raises(ValueError, match="non-finite"):
        extract_brick_cutouts(TEST_BRICK, bad, opener, wcs=wcs)


def test_other_size_and_bands(small_brick):
    wcs = brick_grid_wcs(TEST_BRICK, SMALL)
    opener = LocalCoaddSource(small_brick).opener(TEST_BRICK)
    cut, ivar, psf, index = extract_brick_cutouts(
        TEST_BRICK, _objects(wcs, [20, 200], [200, 20]), opener, size=41, bands=("z",), wcs=wcs
    )
    assert cut.shape == ivar.shape == (2, 1, 41, 41) and psf.shape == (2, 1)
    assert list(index["status"]) == ["ok", "ok"]
    assert cut[0, 0, 20, 20] == default_pattern("image", "z", np.array(200), np.array(20))


def test_pack_shard_roundtrip_without_pickle(small_brick):
    wcs = brick_grid_wcs(TEST_BRICK, SMALL)
    opener = LocalCoaddSource(small_brick).opener(TEST_BRICK)
    objects = _objects(wcs, [200, 10, 150], [200, 200, 150])
    objects["objid"] = ["x1", "x2", "x3"]
    result = extract_brick_cutouts(TEST_BRICK, objects, opener, wcs=wcs)
    arrays = pack_shard(*result)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as loaded:
        assert list(loaded["objid"]) == ["x1", "x3"]
        np.testing.assert_array_equal(loaded["cutout"], result.cutouts)
        assert loaded["psfsize"].shape == (2, 3)
