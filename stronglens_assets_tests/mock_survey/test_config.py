"""Mock-sky configuration: defaults, validation errors naming field and value."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from stronglens_assets.config import ConfigError
from stronglens_assets.mock_survey.config import (
    DEFAULT_DEMO_SKY_PATH,
    DemoSkyConfig,
    config_checksum,
    load_demo_sky,
)


def _demo_data() -> dict:
    return yaml.safe_load(DEFAULT_DEMO_SKY_PATH.read_text())


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "sky.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_default_demo_sky() -> None:
    config = load_demo_sky()
    assert len(config.bricks) == 16
    assert config.image_bands == ("g", "r", "z")
    assert config.processes == 2
    assert 16 * config.lenses.mock_lenses_per_brick >= 200  # a few hundred mock lenses
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
        (lambda d: d["lenses"].update(clumps=[2, 1]), r"lenses\.clumps: .*low <= high"),
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


def test_demo_bricks_follow_the_densest_candidate_rule(lenscat_positions) -> None:
    """configs/demo_sky.yaml lists exactly the bricks the documented rule picks."""
    from stronglens_assets.mock_survey.config import densest_candidate_bricks

    assert list(load_demo_sky().bricks) == densest_candidate_bricks(lenscat_positions)
