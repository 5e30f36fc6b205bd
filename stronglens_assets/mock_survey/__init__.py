"""The embedded default data source: a seeded writer of DR10-format products.

Pure Python (no Dagster). :func:`build_survey` writes, for each configured brick, the coadd
``legacysurvey-<brick>-{image,invvar,psfsize}-<band>.fits.fz`` files, a sweep-like Parquet
catalog consistent with the pixels and truth tables (lenses, object classes). Real lenscat
DESI positions inside the bricks are rendered as lenses (``source = "lenscat"``), and extra
simulated lenses are planted on LRGs (``source = "mock"``).
"""

from stronglens_assets.mock_survey.config import (
    DemoSkyConfig,
    config_checksum,
    load_demo_sky,
)
from stronglens_assets.mock_survey.render import BrickImages, render_brick
from stronglens_assets.mock_survey.sky import SkyModel, draw_brick_sky
from stronglens_assets.mock_survey.writer import (
    BrickResult,
    brick_paths,
    build_brick,
    build_survey,
    is_brick_complete,
)

__all__ = [
    "BrickImages",
    "BrickResult",
    "DemoSkyConfig",
    "SkyModel",
    "brick_paths",
    "build_brick",
    "build_survey",
    "config_checksum",
    "draw_brick_sky",
    "is_brick_complete",
    "load_demo_sky",
    "render_brick",
]
