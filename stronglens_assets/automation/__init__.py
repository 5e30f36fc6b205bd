"""Declarative automation: external inputs as observable sources, code versions, conditions,
schedules and the automation sensor, applied centrally by :func:`automated_definitions`.

Modules: :mod:`.sources` (external inputs), :mod:`.code_versions`, :mod:`.conditions`
(conditions and their application), :mod:`.schedules` (schedules and the sensor),
:mod:`.config` (``configs/automation.yaml``), :mod:`.deploy` (executor, pool limits).

External inputs (observable source assets; their ``DataVersion`` is a content checksum):

* ``lenscat_csv``: the lenscat ``catalog.csv`` (``configs/catalogs.yaml`` ``lenscat_csv`` or
  the installed package's), SHA-256 of its bytes. Upstream of ``lenscat_catalog``.
* ``desi_vac_file`` (``s3`` only): the DESI DR1 VAC object, its S3 ETag. Upstream of
  ``desi_dr1_vac``. Locally the mock survey's ``mock_desi_vac`` asset writes that file.
* ``dr10_coadd_cache`` (``s3`` only, HEALPix-partitioned like the cutouts): per partition,
  SHA-256 over the sorted ``key, ETag, size`` of the coadd-cache objects of its bricks, so a
  brick that appears (or is re-uploaded) in the cache changes exactly its partition's version.
  Upstream of ``positive_cutouts`` and ``negative_cutouts``.

Every asset gets, unless it sets them itself:

* ``code_version`` (:func:`code_version_of`): the first 16 hex digits of the SHA-256 of the
  asset function's source text plus the source of every ``stronglens_assets`` module that the
  function names directly (e.g. ``science.catalogs.crossmatch`` for ``crossmatch_positives``, or
  ``assets.d06`` for ``grid_completeness``, whose body calls ``run_grid`` there), plus every
  ``science``/``mock_survey`` module those modules import, transitively, at module level or
  inside functions (:func:`code_modules`): editing ``science/lensing/injection.py`` changes the
  versions of the D06 assets that render arcs through ``assets/d06.py``. Editing an asset's
  body, its wiring module or the science it runs changes its version; settings, resources and
  unrelated modules do not. The version is stable across processes and machines (source text
  only). Set ``code_version=`` on an asset to pin it by hand.
* ``automation_condition`` (:data:`AUTOMATION_CONDITION`): ``(eager | code_version_changed)
  & all_deps_blocking_checks_passed``: an asset is requested when an upstream asset was
  updated (a materialization, or an observation with a new data version) or its own code
  version changed, never while an upstream blocking check fails. Re-observing an unchanged
  input requests nothing.

Schedules (``configs/automation.yaml``; crons validated at load, status per environment):
``observe_external_inputs`` (weekly by default) observes the sources; ``graph_refresh``
requests the graph's root assets, and the eager conditions then carry the refresh through the
graph in dependency order; ``d06_refresh`` does the same from the D06 experiments' roots. They
and the ``automation`` sensor (which evaluates the conditions) are stopped in the embedded
default (``local``) and running in production (``s3``), as configured.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dagster as dg

from stronglens_assets.automation.code_versions import code_modules, code_version_of
from stronglens_assets.automation.conditions import AUTOMATION_CONDITION, apply_automation
from stronglens_assets.automation.config import (
    AUTOMATION_CONFIG_FILENAME,
    AutomationConfig,
    ScheduleConfig,
    SensorConfig,
    load_automation_config,
)
from stronglens_assets.automation.deploy import (
    PoolLimits,
    apply_pool_limits,
    executor_from_env,
    load_pool_limits,
    main,
)
from stronglens_assets.automation.schedules import (
    D06_ASSET_KEYS,
    build_schedules_and_sensors,
    root_assets,
)
from stronglens_assets.automation.sources import (
    COADD_CACHE,
    DESI_VAC_FILE,
    LENSCAT_CSV,
    SOURCE_CONSUMERS,
    SOURCES_GROUP,
    build_sources,
    coadd_cache_version,
)
from stronglens_assets.project import Project

__all__ = [
    "AUTOMATION_CONDITION",
    "AUTOMATION_CONFIG_FILENAME",
    "COADD_CACHE",
    "D06_ASSET_KEYS",
    "DESI_VAC_FILE",
    "LENSCAT_CSV",
    "SOURCES_GROUP",
    "SOURCE_CONSUMERS",
    "AutomationConfig",
    "PoolLimits",
    "ScheduleConfig",
    "SensorConfig",
    "apply_automation",
    "apply_pool_limits",
    "automated_definitions",
    "build_schedules_and_sensors",
    "build_sources",
    "coadd_cache_version",
    "code_modules",
    "code_version_of",
    "executor_from_env",
    "load_automation_config",
    "load_pool_limits",
    "main",
    "root_assets",
]


def automated_definitions(
    project: Project,
    assets: Sequence[dg.AssetsDefinition],
    checks: Sequence[dg.AssetChecksDefinition],
    resources: dict[str, Any],
) -> dg.Definitions:
    """``Definitions`` of ``assets`` with the external inputs, code versions, conditions,
    schedules and sensor of this module (what :func:`build_definitions` returns)."""
    sources = build_sources(project)
    settings = project.settings
    footprint = Path(settings.footprint_file) if settings.footprint_file else None
    automated = apply_automation(assets, sources, settings.config_dir, settings.profile, footprint)
    schedules, sensors = build_schedules_and_sensors(project, automated, sources)
    return dg.Definitions(
        assets=[*sources, *automated],
        asset_checks=list(checks),
        resources=resources,
        schedules=schedules,
        sensors=sensors,
        executor=executor_from_env(),
    )
