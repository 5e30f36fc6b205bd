"""Tests of stronglens_assets.science.catalogs.crossmatch on catalogues with known offsets."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pandas as pd
import pytest
from astropy.coordinates import SkyCoord

from stronglens_assets.science.catalogs import crossmatch as X


def _offset(ra: float, dec: float, east_arcsec: float, north_arcsec: float) -> tuple[float, float]:
    """Position displaced by small east/north offsets (arcsec) on the tangent plane."""
    d = dec + north_arcsec / 3600.0
    r = (ra + east_arcsec / 3600.0 / np.cos(np.deg2rad(dec))) % 360.0
    return r, d


CENTRES = [(10.0, 0.0), (359.99995, 1.0), (0.00002, -30.0), (150.0, 80.0), (200.0, -45.0)]


@pytest.fixture
def catalogs() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sources at CENTRES; positives at 0.5" (should match) and 2" (should not) from them."""
    src = pd.DataFrame(
        {
            "RA": [c[0] for c in CENTRES],
            "DEC": [c[1] for c in CENTRES],
            "BRICKNAME": [f"b{i}" for i in range(len(CENTRES))],
            "OBJID": np.arange(len(CENTRES), dtype=np.int64) + 100,
            "TYPE": ["DEV", "SER", "EXP", "REX", "DEV"],
            "FLUX_G": np.float32([1, 2, 3, 4, 5]),
            "PSFSIZE_G": np.float32([1.1, 1.2, 1.3, 1.4, 1.5]),
        }
    )
    rows = []
    for i, (ra, dec) in enumerate(CENTRES):
        for dist, ok in ((0.5, True), (2.0, False)):
            angle = 0.7 * i + dist
            r, d = _offset(ra, dec, dist * np.cos(angle), dist * np.sin(angle))
            rows.append({"ra": r, "dec": d, "tier": "A" if ok else "B", "want": i if ok else -1})
    return pd.DataFrame(rows), src


def test_nearest_match_known_offsets(catalogs: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    pos, src = catalogs
    idx, sep = X.nearest_match(pos["ra"], pos["dec"], src["RA"], src["DEC"], 1.0)
    np.testing.assert_array_equal(idx, pos["want"].to_numpy())
    expected = np.where(pos["want"] >= 0, 0.5, 2.0)
    np.testing.assert_allclose(sep, expected, rtol=1e-3)


def test_nearest_of_two_candidates() -> None:
    ra2 = np.array([10.0, 10.0 + 0.3 / 3600.0])
    idx, sep = X.nearest_match([10.0 + 0.25 / 3600.0], [0.0], ra2, [0.0, 0.0], 1.0)
    assert idx.tolist() == [1]
    assert sep[0] == pytest.approx(0.05, abs=1e-6)


def test_empty_catalogues() -> None:
    idx, sep = X.nearest_match([1.0, 2.0], [0.0, 0.0], [], [], 1.0)
    assert idx.tolist() == [-1, -1] and np.isinf(sep).all()
    idx, sep = X.nearest_match([], [], [1.0], [0.0], 1.0)
    assert idx.size == 0 and sep.size == 0
    idx, _ = X.nearest_match([1.0], [0.0], [1.0], [0.0], 1.0)  # one-element catalogue
    assert idx.tolist() == [0]
    with pytest.raises(ValueError):
        X.nearest_match([1.0], [0.0], [1.0], [0.0], -1.0)


def test_crossmatch_positives(catalogs: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    pos, src = catalogs
    out = X.crossmatch_positives(pos, src, radius_arcsec=1.0)
    assert list(out.columns[: len(pos.columns)]) == list(pos.columns)
    assert out["matched"].tolist() == (pos["want"] >= 0).tolist()
    hit = out[out["matched"]]
    assert hit["BRICKNAME"].tolist() == [f"b{i}" for i in range(len(CENTRES))]
    assert hit["OBJID"].tolist() == list(range(100, 100 + len(CENTRES)))
    miss = out[~out["matched"]]
    assert miss["OBJID"].isna().all() and miss["BRICKNAME"].isna().all()
    assert miss["FLUX_G"].isna().all() and out["FLUX_G"].dtype == np.float32
    assert str(out["OBJID"].dtype) == "Int64"
    assert {"PSFSIZE_G", "TYPE", "sep_arcsec"} <= set(out.columns)
    # a larger radius matches everything
    assert X.crossmatch_positives(pos, src, radius_arcsec=2.5)["matched"].all()


def test_crossmatch_without_sources(catalogs: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    pos, src = catalogs
    out = X.crossmatch_positives(pos, src.iloc[:0])
    assert not out["matched"].any() and np.isinf(out["sep_arcsec"]).all()
    assert str(out["OBJID"].dtype) == "Int64"


def test_match_counts_by_tier(catalogs: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    pos, src = catalogs
    pos = pos.assign(tier=["A", "A", "B", "B", "A", "B", "B", "B", "A", "A"])
    counts = X.match_counts_by_tier(X.crossmatch_positives(pos, src))
    assert counts.loc["all", "total"] == 10 and counts.loc["all", "matched"] == 5
    assert counts.loc["A", "total"] == 5 and counts.loc["A", "matched"] == 3
    assert counts.loc["B", "matched"] == 2 and counts.loc["B", "unmatched"] == 3
    assert counts.loc["all", "match_fraction"] == pytest.approx(0.5)


# ----------------------------------------------------------------------------------------------
# within_radius (the known-lens exclusion of the negative pool)
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("lens_ra", "lens_dec"), [(10.0, 0.0), (0.0, 5.0), (359.999, -30.0)])
@pytest.mark.parametrize("radius", [5.0, 20.0])
def test_exclusion_radius_edges(lens_ra: float, lens_dec: float, radius: float) -> None:
    """Galaxies at 0.9 r (excluded) and 1.1 r (kept) in 8 directions, across RA = 0/360."""
    lens = SkyCoord(lens_ra * u.deg, lens_dec * u.deg)
    angles = np.arange(8) * 45.0 * u.deg
    inner = lens.directional_offset_by(angles, 0.9 * radius * u.arcsec)
    outer = lens.directional_offset_by(angles, 1.1 * radius * u.arcsec)
    ra = np.concatenate([inner.ra.deg, outer.ra.deg])
    dec = np.concatenate([inner.dec.deg, outer.dec.deg])
    if lens_ra in (0.0, 359.999):
        assert ra.min() < 1.0 and ra.max() > 359.0  # the ring straddles RA = 0
    lens_ra_list = [200.0, lens_ra, 50.0]  # other far-away lenses do not matter
    lens_dec_list = [10.0, lens_dec, -60.0]
    mask = X.within_radius(ra, dec, lens_ra_list, lens_dec_list, radius)
    assert mask.tolist() == [True] * 8 + [False] * 8


def test_exclusion_matches_brute_force() -> None:
    rng = np.random.default_rng(11)
    lens_ra = np.concatenate([rng.uniform(0, 360, 300), [0.0, 120.0]])
    lens_dec = np.concatenate([np.rad2deg(np.arcsin(rng.uniform(-1, 1, 300))), [89.99, -89.98]])
    # sources scattered around lenses (up to 3x the radius) plus random ones
    for radius in (1.0, 20.0, 600.0):
        pick = rng.integers(0, lens_ra.size, 4000)
        c = SkyCoord(lens_ra[pick] * u.deg, lens_dec[pick] * u.deg)
        pos = c.directional_offset_by(
            rng.uniform(0, 360, pick.size) * u.deg, rng.uniform(0, 3 * radius, pick.size) * u.arcsec
        )
        ra = np.concatenate([pos.ra.deg, rng.uniform(0, 360, 1000)])
        dec = np.concatenate([pos.dec.deg, rng.uniform(-90, 90, 1000)])
        got = X.within_radius(ra, dec, lens_ra, lens_dec, radius)
        _, sep, _ = SkyCoord(ra * u.deg, dec * u.deg).match_to_catalog_sky(
            SkyCoord(lens_ra * u.deg, lens_dec * u.deg)
        )
        want = sep.arcsec <= radius
        assert 0 < want.sum() < want.size
        np.testing.assert_array_equal(got, want)


def test_exclusion_edge_cases() -> None:
    assert X.within_radius([1.0], [1.0], [], [], 20.0).tolist() == [False]
    assert X.within_radius([], [], [1.0], [1.0], 20.0).size == 0
    nan_lens = X.within_radius([1.0], [1.0], [np.nan, 1.0], [1.0, 1.0], 1.0)
    assert nan_lens.tolist() == [True]
    # radii of degrees (coarse or no HEALPix pre-filter) stay exact
    for radius_deg in (3.0, 10.0):
        ra = np.array([0.0, 0.0, 0.0, 180.0])
        dec = np.array([0.9 * radius_deg, 1.1 * radius_deg, -1.1 * radius_deg, 60.0])
        mask = X.within_radius(ra, dec, [0.0, 30.0], [0.0, 0.0], radius_deg * 3600)
        assert mask.tolist() == [True, False, False, False]
