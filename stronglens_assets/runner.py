"""Materialize the whole asset graph, every partition, into a persistent Dagster instance.

Used by ``stronglens demo``. The graph is cut into *stages*: maximal groups of assets that
share one partitions definition and whose upstream assets are already done. An
unpartitioned stage is one run; a partitioned stage is one run per partition key. Runs go
into the instance in ``$STRONGLENS_HOME/dagster_home``, so ``dagster dev`` shows them.

A run fails when a step fails or an ERROR-severity asset check fails (Dagster's blocking
semantics); a failed WARN-severity check is reported with the run but does not stop the graph.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from stronglens_assets.settings import Settings, export_dagster_home

_QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass(frozen=True)
class Stage:
    """Assets materialized together: one run, or one run per partition key."""

    asset_keys: tuple[dg.AssetKey, ...]
    partition_keys: tuple[str, ...] | None


@dataclass
class RunRecord:
    """Outcome of one run of a stage."""

    asset_keys: tuple[dg.AssetKey, ...]
    partition_key: str | None
    run_id: str
    success: bool
    seconds: float
    failed_steps: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def ensure_instance_home(settings: Settings) -> Path:
    """Create ``$STRONGLENS_HOME/dagster_home`` with a ``dagster.yaml`` and export DAGSTER_HOME."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text("telemetry:\n  enabled: false\n")
    export_dagster_home(home)
    return home


def plan_stages(
    defs: dg.Definitions, selection: Sequence[dg.AssetKey] | None = None
) -> list[Stage]:
    """Cut the (selected part of the) asset graph into stages in dependency order."""
    graph = defs.resolve_asset_graph()
    materializable = [k for k in graph.toposorted_asset_keys if graph.get(k).is_materializable]
    wanted = set(selection) if selection is not None else set(materializable)
    unknown = wanted - set(materializable)
    if unknown:
        names = ", ".join(sorted(k.to_user_string() for k in unknown))
        raise ValueError(f"unknown or non-materializable asset keys: {names}")
    order = [k for k in materializable if k in wanted]
    parents = {k: {p for p in graph.get(k).parent_keys if p in wanted} for k in order}
    done: set[dg.AssetKey] = set()
    stages: list[Stage] = []
    while len(done) < len(order):
        ready = [k for k in order if k not in done and parents[k] <= done]
        partitions_def = graph.get(ready[0]).partitions_def
        members: list[dg.AssetKey] = []
        grew = True
        while grew:
            grew = False
            for key in order:
                if key in done or key in members:
                    continue
                if graph.get(key).partitions_def != partitions_def:
                    continue
                if parents[key] <= done | set(members):
                    members.append(key)
                    grew = True
        partition_keys = (
            None if partitions_def is None else tuple(partitions_def.get_partition_keys())
        )
        stages.append(Stage(tuple(k for k in order if k in members), partition_keys))
        done.update(members)
    return stages


def run_stages(
    defs: dg.Definitions,
    stages: Sequence[Stage],
    instance: dg.DagsterInstance,
    report: Callable[[str], None] = print,
) -> list[RunRecord]:
    """Execute ``stages`` in order; stop at the first failed run."""
    job = defs.resolve_implicit_global_asset_job_def()
    total = sum(1 if s.partition_keys is None else len(s.partition_keys) for s in stages)
    records: list[RunRecord] = []
    for stage in stages:
        names = ", ".join(k.to_user_string() for k in stage.asset_keys)
        for partition_key in stage.partition_keys or (None,):
            label = names if partition_key is None else f"{names} [{partition_key}]"
            report(f"[{len(records) + 1}/{total}] {label} ...")
            started = time.perf_counter()
            result = job.execute_in_process(
                instance=instance,
                partition_key=partition_key,
                asset_selection=list(stage.asset_keys),
                raise_on_error=False,
                run_config=_QUIET_RUN_CONFIG,
                tags={"stronglens/launched_by": "stronglens demo"},
            )
            seconds = time.perf_counter() - started
            failed = [e.step_key for e in result.all_events if e.is_step_failure and e.step_key]
            warnings: list[str] = []
            for event in result.all_events:
                if event.event_type_value != "ASSET_CHECK_EVALUATION":
                    continue
                evaluation = event.asset_check_evaluation_data
                if evaluation.passed:
                    continue
                name = f"check {evaluation.check_name}"
                if evaluation.severity == dg.AssetCheckSeverity.WARN:
                    warnings.append(name)
                else:
                    failed.append(name)
            record = RunRecord(
                stage.asset_keys,
                partition_key,
                result.run_id,
                result.success and not failed,
                seconds,
                failed,
                warnings,
            )
            records.append(record)
            status = "ok" if record.success else f"FAILED ({', '.join(failed) or 'see run'})"
            if warnings:
                status += f", WARNING ({', '.join(warnings)})"
            report(f"    {status} in {seconds:.1f} s (run {result.run_id[:8]})")
            if not record.success:
                return records
    return records
