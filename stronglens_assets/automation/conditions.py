"""Automation conditions and their central application to every asset (source dependencies,
code versions, conditions; explicit values on an asset win)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import dagster as dg

from stronglens_assets.automation.code_versions import code_version_of
from stronglens_assets.automation.sources import SOURCE_CONSUMERS

#: Requested when an upstream changed or the code changed; never past a failed blocking check.
AUTOMATION_CONDITION = (
    dg.AutomationCondition.eager() | dg.AutomationCondition.code_version_changed()
) & dg.AutomationCondition.all_deps_blocking_checks_passed()


def apply_automation(
    assets: Sequence[dg.AssetsDefinition],
    sources: Sequence[dg.SourceAsset],
    config_dir: Path | None = None,
    profile: str | None = None,
    footprint_file: Path | None = None,
) -> list[dg.AssetsDefinition]:
    """Add source dependencies, code versions and automation conditions to ``assets``.

    Explicit ``code_version`` / ``automation_condition`` on an asset win. Public keys and the
    existing dependencies are unchanged. With ``config_dir`` (the size ``profile``, the
    footprint file), the configs an asset reads enter its code version
    (:func:`code_version_of`).
    """
    source_keys = {s.key for s in sources}
    extra_deps: dict[dg.AssetKey, list[dg.AssetKey]] = {}
    for source_key, consumers in SOURCE_CONSUMERS.items():
        if source_key in source_keys:
            for consumer in consumers:
                extra_deps.setdefault(consumer, []).append(source_key)
    result: list[dg.AssetsDefinition] = []
    for assets_def in assets:
        version = code_version_of(assets_def, config_dir, profile, footprint_file)

        def update(spec: dg.AssetSpec, version: str = version) -> dg.AssetSpec:
            existing = {d.asset_key for d in spec.deps}
            deps = list(spec.deps) + [
                dg.AssetDep(k) for k in extra_deps.get(spec.key, []) if k not in existing
            ]
            return spec.replace_attributes(
                deps=deps,
                code_version=spec.code_version or version,
                automation_condition=spec.automation_condition or AUTOMATION_CONDITION,
            )

        (mapped,) = dg.map_asset_specs(update, [assets_def])
        result.append(mapped)  # type: ignore[arg-type]
    return result
