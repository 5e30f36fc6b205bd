"""Drawing the mock sky of a brick (catalog level, no pixels)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from stronglens_assets.mock_survey import DemoSkyConfig, draw_brick_sky
from stronglens_assets.mock_survey.sky import (
    CLASS_LABELS,
    MASKBITS_BRIGHT,
    bright_star_mask_radius_arcsec,
    lenscat_in_brick,
)
from stronglens_assets.science.catalogs.bricks import (
    PIXEL_SCALE_ARCSEC,
    brick_wcs,
    parse_brick_name,
)

BRICK = "0366m037"


def test_deterministic_and_seed_dependent(
    demo_config: DemoSkyConfig, lenscat_positions: pd.DataFrame
) -> None:
    a = draw_brick_sky(demo_config, BRICK, lenscat_positions)
    b = draw_brick_sky(demo_config, BRICK, lenscat_positions)
    pd.testing.assert_frame_equal(a.objects, b.objects)
    pd.testing.assert_frame_equal(a.lenses, b.lenses)
    assert a.conditions == b.conditions
    c = draw_brick_sky(demo_config.model_copy(update={"seed": 1}), BRICK, lenscat_positions)
    assert not np.array_equal(a.objects["ra"].to_numpy()[:50], c.objects["ra"].to_numpy()[:50])


def test_field_population_independent_of_lenscat(
    demo_config: DemoSkyConfig, lenscat_positions: pd.DataFrame
) -> None:
    with_lc = draw_brick_sky(demo_config, BRICK, lenscat_positions)
    without = draw_brick_sky(demo_config, BRICK, None)
    stars_a = with_lc.objects[with_lc.objects["cls"] == "star"].sort_values("ra")
    stars_b = without.objects[without.objects["cls"] == "star"].sort_values("ra")
    np.testing.assert_array_equal(stars_a["ra"].to_numpy(), stars_b["ra"].to_numpy())
    assert (without.lenses["source"] == "mock").all()


def test_objects_inside_brick_with_consistent_pixels(
    demo_config: DemoSkyConfig, lenscat_positions: pd.DataFrame
) -> None:
    sky = draw_brick_sky(demo_config, BRICK, lenscat_positions)
    obj = sky.objects
    info = parse_brick_name(BRICK)
    assert obj["ra"].between(info.ra1, info.ra2).all()
    assert obj["dec"].between(info.dec1, info.dec2).all()
    x, y = brick_wcs(info).all_world2pix(obj["ra"], obj["dec"], 0)
    np.testing.assert_allclose(obj["x"], x, atol=1e-6)
    np.testing.assert_allclose(obj["y"], y, atol=1e-6)
    assert np.array_equal(np.sort(obj["objid"].to_numpy()), np.arange(len(obj)))
    assert set(obj["cls"]) == set(CLASS_LABELS)
    assert set(obj["type"]) <= {"PSF", "REX", "EXP", "DEV", "SER"}
    assert (obj.loc[obj["cls"] == "star", "type"] == "PSF").all()
    confusers = obj["cls"].str.startswith("confuser_")
    assert not obj.loc[confusers, "is_lens"].any()
    assert obj.loc[confusers, "type"].isin(["SER", "EXP"]).all()
    assert (
        obj.loc[confusers, "shape_r"].median() > obj.loc[obj["cls"] == "disk", "shape_r"].median()
    )
    for b in sky.bands:
        assert (obj[f"flux_{b}"] > 0).all()


def test_lrg_colours_pass_desi_cuts(
    demo_config: DemoSkyConfig, lenscat_positions: pd.DataFrame
) -> None:
    obj = draw_brick_sky(demo_config, BRICK, lenscat_positions).objects
    lrg = obj[obj["cls"] == "lrg"]
    mag = {b: 22.5 - 2.5 * np.log10(lrg[f"flux_{b}"]) for b in ("g", "r", "z", "w1")}
    assert (mag["z"] - mag["w1"] > 0.8 * (mag["r"] - mag["z"]) - 0.6).mean() > 0.95
    assert ((mag["g"] - mag["w1"] > 2.9) | (mag["r"] - mag["w1"] > 1.8)).mean() > 0.95


def test_lenses(demo_config: DemoSkyConfig, lenscat_positions: pd.DataFrame) -> None:
    sky = draw_brick_sky(demo_config, BRICK, lenscat_positions)
    inside = lenscat_in_brick(lenscat_positions, BRICK)
    assert len(inside) == 4
    lenses = sky.lenses
    real = lenses[lenses["source"] == "lenscat"]
    assert list(real["name"]) == list(inside["name"])
    assert list(real["grading"]) == list(inside["grading"])
    np.testing.assert_allclose(real["ra"], inside["ra"])
    mock = lenses[lenses["source"] == "mock"]
    assert len(mock) == demo_config.lenses.mock_lenses_per_brick
    deflectors = sky.objects.set_index("objid").loc[lenses["deflector_objid"]]
    assert (deflectors["cls"] == "lrg").all() and deflectors["is_lens"].all()
    assert list(deflectors["lens_source"]) == list(lenses["source"])
    lo, hi = demo_config.lenses.theta_e_arcsec
    assert lenses["theta_e"].between(lo, hi).all()
    assert (np.hypot(lenses["gamma1"], lenses["gamma2"]) <= demo_config.lenses.shear_max).all()
    assert lenses["n_knots"].between(*demo_config.lenses.knots).all()
    knot_frac = lenses[[f"knot{k}_frac" for k in range(demo_config.lenses.knots[1])]]
    np.testing.assert_allclose(
        knot_frac.sum(axis=1, skipna=True), demo_config.lenses.structure_fraction
    )
    assert sky.objects["is_lens"].sum() == len(lenses)


def test_bright_star_maskbits(demo_config: DemoSkyConfig) -> None:
    config = demo_config.model_copy(update={"star_magnitude_range_r": (14.0, 16.5)})
    obj = draw_brick_sky(config, BRICK, None).objects
    bright = obj[(obj["cls"] == "star") & (obj["mag_r"] < 16.0)]
    assert len(bright) > 0
    assert (bright["maskbits"] & MASKBITS_BRIGHT).all()
    star = bright.iloc[0]
    radius_pix = bright_star_mask_radius_arcsec(star["mag_r"]) / PIXEL_SCALE_ARCSEC
    d = np.hypot(obj["x"] - star["x"], obj["y"] - star["y"])
    assert (obj.loc[d < radius_pix, "maskbits"] & MASKBITS_BRIGHT).all()


def test_deflectors_are_drawn_like_the_lrgs(
    demo_config: DemoSkyConfig, lenscat_positions: pd.DataFrame
) -> None:
    """Issue 8, item 2: a deflector's magnitude and size do not tell it from an LRG of the
    z-limited sample (the N1 negatives').

    Mock lenses sit on LRGs with z < 20 chosen uniformly (two-sample KS tests against all
    such LRGs of five bricks); lenscat deflectors (400 positions in one brick) follow the LRG
    magnitude law dN/dr ~ 10^(slope r) conditioned on z = r - (r - z) < 20 with
    r - z ~ N(1.0, 0.1): density ~ 10^(slope r) P(r - z > r - 20), integrated numerically.
    """
    from scipy import stats

    limit = demo_config.lenses.deflector_max_mag_z
    mags, sizes, all_mags, all_sizes = [], [], [], []
    for brick in ("0366m037", "0161m005", "0359m045", "0360m057", "0364m047"):
        objects = draw_brick_sky(demo_config, brick, lenscat_positions).objects
        mag_z = 22.5 - 2.5 * np.log10(objects["flux_z"])
        lrg = objects[(objects["cls"] == "lrg") & (objects["lens_source"] != "lenscat")]
        mock = lrg[lrg["lens_source"] == "mock"]
        assert (mag_z[mock.index] < limit).all()
        sample = lrg[mag_z[lrg.index] < limit]
        mags.append(mock["mag_r"]), sizes.append(mock["shape_r"])
        all_mags.append(sample["mag_r"]), all_sizes.append(sample["shape_r"])
    assert stats.ks_2samp(pd.concat(mags), pd.concat(all_mags)).pvalue > 0.01
    assert stats.ks_2samp(pd.concat(sizes), pd.concat(all_sizes)).pvalue > 0.01

    info = parse_brick_name(BRICK)
    rng = np.random.default_rng(0)
    many = pd.DataFrame(
        {
            "name": [f"DESI-{i:04d}" for i in range(400)],
            "ra": rng.uniform(info.ra1 + 0.01, info.ra2 - 0.01, 400),
            "dec": rng.uniform(info.dec1 + 0.01, info.dec2 - 0.01, 400),
            "grading": "probable",
        }
    )
    objects = draw_brick_sky(demo_config, BRICK, many).objects
    lenscat = objects[objects["lens_source"] == "lenscat"]
    assert len(lenscat) == 400
    assert (22.5 - 2.5 * np.log10(lenscat["flux_z"]) < limit).all()
    lo, hi = demo_config.lrg_magnitude_range_r
    grid = np.linspace(lo, hi, 20001)
    density = 10 ** (demo_config.galaxy_count_slope * grid) * stats.norm.sf(
        grid - limit, loc=1.0, scale=0.1
    )
    cumulative = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]))])
    cumulative /= cumulative[-1]
    assert stats.kstest(lenscat["mag_r"], lambda m: np.interp(m, grid, cumulative)).pvalue > 0.01
