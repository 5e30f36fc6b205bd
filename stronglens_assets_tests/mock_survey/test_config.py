"""Mock-sky configuration: defaults, validation errors naming field and value."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from stronglens_assets.config import ConfigError
from stronglens_assets.mock_survey.config import (
    DEFAULT_DEMO_SKY_PATH,
    DemoSkyConfig,
    config_checksum,
    load_demo_sky,
)
from stronglens_assets.settings import PROJECT_ROOT


def _demo_data() -> dict:
    return yaml.safe_load(DEFAULT_DEMO_SKY_PATH.read_text())


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "sky.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_default_demo_sky() -> None:
    config = load_demo_sky()
    assert len(config.bricks) == 24  # 16 densest + 8 bringing in held-out Tier-A candidates
    assert config.image_bands == ("g", "r", "z")
    assert config.processes == 2
    assert 24 * config.lenses.mock_lenses_per_brick >= 100  # over a hundred mock lenses
    assert config.bad_strips_per_brick > 0


def test_checksum_ignores_parallelism_and_brick_list() -> None:
    config = load_demo_sky()
    same = config.model_copy(update={"processes": 7, "bricks": config.bricks[:2]})
    assert config_checksum(same) == config_checksum(config)
    other = config.model_copy(update={"seed": config.seed + 1})
    assert config_checksum(other) != config_checksum(config)


@pytest.mark.parametrize(
    ("mutate", "pattern"),
    [
        (lambda d: d["bands"].update(y=dict(d["bands"]["g"])), r"bands: .*unknown band.*'y'"),
        (lambda d: d["bands"].pop("z"), r"bands: .*band\(s\) z missing"),
        (lambda d: d["bricks"].append("9999p999"), r"bricks: .*9999p999"),
        (lambda d: d["bricks"].append("0366x037"), r"bricks: .*0366x037"),
        (
            lambda d: d["bands"]["r"].update(psf_depth_mag=-1.0),
            r"bands\.r\.psf_depth_mag: .*greater than 0",
        ),
        (
            lambda d: d["bands"]["g"].update(psf_fwhm_arcsec=0.0),
            r"bands\.g\.psf_fwhm_arcsec: .*greater than 0",
        ),
        (lambda d: d.update(magnitude_range_r=[24, 17]), r"magnitude_range_r: .*low <= high"),
        (lambda d: d["lenses"].update(knots=[2, 1]), r"lenses\.knots: .*low <= high"),
        (
            lambda d: d["lenses"].update(structure_fraction=1.0),
            r"lenses\.structure_fraction: .*less than 1",
        ),
        (lambda d: d.update(confuser_fraction=2.0), r"confuser_fraction: .*less than or equal"),
        (lambda d: d.update(sead=1), r"sead: Extra inputs"),
    ],
)
def test_bad_config_names_field(tmp_path: Path, mutate, pattern: str) -> None:
    data = _demo_data()
    mutate(data)
    with pytest.raises(ConfigError, match=pattern):
        load_demo_sky(_write(tmp_path, data))


def test_config_roundtrips_through_json() -> None:
    config = load_demo_sky()
    again = DemoSkyConfig.model_validate_json(config.model_dump_json())
    assert again == config


def _demo_split_config():
    from stronglens_assets.science.samples.negative_config import (
        load_negative_selection_config,
    )

    return load_negative_selection_config(PROJECT_ROOT / "configs" / "negatives.yaml", "demo")


def test_demo_bricks_follow_the_densest_candidate_rule(lenscat_positions) -> None:
    """configs/demo_sky.yaml lists exactly the bricks the documented rule picks."""
    from stronglens_assets.mock_survey.config import demo_bricks

    assert list(load_demo_sky().bricks) == demo_bricks(lenscat_positions, _demo_split_config())


def test_demo_bricks_hold_held_out_tier_a_candidates(lenscat_positions) -> None:
    """Spectroscopic validation is measured on real confident lenses of the TEST split
    (issue 18, item 7): >= 5 Tier-A candidates in the demo bricks sit in test sky cells, clear
    of the split guard (recomputed here with healpy on the demo profile's cells)."""
    import healpy as hp

    from stronglens_assets.mock_survey.config import DEMO_HELD_OUT_TIER_A, held_out_tier_a
    from stronglens_assets.science.catalogs.bricks import brick_name
    from stronglens_assets.science.samples.splits import split_of_cells

    split_config = _demo_split_config()
    tier_a = lenscat_positions[lenscat_positions["tier"] == "A"]
    names = brick_name(tier_a["ra"].to_numpy(), tier_a["dec"].to_numpy())
    in_sky = tier_a[np.isin(names, load_demo_sky().bricks)]
    held_out = held_out_tier_a(in_sky, split_config)
    assert int(held_out.sum()) >= DEMO_HELD_OUT_TIER_A >= 5
    cells = hp.ang2pix(
        split_config.split_nside,
        in_sky["ra"].to_numpy()[held_out],
        in_sky["dec"].to_numpy()[held_out],
        nest=True,
        lonlat=True,
    )
    assert set(split_of_cells(cells, split_config)) == {"test"}


def test_brick_rule_adds_fewest_tier_a_bricks() -> None:
    """Hand-made candidates: two dense cells without Tier-A; Tier-A bricks elsewhere."""
    from stronglens_assets.mock_survey.config import densest_candidate_bricks
    from stronglens_assets.science.catalogs.bricks import brick_center

    def at(brick_ra: float, brick_dec: float, tier: str, n: int = 1) -> pd.DataFrame:
        ra, dec = brick_center(np.array([brick_ra]), np.array([brick_dec]))
        return pd.DataFrame({"ra": [ra[0]] * n, "dec": [dec[0]] * n, "tier": [tier] * n})

    candidates = pd.concat(
        [
            at(36.6, -3.7, "B", 5),  # dense cell, no Tier-A
            at(36.0, -4.5, "B", 4),
            at(200.0, 30.0, "A", 1),  # a cell with 3 Tier-A (2 + 1) ...
            at(200.3, 30.0, "A", 2),
            at(100.0, -30.0, "A", 1),  # ... and one with a single Tier-A
        ],
        ignore_index=True,
    )
    chosen = densest_candidate_bricks(candidates, n_cells=1, bricks_per_cell=2, min_tier_a=2)
    assert len(chosen) == 3  # two dense bricks + the single brick holding 2 Tier-A
    # only held-out Tier-A count when the column is given: the brick with 2 is not held out
    held = candidates.assign(held_out=[False] * 9 + [True, False, False, True])
    assert len(densest_candidate_bricks(held, n_cells=1, bricks_per_cell=2, min_tier_a=2)) == 4
    assert (
        densest_candidate_bricks(candidates, n_cells=1, bricks_per_cell=2, min_tier_a=0)
        == (chosen[:2])
    )
    # 4 Tier-A: the whole 3-Tier-A cell first (2 bricks), then the other cell's brick
    assert (
        len(densest_candidate_bricks(candidates, n_cells=1, bricks_per_cell=2, min_tier_a=4)) == 5
    )
