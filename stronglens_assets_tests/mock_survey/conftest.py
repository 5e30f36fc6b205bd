"""Session fixtures: two real demo bricks built once (full 3600 x 3600 products)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from stronglens_assets.mock_survey import (
    BrickImages,
    BrickResult,
    DemoSkyConfig,
    build_survey,
    draw_brick_sky,
    load_demo_sky,
    render_brick,
)
from stronglens_assets.science.lenscat import desi_candidates, lenscat_csv_path, read_lenscat_csv

#: Demo bricks used by the tests: 4 lenscat candidates in the first, 1 in the second.
TEST_BRICKS: tuple[str, ...] = ("0366m037", "0161m005")


@dataclass(frozen=True)
class BuiltSky:
    config: DemoSkyConfig
    lenscat: pd.DataFrame
    root: Path
    results: list[BrickResult]


@pytest.fixture(scope="session")
def demo_config() -> DemoSkyConfig:
    return load_demo_sky()


@pytest.fixture(scope="session")
def lenscat_positions() -> pd.DataFrame:
    """lenscat DESI candidates (name, ra, dec, grading, ...), as the asset passes them."""
    return desi_candidates(read_lenscat_csv(lenscat_csv_path()))


@pytest.fixture(scope="session")
def built_sky(
    demo_config: DemoSkyConfig,
    lenscat_positions: pd.DataFrame,
    tmp_path_factory: pytest.TempPathFactory,
) -> BuiltSky:
    root = tmp_path_factory.mktemp("mock_sky")
    results = build_survey(demo_config, root, lenscat_positions, bricks=TEST_BRICKS, processes=2)
    return BuiltSky(demo_config, lenscat_positions, root, results)


@pytest.fixture(scope="session")
def rendered_brick(demo_config: DemoSkyConfig, lenscat_positions: pd.DataFrame) -> BrickImages:
    """In-process render of TEST_BRICKS[1] (reused by the interruption tests)."""
    sky = draw_brick_sky(demo_config, TEST_BRICKS[1], lenscat_positions)
    return render_brick(demo_config, sky)
