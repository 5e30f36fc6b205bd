"""Mock-survey fixtures; the two-brick demo sky itself (``built_sky``) is in the root conftest."""

from __future__ import annotations

import pandas as pd
import pytest

from stronglens_assets.mock_survey import BrickImages, DemoSkyConfig, draw_brick_sky, render_brick
from stronglens_assets_tests.harness import TEST_BRICKS


@pytest.fixture(scope="session")
def rendered_brick(demo_config: DemoSkyConfig, lenscat_positions: pd.DataFrame) -> BrickImages:
    """In-process render of TEST_BRICKS[1] (reused by the interruption tests)."""
    sky = draw_brick_sky(demo_config, TEST_BRICKS[1], lenscat_positions)
    return render_brick(demo_config, sky)
