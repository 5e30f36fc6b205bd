"""Schedules (``observe_external_inputs``, ``graph_refresh``, ``d06_refresh``) and the
automation-condition sensor, stopped or running per environment (``configs/automation.yaml``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import dagster as dg

from stronglens_assets.automation.config import (
    AutomationConfig,
    ScheduleConfig,
    load_automation_config,
)
from stronglens_assets.project import Project

#: The D06 experiments (contract item 5); ``d06_refresh`` starts from those present.
D06_ASSET_KEYS: tuple[dg.AssetKey, ...] = tuple(
    dg.AssetKey(name)
    for name in (
        "injection_priors",
        "grid_completeness",
        "bright_arc",
        "linear_probe",
        "tier_a_scoring",
        "poisson_diagnostics",
    )
)


def _parents(assets: Sequence[dg.AssetsDefinition]) -> dict[dg.AssetKey, set[dg.AssetKey]]:
    return {spec.key: {d.asset_key for d in spec.deps} for a in assets for spec in a.specs}


def root_assets(
    assets: Sequence[dg.AssetsDefinition], within: Iterable[dg.AssetKey] | None = None
) -> list[dg.AssetKey]:
    """Keys (of ``within``, default all) with no materializable parent inside ``within``."""
    parents = _parents(assets)
    scope = set(parents) if within is None else set(within) & set(parents)
    return sorted((k for k in scope if not parents[k] & scope), key=lambda k: k.path)


def _refresh_schedule(
    name: str,
    description: str,
    roots: Sequence[dg.AssetKey],
    assets: Sequence[dg.AssetsDefinition],
    config: ScheduleConfig,
    timezone: str,
    env: str,
) -> dg.ScheduleDefinition:
    """A schedule requesting ``roots`` (every partition, one run each); the eager conditions
    then request their descendants once the roots are updated."""
    partitions = {
        spec.key: a.partitions_def for a in assets for spec in a.specs if spec.key in roots
    }

    @dg.schedule(
        name=name,
        cron_schedule=config.cron,
        execution_timezone=timezone,
        target=dg.AssetSelection.assets(*roots),
        default_status=_status(env, config.running_in, dg.DefaultScheduleStatus),
        description=description,
    )
    def refresh(context: dg.ScheduleEvaluationContext):
        stamp = context.scheduled_execution_time.isoformat()  # run keys unique per tick
        for key in roots:
            partitions_def = partitions[key]
            keys = [None] if partitions_def is None else partitions_def.get_partition_keys()
            for partition_key in keys:
                yield dg.RunRequest(
                    run_key=f"{name}:{stamp}:{key.to_user_string()}:{partition_key or ''}",
                    asset_selection=[key],
                    partition_key=partition_key,
                )

    return refresh


def _status(env: str, running_in: Sequence[str], enum: Any) -> Any:
    return enum.RUNNING if env in running_in else enum.STOPPED


def build_schedules_and_sensors(
    project: Project,
    assets: Sequence[dg.AssetsDefinition],
    sources: Sequence[dg.SourceAsset],
    config: AutomationConfig | None = None,
) -> tuple[list[dg.ScheduleDefinition], list[dg.SensorDefinition]]:
    """The three schedules and the automation sensor of ``configs/automation.yaml``."""
    config = config or load_automation_config(project)
    env = project.settings.env
    schedules = [
        dg.ScheduleDefinition(
            name="observe_external_inputs",
            cron_schedule=config.observe_external_inputs.cron,
            execution_timezone=config.timezone,
            target=dg.AssetSelection.assets(*[s.key for s in sources]),
            default_status=_status(
                env, config.observe_external_inputs.running_in, dg.DefaultScheduleStatus
            ),
            description="Observe the external inputs (lenscat CSV, DESI VAC, coadd cache).",
        ),
        _refresh_schedule(
            "graph_refresh",
            "Re-materialize the root assets; the eager conditions refresh the rest.",
            root_assets(assets),
            assets,
            config.graph_refresh,
            config.timezone,
            env,
        ),
    ]
    present = {spec.key for a in assets for spec in a.specs}
    d06 = [k for k in D06_ASSET_KEYS if k in present]
    if d06:
        schedules.append(
            _refresh_schedule(
                "d06_refresh",
                "Re-run the D06 injection-recovery experiments (their roots, then the rest).",
                root_assets(assets, d06),
                assets,
                config.d06_refresh,
                config.timezone,
                env,
            )
        )
    sensor = dg.AutomationConditionSensorDefinition(
        "automation",
        target=dg.AssetSelection.all(),
        default_status=_status(env, config.automation_sensor.running_in, dg.DefaultSensorStatus),
        minimum_interval_seconds=config.automation_sensor.minimum_interval_seconds,
        description="Evaluates every asset's automation condition (new inputs, new code).",
    )
    return schedules, [sensor]
