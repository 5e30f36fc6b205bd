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
    with dg.instance_for_test() as instance:
        records = run_stages(defs, plan_stages(defs), instance, report=lambda _: None)
    assert len(records) == 1
    assert not records[0].success
    assert records[0].failed_steps == ["catalog"]


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
