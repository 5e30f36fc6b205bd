"""Stage planning and execution of the whole graph into a persistent instance."""

import dagster as dg
import pandas as pd
import pytest

from stronglens_assets.resources import ArtifactIOManager, LocalStorageResource
from stronglens_assets.runner import Stage, plan_stages, run_stages

cells = dg.StaticPartitionsDefinition(["hpx-nest16-1105", "hpx-nest16-1126"])
variants = dg.StaticPartitionsDefinition(["no_poisson", "poisson"])


@dg.asset
def catalog() -> pd.DataFrame:
    return pd.DataFrame({"x": [1, 2]})


@dg.asset(partitions_def=cells)
def sweep(context: dg.AssetExecutionContext, catalog: pd.DataFrame) -> pd.DataFrame:
    return catalog.assign(cell=context.partition_key)


@dg.asset(partitions_def=cells)
def pool(sweep: pd.DataFrame) -> pd.DataFrame:
    return sweep


@dg.asset
def manifest(pool: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(pool.values(), ignore_index=True)


@dg.asset(partitions_def=variants)
def grid(manifest: pd.DataFrame) -> dict:
    return {"rows": len(manifest)}


@dg.asset_check(asset=manifest)
def manifest_not_empty(manifest: pd.DataFrame) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=len(manifest) > 0)


def _defs(tmp_path) -> dg.Definitions:
    storage = LocalStorageResource(root=str(tmp_path / "storage"))
    return dg.Definitions(
        assets=[catalog, sweep, pool, manifest, grid],
        asset_checks=[manifest_not_empty],
        resources={"io_manager": ArtifactIOManager(storage=storage), "storage": storage},
    )


def test_plan_groups_by_partitions_in_dependency_order(tmp_path) -> None:
    stages = plan_stages(_defs(tmp_path))
    assert stages == [
        Stage((dg.AssetKey("catalog"),), None),
        Stage((dg.AssetKey("sweep"), dg.AssetKey("pool")), ("hpx-nest16-1105", "hpx-nest16-1126")),
        Stage((dg.AssetKey("manifest"),), None),
        Stage((dg.AssetKey("grid"),), ("no_poisson", "poisson")),
    ]


def test_plan_rejects_unknown_selection(tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown or non-materializable asset keys: nope"):
        plan_stages(_defs(tmp_path), [dg.AssetKey("nope")])


def test_run_all_into_persistent_instance(tmp_path) -> None:
    defs = _defs(tmp_path)
    lines: list[str] = []
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        records = run_stages(defs, plan_stages(defs), instance, report=lines.append)
        assert [r.success for r in records] == [True] * 6
        assert instance.get_latest_materialization_event(dg.AssetKey("manifest")) is not None
        status = instance.get_status_by_partition(
            dg.AssetKey("grid"), ["no_poisson", "poisson"], variants
        )
        assert set(status.values()) == {dg.AssetPartitionStatus.MATERIALIZED}
        checks = instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [dg.AssetCheckKey(dg.AssetKey("manifest"), "manifest_not_empty")]
        )
        assert len(checks) == 1
    assert lines[0] == "[1/6] catalog ..."
    assert "grid [poisson]" in lines[-2]


def test_run_stops_at_first_failure(tmp_path) -> None:
    @dg.asset(name="catalog")
    def broken_catalog() -> pd.DataFrame:
        raise ValueError("corrupt input")

    storage = LocalStorageResource(root=str(tmp_path / "storage"))
    defs = dg.Definitions(
        assets=[broken_catalog, sweep],
        resources={"io_manager": ArtifactIOManager(storage=storage)},
    )
    log_file = tmp_path / "demo.log"
    lines: list[str] = []
    with dg.instance_for_test() as instance:
        records = run_stages(
            defs, plan_stages(defs), instance, report=lines.append, log_file=log_file
        )
    assert len(records) == 1
    assert not records[0].success
    assert records[0].failed_steps == ["catalog"]
    # the summary names the step and the first line of its error; the trace is in the log
    assert records[0].error == "catalog: ValueError: corrupt input"
    assert lines[-1].startswith("    FAILED: catalog: ValueError: corrupt input in ")
    assert not any("Traceback" in line or "File " in line for line in lines)
    log = log_file.read_text()
    assert "Traceback" in log or 'File "' in log
    assert "corrupt input" in log


def test_warn_checks_are_reported_error_checks_fail(tmp_path) -> None:
    @dg.asset_check(asset=catalog)
    def catalog_is_large(catalog: pd.DataFrame) -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.WARN)

    storage = LocalStorageResource(root=str(tmp_path / "storage"))
    resources = {"io_manager": ArtifactIOManager(storage=storage)}
    defs = dg.Definitions(assets=[catalog], asset_checks=[catalog_is_large], resources=resources)
    lines: list[str] = []
    with dg.instance_for_test() as instance:
        (record,) = run_stages(defs, plan_stages(defs), instance, report=lines.append)
    assert record.success
    assert record.warnings == ["check catalog_is_large"]
    assert "WARNING (check catalog_is_large)" in lines[-1]

    @dg.asset_check(asset=catalog, name="catalog_is_large")
    def catalog_is_large_error(catalog: pd.DataFrame) -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.ERROR)

    defs = dg.Definitions(
        assets=[catalog], asset_checks=[catalog_is_large_error], resources=resources
    )
    with dg.instance_for_test() as instance:
        (record,) = run_stages(defs, plan_stages(defs), instance, report=lambda _: None)
    assert not record.success
    assert record.failed_steps == ["check catalog_is_large"]


# --- re-runs skip what is up to date (Dagster's staleness) --------------------------------


def _versioned_defs(tmp_path, catalog_version: str = "1") -> dg.Definitions:
    """The test graph with code versions (as build_definitions gives every asset)."""

    @dg.asset(name="catalog", code_version=catalog_version)
    def versioned_catalog() -> pd.DataFrame:
        return pd.DataFrame({"x": [1, 2]})

    storage = LocalStorageResource(root=str(tmp_path / "storage"))
    assets = [
        versioned_catalog,
        *dg.map_asset_specs(
            lambda spec: spec.replace_attributes(code_version="1"), [sweep, pool, manifest, grid]
        ),
    ]
    return dg.Definitions(
        assets=assets,
        asset_checks=[manifest_not_empty],
        resources={"io_manager": ArtifactIOManager(storage=storage), "storage": storage},
    )


def _materialization_count(instance: dg.DagsterInstance, key: str) -> int:
    return len(instance.fetch_materializations(dg.AssetKey(key), limit=1000).records)


def test_second_run_skips_everything_and_says_so(tmp_path) -> None:
    defs = _versioned_defs(tmp_path)
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        first = run_stages(defs, plan_stages(defs), instance, report=lambda _: None)
        assert all(r.success and not r.skipped for r in first)
        runs_before = len(instance.get_runs())
        lines: list[str] = []
        second = run_stages(defs, plan_stages(defs), instance, report=lines.append)
        assert [r.skipped for r in second] == [True] * 6
        assert len(instance.get_runs()) == runs_before  # no run at all
        assert lines[0] == "[1/6] catalog: up to date, skipped"
        assert all(line.endswith("up to date, skipped") for line in lines)
        assert _materialization_count(instance, "manifest") == 1

        forced = run_stages(defs, plan_stages(defs), instance, report=lambda _: None, force=True)
        assert all(r.success and not r.skipped for r in forced)
        assert _materialization_count(instance, "manifest") == 2


def test_changed_code_version_reruns_the_asset_and_what_depends_on_it(tmp_path) -> None:
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        defs = _versioned_defs(tmp_path)
        run_stages(defs, plan_stages(defs), instance, report=lambda _: None)
        changed = _versioned_defs(tmp_path, catalog_version="2")
        records = run_stages(changed, plan_stages(changed), instance, report=lambda _: None)
        # the new catalog has a new data version: every downstream partition is stale
        assert [r.skipped for r in records] == [False] * 6
        assert _materialization_count(instance, "catalog") == 2
        assert _materialization_count(instance, "grid") == 4
        again = run_stages(changed, plan_stages(changed), instance, report=lambda _: None)
        assert all(r.skipped for r in again)


def test_one_partition_rerun_leaves_the_others_up_to_date(tmp_path) -> None:
    defs = _versioned_defs(tmp_path)
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        run_stages(defs, plan_stages(defs), instance, report=lambda _: None)
        stages = plan_stages(defs, [dg.AssetKey("sweep"), dg.AssetKey("pool")], ["hpx-nest16-1126"])
        assert stages == [Stage((dg.AssetKey("sweep"), dg.AssetKey("pool")), ("hpx-nest16-1126",))]
        (record,) = run_stages(defs, stages, instance, report=lambda _: None, force=True)
        assert record.success and record.partition_key == "hpx-nest16-1126"
        # same code, same inputs: the same data versions, so nothing downstream is stale
        records = run_stages(defs, plan_stages(defs), instance, report=lambda _: None)
        assert all(r.skipped for r in records)


def test_unknown_keys_name_the_nearest(tmp_path) -> None:
    from stronglens_assets.runner import UnknownAssetKeyError, parse_asset_keys

    defs = _defs(tmp_path)
    with pytest.raises(UnknownAssetKeyError, match=r"'manifets' \(did you mean manifest\?\)"):
        parse_asset_keys(["manifets"], defs)
    with pytest.raises(UnknownAssetKeyError, match=r"did you mean hpx-nest16-1105"):
        plan_stages(defs, None, ["hpx-nest16-1150"])


# --- killed runs and pool slots -------------------------------------------------------------


def _dead_pid() -> int:
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _started_run(instance: dg.DagsterInstance, pid: int, tagged: bool = True) -> dg.DagsterRun:
    """A STARTED run whose RUN_START event carries ``pid``; ``tagged``: with host/PID tags as
    ``stronglens demo`` writes them (else as ``dagster dev``'s daemon launches runs)."""
    import socket

    from stronglens_assets.runner import HOST_TAG, PID_TAG

    run = instance.create_run_for_job(
        dg.GraphDefinition(name="killed", node_defs=[]).to_job(),
        tags={HOST_TAG: socket.gethostname(), PID_TAG: str(pid)} if tagged else {},
    )
    instance.report_dagster_event(
        dg.DagsterEvent(event_type_value="PIPELINE_START", job_name=run.job_name, pid=pid),
        run_id=run.run_id,
    )
    return instance.get_run_by_id(run.run_id)


def test_a_killed_run_launched_from_the_ui_is_cleared_on_the_local_instance(tmp_path) -> None:
    from stronglens_assets.runner import clear_dead_runs

    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        instance.event_log_storage.set_concurrency_slots("gpu", 1)
        dead = _started_run(instance, _dead_pid(), tagged=False)
        assert instance.event_log_storage.claim_concurrency_slot("gpu", dead.run_id, "s").is_claimed
        assert clear_dead_runs(instance, lambda _: None) == []  # not known to be this machine's
        assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.STARTED
        assert clear_dead_runs(instance, lambda _: None, single_machine=True) == [dead.run_id]
        assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE
        assert dead.run_id not in instance.event_log_storage.get_concurrency_run_ids()


@dg.asset(pool="gpu")
def trained(catalog: pd.DataFrame) -> pd.DataFrame:
    return catalog


def test_a_dead_started_run_holding_a_gpu_slot_is_cleared(tmp_path) -> None:
    storage = LocalStorageResource(root=str(tmp_path / "storage"))
    defs = dg.Definitions(
        assets=[catalog, trained], resources={"io_manager": ArtifactIOManager(storage=storage)}
    )
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        events = instance.event_log_storage
        events.set_concurrency_slots("gpu", 1)
        dead = _started_run(instance, _dead_pid())
        assert dead.status == dg.DagsterRunStatus.STARTED
        assert events.claim_concurrency_slot("gpu", dead.run_id, "trained").is_claimed
        assert events.get_concurrency_info("gpu").active_slot_count == 1
        lines: list[str] = []
        records = run_stages(defs, plan_stages(defs), instance, report=lines.append)
        assert [r.success for r in records] == [True]
        assert instance.get_latest_materialization_event(dg.AssetKey("trained")) is not None
        assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE
        assert dead.run_id not in events.get_concurrency_info("gpu").active_run_ids
        assert any("is gone; marked failed" in line for line in lines)


def test_waiting_for_a_slot_says_so_and_ends_on_sigterm(tmp_path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import threading

    from stronglens_assets.runner import TerminatedError, wait_for_pool_slots

    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
            events = instance.event_log_storage
            events.set_concurrency_slots("gpu", 1)
            alive = _started_run(instance, holder.pid)
            assert events.claim_concurrency_slot("gpu", alive.run_id, "trained").is_claimed
            lines: list[str] = []
            timer = threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGTERM))
            timer.start()
            with pytest.raises(TerminatedError, match="SIGTERM"):
                wait_for_pool_slots(instance, {"gpu"}, lines.append, poll_seconds=0.2)
            timer.join()
            assert lines == [f"    waiting for a gpu slot (held by run {alive.run_id[:8]})"]
            # the live holder is left alone
            assert instance.get_run_by_id(alive.run_id).status == dg.DagsterRunStatus.STARTED
    finally:
        holder.kill()
        holder.wait()


def test_dagster_api_stability_warnings_stay_out_of_the_output(tmp_path) -> None:
    import warnings

    @dg.asset
    def versioned_output() -> dg.Output:
        return dg.Output(pd.DataFrame({"x": [1]}), data_version=dg.DataVersion("v1"))  # beta

    storage = LocalStorageResource(root=str(tmp_path / "storage"))
    defs = dg.Definitions(
        assets=[versioned_output], resources={"io_manager": ArtifactIOManager(storage=storage)}
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
            (record,) = run_stages(defs, plan_stages(defs), instance, report=lambda _: None)
    assert record.success
    assert not [w for w in caught if issubclass(w.category, dg.BetaWarning)]


class _Unreachable(dg.ConfigurableResource):
    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        raise ConnectionError("bucket 'darkhaloscope' at http://127.0.0.1:9: wrong credentials")


def test_a_resource_start_up_failure_is_named_in_one_line(tmp_path) -> None:
    @dg.asset
    def needs_bucket(bucket: _Unreachable) -> pd.DataFrame:
        return pd.DataFrame({"x": [1]})

    storage = LocalStorageResource(root=str(tmp_path / "storage"))
    defs = dg.Definitions(
        assets=[needs_bucket],
        resources={"io_manager": ArtifactIOManager(storage=storage), "bucket": _Unreachable()},
    )
    lines: list[str] = []
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        (record,) = run_stages(defs, plan_stages(defs), instance, report=lines.append)
    assert not record.success
    assert "wrong credentials" in record.error
    assert "\n" not in record.error
    assert sum("wrong credentials" in line for line in lines) == 1


def test_a_summary_of_many_partitions_is_rerun_after_one_of_them_changes(
    tmp_path, monkeypatch
) -> None:
    """Dagster leaves an unpartitioned asset's dependency on >= 100 parent partitions
    unchecked (the full survey's cells); the runner compares materialization order there."""
    from dagster._core.definitions import data_version

    defs = _versioned_defs(tmp_path)
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        run_stages(defs, plan_stages(defs), instance, report=lambda _: None)
        monkeypatch.setattr(data_version, "SKIP_PARTITION_DATA_VERSION_DEPENDENCY_THRESHOLD", 2)
        assert all(r.skipped for r in run_stages(defs, plan_stages(defs), instance, lambda _: None))
        pool_only = plan_stages(defs, [dg.AssetKey("pool")], ["hpx-nest16-1105"])
        run_stages(defs, pool_only, instance, report=lambda _: None, force=True)
        records = run_stages(defs, plan_stages(defs), instance, report=lambda _: None)
        ran = {k.to_user_string() for r in records if not r.skipped for k in r.asset_keys}
        assert "manifest" in ran  # (grid follows the manifest's new data version, if any)
        assert not ran & {"catalog", "sweep"}
        assert all(r.skipped for r in run_stages(defs, plan_stages(defs), instance, lambda _: None))
