"""Materialize the whole asset graph, every partition, into a persistent Dagster instance.

Used by ``stronglens demo``. The graph is cut into *stages*: maximal groups of assets that
share one partitions definition and whose upstream assets are already done. An
unpartitioned stage is one run; a partitioned stage is one run per partition key. Runs go
into the instance of the environment (:attr:`Settings.dagster_home`), so ``stronglens ui``
shows them.

Re-runs skip what is done, by Dagster's own staleness: an asset partition is *up to date* when
it was materialized, its code version (which covers the configs it reads, see
:mod:`stronglens_assets.automation.code_versions`) and the data versions of its inputs are
unchanged since that materialization (Dagster's ``StaleStatus.FRESH``), and none of its
ERROR-severity checks failed on it. A stage partition whose assets are all up to date is
reported as "up to date, skipped"; otherwise the assets that are not, and those downstream of
them in the stage, run. ``force=True`` runs everything. The external inputs (observable source
assets) are observed first, so a changed input makes its consumers stale.

A run fails when a step fails or an ERROR-severity asset check fails (Dagster's blocking
semantics); a failed WARN-severity check is reported with the run but does not stop the graph.
Each run is tagged with the host and PID of the process that executes it: a run whose process
is gone (killed) is marked failed and its pool slots and pending claims are freed before the
next run, and a run that needs a slot of a full pool waits in this process (saying so, ending
on SIGTERM) instead of inside Dagster's executor. Progress messages of the assets (per brick,
epoch, cell) are printed as they come; every log record, tracebacks included, goes to a log
file the summary names.
"""

from __future__ import annotations

import difflib
import logging
import os
import signal
import socket
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import dagster as dg
from dagster._core.definitions.assets.graph.base_asset_graph import BaseAssetGraph
from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
from dagster._utils.error import SerializableErrorInfo

from stronglens_assets.errors import StronglensError
from stronglens_assets.settings import Settings, export_dagster_home

#: Run tags naming the process that executes a run (to clear runs whose process is gone).
HOST_TAG = "stronglens/host"
PID_TAG = "stronglens/pid"
LAUNCHED_BY_TAG = "stronglens/launched_by"
ENVIRONMENT_TAG = "stronglens/environment"
#: Tag of the runs that only observe the external inputs (before the stages).
OBSERVATION_TAG = "stronglens/observation"

_IN_PROGRESS = (
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
)

#: Seconds between checks for a free pool slot, and between repeated "waiting" lines.
POOL_POLL_SECONDS = 2.0
POOL_REPORT_SECONDS = 60.0


@dataclass(frozen=True)
class Stage:
    """Assets materialized together: one run, or one run per partition key."""

    asset_keys: tuple[dg.AssetKey, ...]
    partition_keys: tuple[str, ...] | None


@dataclass
class RunRecord:
    """Outcome of one run of a stage (or of a stage partition skipped as up to date)."""

    asset_keys: tuple[dg.AssetKey, ...]
    partition_key: str | None
    run_id: str | None
    success: bool
    seconds: float
    failed_steps: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    skipped: bool = False
    #: assets of the stage left out of the run (or the skip) because they were up to date
    up_to_date: tuple[dg.AssetKey, ...] = ()
    #: first line of the first error (step failure or failed check), for the summary
    error: str | None = None


class UnknownAssetKeyError(StronglensError, ValueError):
    """An asset key or partition key that is not in the graph; names the nearest ones."""


def ensure_instance_home(settings: Settings) -> Path:
    """Create the environment's Dagster instance directory (``Settings.dagster_home``) with a
    ``dagster.yaml`` (telemetry off) and export ``DAGSTER_HOME``."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text("telemetry:\n  enabled: false\n")
    export_dagster_home(home)
    return home


def nearest_names(name: str, candidates: Sequence[str]) -> str:
    """`` (did you mean a, b?)`` with the candidates closest to ``name``, or ``""``."""
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.5)
    return f" (did you mean {', '.join(close)}?)" if close else ""


def parse_asset_keys(names: Sequence[str], defs: dg.Definitions) -> list[dg.AssetKey]:
    """Asset keys from user strings (``a/b`` for multi-part keys); an unknown or
    non-materializable key is an :class:`UnknownAssetKeyError` naming the nearest keys."""
    graph = defs.resolve_asset_graph()
    known = [
        k.to_user_string() for k in graph.toposorted_asset_keys if graph.get(k).is_materializable
    ]
    keys = []
    for name in names:
        if name not in known:
            raise UnknownAssetKeyError(
                f"unknown or non-materializable asset key {name!r}{nearest_names(name, known)}"
            )
        keys.append(dg.AssetKey.from_user_string(name))
    return keys


def plan_stages(
    defs: dg.Definitions,
    selection: Sequence[dg.AssetKey] | None = None,
    partition_keys: Sequence[str] | None = None,
) -> list[Stage]:
    """Cut the (selected part of the) asset graph into stages in dependency order.

    ``partition_keys`` restricts partitioned stages to those keys (a partitioned stage holding
    none of them is left out; unpartitioned stages stay); a key that no selected asset has is an
    :class:`UnknownAssetKeyError` naming the nearest keys.
    """
    graph = defs.resolve_asset_graph()
    materializable = [k for k in graph.toposorted_asset_keys if graph.get(k).is_materializable]
    wanted = set(selection) if selection is not None else set(materializable)
    unknown = wanted - set(materializable)
    if unknown:
        names = ", ".join(sorted(k.to_user_string() for k in unknown))
        raise UnknownAssetKeyError(f"unknown or non-materializable asset keys: {names}")
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
        keys = None if partitions_def is None else tuple(partitions_def.get_partition_keys())
        stages.append(Stage(tuple(k for k in order if k in members), keys))
        done.update(members)
    if partition_keys is None:
        return stages
    available = sorted({p for s in stages for p in s.partition_keys or ()})
    for key in partition_keys:
        if key not in available:
            raise UnknownAssetKeyError(
                f"partition key {key!r} is not a partition of the selected assets"
                f"{nearest_names(key, available)}"
            )
    restricted = []
    for stage in stages:
        if stage.partition_keys is None:
            restricted.append(stage)
            continue
        keys = tuple(p for p in stage.partition_keys if p in partition_keys)
        if keys:
            restricted.append(Stage(stage.asset_keys, keys))
    return restricted


# --- staleness -----------------------------------------------------------------------------


def _stale_resolver(
    instance: dg.DagsterInstance, graph: BaseAssetGraph
) -> CachingStaleStatusResolver:
    """Dagster's stale-status resolver over ``graph`` and the instance's event log."""
    from dagster._core.asset_graph_view.asset_graph_view import AssetGraphView, TemporalContext
    from dagster._time import get_current_datetime

    view = AssetGraphView(
        temporal_context=TemporalContext(effective_dt=get_current_datetime(), last_event_id=None),
        instance=instance,
        asset_graph=graph,
    )
    return CachingStaleStatusResolver(instance=instance, asset_graph=graph, loading_context=view)


def _failed_blocking_check(
    instance: dg.DagsterInstance, graph: BaseAssetGraph, key: dg.AssetKey
) -> bool:
    """Whether the latest evaluation of one of ``key``'s checks failed at ERROR severity (or
    never finished)."""
    from dagster._core.storage.asset_check_execution_record import (
        AssetCheckExecutionRecordStatus,
    )

    check_keys = list(graph.get(key).check_keys)
    if not check_keys:
        return False
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(check_keys)
    for record in latest.values():
        if record.status == AssetCheckExecutionRecordStatus.PLANNED:
            run = instance.get_run_by_id(record.run_id)
            if run is None or run.status not in _IN_PROGRESS:
                return True
        elif record.status == AssetCheckExecutionRecordStatus.FAILED:
            evaluation = record.event.dagster_event.asset_check_evaluation_data  # type: ignore[union-attr]
            if evaluation.severity == dg.AssetCheckSeverity.ERROR:
                return True
    return False


def assets_to_run(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    asset_keys: Sequence[dg.AssetKey],
    partition_key: str | None,
) -> tuple[dg.AssetKey, ...]:
    """The assets of one stage partition that are not up to date (see the module docstring),
    plus those downstream of them in the stage, in stage order."""
    graph = defs.resolve_asset_graph()
    resolver = _stale_resolver(instance, graph)
    needed: set[dg.AssetKey] = set()
    for key in asset_keys:
        status = resolver.get_status(key, partition_key)
        upstream_rerun = any(p in needed for p in graph.get(key).parent_keys)
        if (
            status != StaleStatus.FRESH
            or upstream_rerun
            or _failed_blocking_check(instance, graph, key)
            or _newer_partition_of_a_wide_parent(instance, graph, key)
        ):
            needed.add(key)
    return tuple(k for k in asset_keys if k in needed)


def _latest_storage_id(
    instance: dg.DagsterInstance, key: dg.AssetKey, partition_key: str | None = None
) -> int | None:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=key, asset_partitions=None if partition_key is None else [partition_key]
        ),
        limit=1,
    ).records
    return records[0].storage_id if records else None


def _newer_partition_of_a_wide_parent(
    instance: dg.DagsterInstance, graph: BaseAssetGraph, key: dg.AssetKey
) -> bool:
    """For an unpartitioned asset reading every partition of a parent with at least
    ``SKIP_PARTITION_DATA_VERSION_DEPENDENCY_THRESHOLD`` (100) partitions, which Dagster's
    staleness leaves unchecked for speed (the full survey's ~1,000 HEALPix cells): whether a
    partition of that parent was materialized after the asset. The runner re-materializes a
    parent partition only when it is stale (or forced), so a newer one means new data."""
    from dagster._core.definitions import data_version

    node = graph.get(key)
    if node.partitions_def is not None:
        return False
    own = None
    for parent in node.parent_keys:
        parent_node = graph.get(parent)
        if parent_node.partitions_def is None or not parent_node.is_materializable:
            continue
        threshold = data_version.SKIP_PARTITION_DATA_VERSION_DEPENDENCY_THRESHOLD
        if len(parent_node.partitions_def.get_partition_keys()) < threshold:
            continue  # Dagster compares these partitions' data versions itself
        own = own if own is not None else _latest_storage_id(instance, key)
        newest = _latest_storage_id(instance, parent)
        if own is None or (newest is not None and newest > own):
            return True
    return False


def observe_sources(
    defs: dg.Definitions, instance: dg.DagsterInstance, report: Callable[[str], None] = print
) -> None:
    """Observe the graph's observable source assets (every partition), so their data versions
    are current before staleness is judged."""
    graph = defs.resolve_asset_graph()
    job = defs.resolve_implicit_global_asset_job_def()
    for key in graph.toposorted_asset_keys:
        node = graph.get(key)
        if not node.is_observable or node.is_materializable:
            continue
        partitions = node.partitions_def.get_partition_keys() if node.partitions_def else [None]
        for partition_key in partitions:
            result = job.execute_in_process(
                instance=instance,
                asset_selection=[key],
                partition_key=partition_key,
                raise_on_error=False,
                run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
                tags={**_run_tags(None), OBSERVATION_TAG: "true"},
            )
            if not result.success:
                label = key.to_user_string() + (f" [{partition_key}]" if partition_key else "")
                report(f"  could not observe {label}: {_first_error(result) or 'see the run'}")


# --- dead runs and pool slots --------------------------------------------------------------


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _run_process_gone(run: dg.DagsterRun, host: str) -> bool:
    if run.tags.get(HOST_TAG) != host or PID_TAG not in run.tags:
        return False
    try:
        pid = int(run.tags[PID_TAG])
    except ValueError:
        return False
    return pid != os.getpid() and not _process_alive(pid)


def _started_pid(instance: dg.DagsterInstance, run: dg.DagsterRun) -> int | None:
    """PID of the process that started ``run`` (its RUN_START event), if recorded."""
    records = instance.get_records_for_run(
        run.run_id, of_type=dg.DagsterEventType.RUN_START, limit=1
    ).records
    if not records or records[0].event_log_entry.dagster_event is None:
        return None
    return records[0].event_log_entry.dagster_event.pid


def clear_dead_runs(
    instance: dg.DagsterInstance,
    report: Callable[[str], None] = print,
    single_machine: bool = False,
) -> list[str]:
    """Mark failed the in-progress runs started on this host whose process is gone, and free
    the pool slots and pending claims of every run that is no longer in progress; returns the
    ids of the runs marked failed.

    Runs of ``stronglens demo`` carry their host and PID as tags. With ``single_machine`` (the
    local environment's SQLite instance, which only this machine uses), runs without those
    tags (launched from the UI by ``dagster dev``'s daemon) are judged by the PID of their
    ``RUN_START`` event too.
    """
    host = socket.gethostname()
    cleared: list[str] = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=list(_IN_PROGRESS))):
        if HOST_TAG in run.tags:
            if not _run_process_gone(run, host):
                continue
            pid = int(run.tags[PID_TAG])
        elif single_machine and run.status == dg.DagsterRunStatus.STARTED:
            started = _started_pid(instance, run)
            if started is None or started == os.getpid() or _process_alive(started):
                continue
            pid = started
        else:
            continue
        instance.report_run_failed(
            run,
            f"process {pid} on {host} that executed this run is gone (killed); "
            "marked failed by stronglens",
        )
        cleared.append(run.run_id)
        report(f"  run {run.run_id[:8]}: its process {pid} is gone; marked failed")
    storage = instance.event_log_storage
    if storage.supports_global_concurrency_limits:
        for run_id in storage.get_concurrency_run_ids():
            run = instance.get_run_by_id(run_id)
            if run is None or run.status not in _IN_PROGRESS:
                storage.free_concurrency_slots_for_run(run_id)
                if run_id not in cleared:
                    report(f"  freed the pool slots of finished run {run_id[:8]}")
    return cleared


def _full_pools(instance: dg.DagsterInstance, pools: set[str]) -> dict[str, set[str]]:
    """Pools among ``pools`` with every slot claimed, and the runs holding them."""
    storage = instance.event_log_storage
    if not pools or not storage.supports_global_concurrency_limits:
        return {}
    full = {}
    for pool in sorted(pools):
        info = storage.get_concurrency_info(pool)
        limit = info.limit if info.limit is not None else None
        if limit is not None and info.active_slot_count >= limit:
            full[pool] = info.active_run_ids
    return full


class TerminatedError(StronglensError):
    """SIGTERM arrived while waiting (the run had not started)."""


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    """SIGTERM raises :class:`TerminatedError` in the main thread while inside."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signo: int, frame: FrameType | None) -> None:
        raise TerminatedError("terminated (SIGTERM) while waiting for a pool slot")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def wait_for_pool_slots(
    instance: dg.DagsterInstance,
    pools: set[str],
    report: Callable[[str], None] = print,
    poll_seconds: float = POOL_POLL_SECONDS,
    single_machine: bool = False,
) -> None:
    """Return once each of ``pools`` has a free slot, clearing dead runs meanwhile and saying
    "waiting for a <pool> slot" (again every :data:`POOL_REPORT_SECONDS`); SIGTERM ends the wait
    with :class:`TerminatedError`."""
    last_report = -float("inf")
    with _sigterm_raises():
        while True:
            clear_dead_runs(instance, report, single_machine)
            full = _full_pools(instance, pools)
            if not full:
                return
            if time.monotonic() - last_report >= POOL_REPORT_SECONDS:
                for pool, runs in full.items():
                    holders = ", ".join(sorted(r[:8] for r in runs)) or "unknown runs"
                    report(f"    waiting for a {pool} slot (held by run {holders})")
                last_report = time.monotonic()
            time.sleep(poll_seconds)


# --- progress and the log file -------------------------------------------------------------


class _ProgressHandler(logging.Handler):
    """Prints the assets' own messages and pool waits; writes every record to the log file."""

    def __init__(self, report: Callable[[str], None], log_file: Path | None) -> None:
        super().__init__(level=logging.DEBUG)
        self._report = report
        self._log_file = log_file

    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", None)
        if self._log_file is not None:
            with self._log_file.open("a") as out:
                out.write(f"{logging.getLevelName(record.levelno)} {record.getMessage()}\n")
        if meta is None:
            return
        event = meta.get("dagster_event")
        step = meta.get("step_key") or ""
        message = str(meta.get("orig_message", ""))
        if event is None and record.levelno >= logging.INFO:
            said = message if message.startswith(step) else f"{step}: {message}"
            self._report(f"    {said}")
        elif event is not None and message.startswith("Step blocked by limit for pool"):
            pool = message.rsplit(" ", 1)[-1]
            self._report(f"    {step}: waiting for a {pool} slot")


def _progress_logger(report: Callable[[str], None], log_file: Path | None) -> dg.LoggerDefinition:
    @dg.logger(description="stronglens demo: progress lines on the terminal, all to the log file")
    def progress(_init_context: dg.InitLoggerContext) -> logging.Logger:
        logger = logging.Logger("stronglens.progress", level=logging.DEBUG)
        logger.addHandler(_ProgressHandler(report, log_file))
        return logger

    return progress


def _run_tags(settings_env: str | None) -> dict[str, str]:
    tags = {
        LAUNCHED_BY_TAG: "stronglens demo",
        HOST_TAG: socket.gethostname(),
        PID_TAG: str(os.getpid()),
    }
    if settings_env:
        tags[ENVIRONMENT_TAG] = settings_env
    return tags


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else ""


_WRAPPER_ERRORS = (
    "DagsterExecutionStepExecutionError",
    "DagsterUserCodeExecutionError",
    "DagsterResourceFunctionError",
)


def _root_message(error: SerializableErrorInfo) -> str:
    """First line of the error, looking through Dagster's wrappers to the user's exception."""
    while error.cause is not None and error.cls_name in _WRAPPER_ERRORS:
        error = error.cause
    return _first_line(error.message)


def _first_error(result: dg.ExecuteInProcessResult) -> str | None:
    """``<step>: <first line of its error>`` of the first failed step, else of the first
    resource that failed to start (a wrong bucket or credentials), else of the run's failure."""
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data.error is not None:
            return f"{event.step_key}: {_root_message(event.step_failure_data.error)}"
    for event in result.all_events:
        if event.event_type_value == "RESOURCE_INIT_FAILURE":
            error = getattr(event.event_specific_data, "error", None)
            if error is not None:
                where = f"{event.step_key}: " if event.step_key else ""
                return f"{where}a resource failed to start: {_root_message(error)}"
    for event in result.all_events:
        if event.is_failure or event.event_type_value == "PIPELINE_FAILURE":
            error = getattr(event.event_specific_data, "error", None)
            if error is not None:
                return _root_message(error)
    return None


def run_stages(
    defs: dg.Definitions,
    stages: Sequence[Stage],
    instance: dg.DagsterInstance,
    report: Callable[[str], None] = print,
    *,
    force: bool = False,
    log_file: Path | None = None,
    environment: str | None = None,
) -> list[RunRecord]:
    """Execute ``stages`` in order, skipping up-to-date stage partitions unless ``force``;
    stop at the first failed run. ``environment`` (``local`` or ``s3``) tags the runs; in
    ``local`` the instance is this machine's alone (see :func:`clear_dead_runs`)."""
    single_machine = environment == "local"
    clear_dead_runs(instance, report, single_machine)
    observe_sources(defs, instance, report)
    graph = defs.resolve_asset_graph()
    job = defs.resolve_implicit_global_asset_job_def()
    job = job.with_logger_defs({**job.loggers, "progress": _progress_logger(report, log_file)})
    run_config = {"loggers": {"progress": {}}}
    total = sum(1 if s.partition_keys is None else len(s.partition_keys) for s in stages)
    records: list[RunRecord] = []
    for stage in stages:
        names = ", ".join(k.to_user_string() for k in stage.asset_keys)
        for partition_key in stage.partition_keys or (None,):
            label = names if partition_key is None else f"{names} [{partition_key}]"
            selected = (
                stage.asset_keys
                if force
                else assets_to_run(defs, instance, stage.asset_keys, partition_key)
            )
            number = f"[{len(records) + 1}/{total}]"
            if not selected:
                report(f"{number} {label}: up to date, skipped")
                records.append(
                    RunRecord(
                        (),
                        partition_key,
                        None,
                        True,
                        0.0,
                        skipped=True,
                        up_to_date=stage.asset_keys,
                    )
                )
                continue
            up_to_date = tuple(k for k in stage.asset_keys if k not in selected)
            if up_to_date:
                names_skipped = ", ".join(k.to_user_string() for k in up_to_date)
                label += f" (up to date, skipped: {names_skipped})"
            report(f"{number} {label} ...")
            pools = set().union(*(graph.get(k).pools or set() for k in selected))
            started = time.perf_counter()
            try:
                wait_for_pool_slots(instance, pools, report, single_machine=single_machine)
            except TerminatedError as exc:
                records.append(
                    RunRecord(
                        selected, partition_key, None, False, 0.0, ["terminated"], error=str(exc)
                    )
                )
                report(f"    FAILED: {exc}")
                return records
            with warnings.catch_warnings():
                # Dagster's notes on its own API's stability (BetaWarning, PreviewWarning) are
                # for the code's authors, not for someone running the graph
                warnings.simplefilter("ignore", dg.BetaWarning)
                warnings.simplefilter("ignore", dg.PreviewWarning)
                result = job.execute_in_process(
                    instance=instance,
                    partition_key=partition_key,
                    asset_selection=list(selected),
                    raise_on_error=False,
                    run_config=run_config,
                    tags=_run_tags(environment),
                )
            seconds = time.perf_counter() - started
            failed = [e.step_key for e in result.all_events if e.is_step_failure and e.step_key]
            error = _first_error(result)
            warned: list[str] = []
            for event in result.all_events:
                if event.event_type_value != "ASSET_CHECK_EVALUATION":
                    continue
                evaluation = event.asset_check_evaluation_data
                if evaluation.passed:
                    continue
                name = f"check {evaluation.check_name}"
                if evaluation.severity == dg.AssetCheckSeverity.WARN:
                    warned.append(name)
                else:
                    failed.append(name)
                    if error is None:
                        description = evaluation.description or "failed"
                        error = f"{name} on {evaluation.asset_key.to_user_string()}: " + (
                            _first_line(description)
                        )
            if not result.success and error is None:
                error = "the run failed before any step (see the log file)"
            record = RunRecord(
                selected,
                partition_key,
                result.run_id,
                result.success and not failed,
                seconds,
                failed,
                warned,
                up_to_date=up_to_date,
                error=error,
            )
            records.append(record)
            status = "ok" if record.success else f"FAILED: {error}"
            if warned:
                status += f", WARNING ({', '.join(warned)})"
            report(f"    {status} in {seconds:.1f} s (run {result.run_id[:8]})")
            if not record.success:
                return records
    return records
