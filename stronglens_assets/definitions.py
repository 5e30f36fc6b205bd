"""The code location: one :class:`dagster.Definitions` named ``defs``.

``dagster dev -w workspace.yaml`` and the ``stronglens`` CLI both load it. The environment
(``STRONGLENS_ENV``) picks resources; the footprint config picks the partition set.
"""

from __future__ import annotations

import dagster as dg

from stronglens_assets.assets import (
    catalogs,
    cutouts,
    d06,
    evaluation,
    mock_survey,
    negatives,
    paper,
    realism_controls,
    survey,
    training,
)
from stronglens_assets.automation import automated_definitions
from stronglens_assets.project import Project
from stronglens_assets.resources import build_resources
from stronglens_assets.settings import Settings, load_settings

ASSET_MODULES = (
    survey,
    mock_survey,
    catalogs,
    negatives,
    cutouts,
    training,
    evaluation,
    d06,
    realism_controls,
    paper,
)


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    """Assemble assets, checks and resources for ``settings`` (default: from the environment)."""
    project = Project.from_settings(settings or load_settings())
    assets: list[dg.AssetsDefinition] = []
    checks: list[dg.AssetChecksDefinition] = []
    for module in ASSET_MODULES:
        for item in module.build_assets(project):
            (checks if isinstance(item, dg.AssetChecksDefinition) else assets).append(item)
    # Every asset gets a code version and an automation condition here, centrally
    # (stronglens_assets.automation), plus the external inputs, schedules and sensor.
    return automated_definitions(project, assets, checks, build_resources(project.settings))


defs = build_definitions()
