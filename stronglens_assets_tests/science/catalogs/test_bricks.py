"""Checks of the DR10 brick grid against the reference implementation desiutil.brick.Bricks."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.wcs import WCS

from stronglens_assets.science.catalogs import bricks as B
from stronglens_assets_tests.harness import require_module

desiutil_brick = require_module(
    "desiutil.brick", "the brick grid is tested against desiutil (a dev dependency)"
)


@pytest.fixture(scope="module")
def ref() -> desiutil_brick.Bricks:
    return desiutil_brick.Bricks(bricksize=0.25)


@pytest.fixture(scope="module")
def ref_table(ref):
    t = ref.to_table()
    return {c: np.asarray(t[c]) for c in t.colnames}


def _uniform_sphere(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ra = rng.uniform(0.0, 360.0, n)
    dec = np.rad2deg(np.arcsin(rng.uniform(-1.0, 1.0, n)))
    return ra, dec


def _targeted_points(ref_table) -> tuple[np.ndarray, np.ndarray]:
    decs = [
        -90.0, 90.0, -89.99, 89.99, -89.9, 89.9, -89.875, 89.875,
        -89.8749999999, 89.8749999999, -89.8750000001, 89.8750000001,
        -0.125, 0.0, 0.125, 22.125, -22.125, 0.1249999999, -0.1250000001, 45.0, -60.0,
    ]  # fmt: skip
    ras = [0.0, 1e-12, 0.125, 180.0, 359.9999999, 360.0, -0.5, -10.0, -360.25, 720.1, 112.6]
    ra, dec = np.meshgrid(ras, decs)
    ra, dec = ra.ravel(), dec.ravel()
    # every row edge (dec exactly on a boundary between two rows)
    row_edges = -89.875 + 0.25 * np.arange(720)
    # exact column edges in a sample of rows (RA exactly on a brick boundary)
    rng = np.random.default_rng(7)
    idx = rng.choice(len(ref_table["RA1"]), 2000, replace=False)
    ra = np.concatenate([ra, np.full(720, 33.3), ref_table["RA1"][idx], ref_table["RA2"][idx]])
    dec = np.concatenate([dec, row_edges, ref_table["DEC"][idx], ref_table["DEC"][idx]])
    return ra, dec


@pytest.fixture(scope="module")
def ref_names(ref_table) -> set[str]:
    return set(ref_table["BRICKNAME"].tolist())


@pytest.fixture(scope="module")
def points(ref_table) -> tuple[np.ndarray, np.ndarray]:
    ra_u, dec_u = _uniform_sphere(10_000, seed=20251122)
    ra_t, dec_t = _targeted_points(ref_table)
    return np.concatenate([ra_u, ra_t]), np.concatenate([dec_u, dec_t])


def test_constants():
    assert B.BRICK_SIZE_DEG == 0.25
    assert B.BRICK_NPIX == 3600
    assert B.PIXEL_SCALE_ARCSEC == 0.262
    assert issubclass(B.BrickNameError, ValueError)


def test_names_and_ids_match_desiutil(ref, points):
    ra, dec = points
    names = B.brick_name(ra, dec)
    assert isinstance(names, np.ndarray)
    assert names.dtype == np.dtype("<U8")
    np.testing.assert_array_equal(names, ref.brickname(ra, dec))
    np.testing.assert_array_equal(B.brick_id(ra, dec), ref.brickid(ra, dec))


def test_centers_and_edges_match_desiutil(ref, points):
    ra, dec = points
    ra_c, dec_c = B.brick_center(ra, dec)
    ref_ra, ref_dec = ref.brick_radec(ra, dec)
    np.testing.assert_allclose(ra_c, ref_ra, rtol=0, atol=1e-10)
    np.testing.assert_allclose(dec_c, ref_dec, rtol=0, atol=1e-10)
    ra1, ra2, dec1, dec2 = B.brick_edges(ra, dec)
    v = ref.brickvertices(ra, dec)  # (n, 4, 2): (ramin, decmin), (ramax, decmin), ...
    for mine, theirs in [
        (ra1, v[:, 0, 0]),
        (ra2, v[:, 1, 0]),
        (dec1, v[:, 0, 1]),
        (dec2, v[:, 2, 1]),
    ]:
        np.testing.assert_allclose(mine, theirs, rtol=0, atol=1e-10)


def test_whole_grid_matches_desiutil_table(ref_table):
    """Every brick centre maps back onto its own brick with DR10 name, id and edges."""
    ra, dec = ref_table["RA"], ref_table["DEC"]
    np.testing.assert_array_equal(B.brick_name(ra, dec), ref_table["BRICKNAME"])
    np.testing.assert_array_equal(B.brick_id(ra, dec), ref_table["BRICKID"])
    row, col = B.brick_row_col(ra, dec)
    np.testing.assert_array_equal(row, ref_table["BRICKROW"])
    np.testing.assert_array_equal(col, ref_table["BRICKCOL"])
    ra_c, dec_c = B.brick_center(ra, dec)
    np.testing.assert_array_equal(ra_c, ra)
    np.testing.assert_array_equal(dec_c, dec)
    for mine, key in zip(B.brick_edges(ra, dec), ["RA1", "RA2", "DEC1", "DEC2"], strict=True):
        np.testing.assert_allclose(mine, ref_table[key], rtol=0, atol=1e-10)
    assert B.N_BRICKS == len(ra) == 662_174


def test_scalar_and_array_types(ref):
    name = B.brick_name(112.6, 22.25)
    assert type(name) is str
    assert name == "1126p222" == ref.brickname(112.6, 22.25)
    assert B.brick_name(np.float64(112.6), np.float64(22.25)) == "1126p222"
    assert isinstance(B.brick_id(112.6, 22.25), int)
    assert B.brick_id(112.6, 22.25) == ref.brickid(112.6, 22.25)
    arr = B.brick_name([112.6], [22.25])
    assert isinstance(arr, np.ndarray)
    assert arr.tolist() == ["1126p222"]
    grid = B.brick_name(np.zeros((2, 3)), 22.25)  # broadcasting, shape preserved
    assert grid.shape == (2, 3)
    ra_c, dec_c = B.brick_center(112.6, 22.25)
    assert isinstance(ra_c, float)
    assert isinstance(dec_c, float)
    row, col = B.brick_row_col([1.0, 2.0], [3.0, 4.0])
    assert row.dtype.kind == "i"
    assert col.dtype.kind == "i"


def test_poles_and_wrap():
    for dec in (90.0, 89.9, 89.875000001):
        assert B.brick_name(17.0, dec) == "1800p900"
        assert B.brick_center(17.0, dec) == (180.0, 90.0)
        assert B.brick_edges(17.0, dec) == (0.0, 360.0, 89.875, 90.0)
    for dec in (-90.0, -89.9):
        assert B.brick_name(250.0, dec) == "1800m900"
        assert B.brick_id(250.0, dec) == 1
        assert B.brick_edges(250.0, dec) == (0.0, 360.0, -90.0, -89.875)
    assert B.brick_id(0.0, 90.0) == B.N_BRICKS
    assert B.brick_name(360.0, 10.0) == B.brick_name(0.0, 10.0)
    assert B.brick_name(-0.1, 10.0) == B.brick_name(359.9, 10.0)
    # -1e-20 % 360 == 360.0 in floating point; it must not index past the last column
    assert B.brick_name(-1e-20, 10.0) == B.brick_name(0.0, 10.0)


@pytest.mark.parametrize(
    ("ra", "dec", "match"),
    [
        (10.0, 90.5, "90.5"),
        (10.0, -91.0, "-91.0"),
        (np.nan, 0.0, "nan"),
        (np.inf, 0.0, "inf"),
        (10.0, np.nan, "nan"),
        ([1.0, 2.0, 3.0], [0.0, 95.0, 0.0], "95.0"),
    ],
)
def test_bad_coordinates(ra, dec, match):
    with pytest.raises(ValueError, match=match):
        B.brick_name(ra, dec)


def test_parse_round_trip_sample(ref_table):
    rng = np.random.default_rng(11)
    idx = np.concatenate([[0, len(ref_table["RA"]) - 1], rng.choice(len(ref_table["RA"]), 2000)])
    for i in idx:
        info = B.parse_brick_name(str(ref_table["BRICKNAME"][i]))
        assert info.name == ref_table["BRICKNAME"][i]
        assert info.brickid == ref_table["BRICKID"][i]
        assert (info.row, info.col) == (ref_table["BRICKROW"][i], ref_table["BRICKCOL"][i])
        got = (info.ra, info.dec, info.ra1, info.ra2, info.dec1, info.dec2)
        want = tuple(ref_table[k][i] for k in ("RA", "DEC", "RA1", "RA2", "DEC1", "DEC2"))
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)
    # vectorised table on the same sample
    names = [str(n) for n in ref_table["BRICKNAME"][idx]]
    df = B.bricks_table(names)
    assert list(df.columns) == ["brickname", "brickid", "ra", "dec", "ra1", "ra2", "dec1", "dec2"]
    assert df["brickname"].tolist() == names
    np.testing.assert_array_equal(df["brickid"].to_numpy(), ref_table["BRICKID"][idx])
    for col in ("ra", "dec", "ra1", "ra2", "dec1", "dec2"):
        np.testing.assert_allclose(df[col].to_numpy(), ref_table[col.upper()][idx], atol=1e-10)


def test_parse_pole_bricks(ref_table):
    south, north = B.parse_brick_name("1800m900"), B.parse_brick_name("1800p900")
    assert ref_table["BRICKNAME"][0] == "1800m900"
    assert ref_table["BRICKNAME"][-1] == "1800p900"
    assert (south.brickid, south.ra, south.dec, south.dec1, south.dec2) == (
        1,
        180.0,
        -90.0,
        -90.0,
        -89.875,
    )
    assert (north.brickid, north.ra, north.dec, north.dec1, north.dec2) == (
        662_174,
        180.0,
        90.0,
        89.875,
        90.0,
    )
    assert (north.ra1, north.ra2) == (0.0, 360.0)


BAD_FORMAT = [
    "1126x222", "12p22", "", "1126P222", "1126p2222", "1126p22", " 1126p222", "1126p222\n",
    "abcdp222", "1126p22a", "+126p222", "1126-222",
]  # fmt: skip
NO_SUCH = [
    "3599p900",  # north pole brick is 1800p900
    "0000m900",
    "0000p000",  # first equator brick centre is RA 0.125 -> 0001p000
    "0001m000",  # the equator row is named p000
    "3600p000",  # RA >= 360
    "9999p000",
    "1800p899",  # between row 89.75 (p897) and the pole
    "0001p001",  # no row centred in [0.1, 0.2)
    "1126p223",
    "1127p222",  # neighbour brick in that row is 1129p222
]


@pytest.mark.parametrize("name", BAD_FORMAT)
def test_parse_bad_format(name):
    with pytest.raises(B.BrickNameError, match="format") as exc:
        B.parse_brick_name(name)
    assert repr(name) in str(exc.value)


@pytest.mark.parametrize("name", NO_SUCH)
def test_parse_no_such_brick(name, ref_names):
    assert name not in ref_names  # reference agrees: nonexistent
    with pytest.raises(B.BrickNameError, match="no such brick") as exc:
        B.parse_brick_name(name)
    assert repr(name) in str(exc.value)


def test_existing_edge_names(ref_names):
    for name in ("0001p000", "3598p000", "1129p222", "0001m002"):
        assert name in ref_names
        assert B.parse_brick_name(name).name == name


@pytest.mark.parametrize("value", [None, 1126, b"1126p222"])
def test_parse_non_str(value):
    with pytest.raises(B.BrickNameError):
        B.parse_brick_name(value)  # type: ignore[arg-type]


def test_bricks_table_errors_and_empty():
    with pytest.raises(B.BrickNameError) as exc:
        B.bricks_table(["1126p222", "bogus", "0000p000"])
    msg = str(exc.value)
    assert "'bogus'" in msg
    assert "'0000p000'" in msg
    assert "1126p222'" not in msg
    empty = B.bricks_table([])
    assert len(empty) == 0
    assert empty.columns[0] == "brickname"


def test_brick_info_frozen():
    info = B.parse_brick_name("1126p222")
    with pytest.raises(AttributeError):
        info.ra = 0.0  # type: ignore[misc]


@pytest.mark.parametrize("name", ["1126p222", "0001p000", "3598m002", "1748m452", "3001m700"])
def test_brick_wcs(name):
    info = B.parse_brick_name(name)
    w = B.brick_wcs(name)
    assert w.pixel_shape == (3600, 3600)
    assert list(w.wcs.ctype) == ["RA---TAN", "DEC--TAN"]
    np.testing.assert_allclose(w.wcs.crpix, [1800.5, 1800.5])
    scale = 0.262 / 3600
    np.testing.assert_allclose(w.wcs.cd, [[-scale, 0.0], [0.0, scale]], rtol=1e-15)
    # FITS pixel (1800.5, 1800.5) == 0-based (1799.5, 1799.5) is the brick centre
    c = w.pixel_to_world(1799.5, 1799.5)
    assert abs(((c.ra.deg - info.ra + 180.0) % 360.0) - 180.0) < 1e-9
    assert abs(c.dec.deg - info.dec) < 1e-9
    ra_fits, dec_fits = w.all_pix2world(1800.5, 1800.5, 1)  # FITS 1-based convention
    assert abs(((float(ra_fits) - info.ra + 180.0) % 360.0) - 180.0) < 1e-9
    assert abs(float(dec_fits) - info.dec) < 1e-9
    # the 0.25 deg brick sits inside the 3600 x 0.262" = 0.262 deg coadd; RA increases leftwards.
    half_px = 0.125 * 3600 / 0.262  # 1717.6 px from the centre along Dec
    x1, y1 = w.world_to_pixel_values(info.ra1, info.dec)
    x2, y2 = w.world_to_pixel_values(info.ra2, info.dec)
    assert x2 < 1799.5 < x1
    assert -0.5 < x2 and x1 < 3599.5
    if abs(info.dec) < 1.0:
        np.testing.assert_allclose([x1, x2], [1799.5 + half_px, 1799.5 - half_px], atol=1.0)
        np.testing.assert_allclose([y1, y2], [1799.5, 1799.5], atol=1.0)
    _, yb = w.world_to_pixel_values(info.ra, info.dec1)
    _, yt = w.world_to_pixel_values(info.ra, info.dec2)
    np.testing.assert_allclose([yb, yt], [1799.5 - half_px, 1799.5 + half_px], atol=0.5)
    # same WCS from a BrickInfo and from the FITS header
    w_info = B.brick_wcs(info)
    np.testing.assert_allclose(w_info.wcs.crval, w.wcs.crval)
    hdr = B.brick_wcs_header(name)
    assert (hdr["NAXIS1"], hdr["NAXIS2"]) == (3600, 3600)
    w_hdr = WCS(hdr)
    xs = np.array([0.0, 3599.0, 1799.5, 100.0])
    ys = np.array([0.0, 3599.0, 1799.5, 3000.0])
    a = np.array(w.pixel_to_world_values(xs, ys))
    b = np.array(w_hdr.pixel_to_world_values(xs, ys))
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-9)


def test_brick_wcs_bad_name():
    with pytest.raises(B.BrickNameError, match="'nope'"):
        B.brick_wcs("nope")


def test_brick_area_matches_desiutil() -> None:
    from desiutil.brick import Bricks

    from stronglens_assets.science.catalogs.bricks import brick_area_deg2, bricks_table

    names = ["1126p222", "0001p000", "1800p900", "0366m037", "1800m900", "3420m897"]
    table = bricks_table(names)
    expected = Bricks(0.25).brickarea(table["ra"].to_numpy(), table["dec"].to_numpy())
    np.testing.assert_allclose(brick_area_deg2(table), expected, rtol=1e-6)
