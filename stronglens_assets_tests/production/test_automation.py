"""Declarative automation on a real instance: new inputs and new code request exactly the
affected assets; unchanged inputs request nothing. Schedules and the sensor load from config."""

from __future__ import annotations

import datetime
import os
import re
import shutil
from pathlib import Path

import boto3
import dagster as dg
import pytest

from stronglens_assets.assets import catalogs, survey
from stronglens_assets.automation import (
    AUTOMATION_CONDITION,
    COADD_CACHE,
    DESI_VAC_FILE,
    LENSCAT_CSV,
    automated_definitions,
    code_modules,
    code_version_of,
    root_assets,
)
from stronglens_assets.config import ConfigError
from stronglens_assets.definitions import build_definitions
from stronglens_assets.mock_survey.vac import write_mock_desi_vac
from stronglens_assets.project import Project
from stronglens_assets.resources import build_resources
from stronglens_assets.science.catalogs.lenscat import lenscat_csv_path
from stronglens_assets.settings import Settings, load_settings
from stronglens_assets_tests.harness import TEST_BRICKS

SMALL = {"survey_footprint", "lenscat_catalog", "lenscat_positives", "desi_dr1_vac"}
VAC_KEY = "stronglens_calibration/data/external/desi_dr1/desi-sl-vac-v1.fits"


def _small_defs(settings: Settings, bump: str | None = None) -> dg.Definitions:
    """The catalog corner of the graph, automated exactly as ``build_definitions`` does.

    ``bump``: an asset name whose code version is pinned to a new value.
    """
    project = Project.from_settings(settings)
    assets, checks = [], []
    for item in [*survey.build_assets(project), *catalogs.build_assets(project)]:
        if isinstance(item, dg.AssetChecksDefinition):
            checks.append(item)
        elif item.key.to_user_string() in SMALL:
            assets.append(item)
    if bump is not None:
        assets = list(
            dg.map_asset_specs(
                lambda s: (
                    s.replace_attributes(code_version="bumped")
                    if s.key.to_user_string() == bump
                    else s
                ),
                assets,
            )
        )
    return automated_definitions(project, assets, checks, build_resources(settings))


def _run(defs: dg.Definitions, instance: dg.DagsterInstance, keys, partition=None) -> None:
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance,
        asset_selection=[
            dg.AssetKey.from_user_string(k) if isinstance(k, str) else k for k in keys
        ],
        partition_key=partition,
        raise_on_error=True,
    )
    assert result.success


def _requested(result: dg.EvaluateAutomationConditionsResult, defs: dg.Definitions) -> set[str]:
    """Names of the assets the evaluation requested."""
    keys = defs.resolve_asset_graph().get_all_asset_keys()
    return {k.to_user_string() for k in keys if result.get_num_requested(k)}


def _upload_vac(client, bucket: str, tmp_path: Path, seed: int) -> None:
    path = tmp_path / f"vac-{seed}.fits"
    write_mock_desi_vac(path, [36.6, 16.1], [-3.7, -0.5], [0.5, 0.6], seed=seed)
    client.upload_file(str(path), bucket, VAC_KEY)


def test_new_inputs_and_new_code_request_exactly_the_affected_assets(
    s3_settings: Settings, s3_bucket: str, s3_server: str, config_copy: Path, tmp_path: Path
) -> None:
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-2")
    _upload_vac(client, s3_bucket, tmp_path, seed=1)
    csv = tmp_path / "catalog.csv"
    shutil.copyfile(lenscat_csv_path(), csv)
    catalogs_yaml = config_copy / "catalogs.yaml"
    catalogs_yaml.write_text(
        re.sub(r"(?m)^lenscat_csv: .*$", f"lenscat_csv: {csv}", catalogs_yaml.read_text())
    )
    defs = _small_defs(s3_settings)
    sources = [LENSCAT_CSV, DESI_VAC_FILE]
    with dg.instance_for_test() as instance:
        _run(defs, instance, sources)
        _run(defs, instance, sorted(SMALL))
        result = dg.evaluate_automation_conditions(defs, instance)
        assert _requested(result, defs) == set()

        _run(defs, instance, sources)  # the same checksum and ETag again
        result = dg.evaluate_automation_conditions(defs, instance, cursor=result.cursor)
        assert _requested(result, defs) == set()

        lines = csv.read_text().splitlines(keepends=True)
        csv.write_text("".join(lines[:-1]))  # a new lenscat release: one system fewer
        _run(defs, instance, [LENSCAT_CSV])
        result = dg.evaluate_automation_conditions(defs, instance, cursor=result.cursor)
        assert _requested(result, defs) == {"lenscat_catalog", "lenscat_positives"}

        _run(defs, instance, ["lenscat_catalog", "lenscat_positives"])
        result = dg.evaluate_automation_conditions(defs, instance, cursor=result.cursor)
        assert _requested(result, defs) == set()

        _upload_vac(client, s3_bucket, tmp_path, seed=2)  # a new VAC object: new ETag
        _run(defs, instance, [DESI_VAC_FILE])
        result = dg.evaluate_automation_conditions(defs, instance, cursor=result.cursor)
        assert _requested(result, defs) == {"desi_dr1_vac"}
        _run(defs, instance, ["desi_dr1_vac"])
        result = dg.evaluate_automation_conditions(defs, instance, cursor=result.cursor)
        assert _requested(result, defs) == set()

        bumped = _small_defs(s3_settings, bump="lenscat_catalog")
        result = dg.evaluate_automation_conditions(bumped, instance, cursor=result.cursor)
        assert _requested(result, defs) == {"lenscat_catalog", "lenscat_positives"}


def _observed_versions(instance: dg.DagsterInstance, key: dg.AssetKey) -> dict[str, str]:
    records = instance.fetch_observations(key, limit=100).records
    latest: dict[str, str] = {}
    for record in sorted(records, key=lambda r: r.storage_id):
        observation = record.asset_observation
        latest[observation.partition] = observation.tags["dagster/data_version"]
    return latest


def test_new_coadd_brick_changes_only_its_partition(
    s3_settings: Settings, s3_bucket: str, s3_server: str
) -> None:
    defs = build_definitions(s3_settings)
    graph = defs.resolve_asset_graph()
    assert COADD_CACHE in graph.get(dg.AssetKey("positive_cutouts")).parent_keys
    project = Project.from_settings(s3_settings)
    first, second = TEST_BRICKS
    part_first = project.healpix_key(project.brick_pixels[first])
    part_second = project.healpix_key(project.brick_pixels[second])
    assert part_first != part_second
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-2")
    name = f"legacysurvey-{first}-image-g.fits.fz"
    client.put_object(Bucket=s3_bucket, Key=f"dr10/coadd_cache/{first}/{name}", Body=b"g")
    with dg.instance_for_test() as instance:
        _run(defs, instance, [COADD_CACHE])
        before = _observed_versions(instance, COADD_CACHE)
        assert set(before) == {part_first, part_second}
        name = f"legacysurvey-{second}-image-r.fits.fz"  # a brick arrives in the cache
        client.put_object(Bucket=s3_bucket, Key=f"dr10/coadd_cache/{second}/{name}", Body=b"r")
        _run(defs, instance, [COADD_CACHE])
        after = _observed_versions(instance, COADD_CACHE)
    assert after[part_first] == before[part_first]
    assert after[part_second] != before[part_second]


def test_every_asset_gets_a_code_version_and_the_condition() -> None:
    settings = load_settings()
    defs = build_definitions(settings)
    graph = defs.resolve_asset_graph()
    for key in graph.materializable_asset_keys:
        node = graph.get(key)
        assert node.code_version, key
        assert node.automation_condition is not None, key
    survey_def = defs.resolve_assets_def("survey_footprint")
    expected = code_version_of(survey_def, settings.config_dir, settings.profile)
    assert graph.get(dg.AssetKey("survey_footprint")).code_version == expected
    assert graph.get(dg.AssetKey("lenscat_catalog")).automation_condition == AUTOMATION_CONDITION
    assert LENSCAT_CSV in graph.get(dg.AssetKey("lenscat_catalog")).parent_keys


def test_code_version_is_stable_and_follows_the_source() -> None:
    """Same source, same version (across builds); a different function body, a new one."""
    project = Project.from_settings(load_settings())

    def versions() -> dict[dg.AssetKey, str]:
        items = survey.build_assets(project)
        return {
            a.key: code_version_of(a) for a in items if not isinstance(a, dg.AssetChecksDefinition)
        }

    first, again = versions(), versions()
    assert first == again

    @dg.asset(name="survey_footprint")
    def other() -> int:
        return 2

    assert code_version_of(other) != first[dg.AssetKey("survey_footprint")]


def test_code_version_follows_the_science_an_asset_runs_transitively() -> None:
    """grid_completeness's body calls assets/d06.py, which renders arcs through science modules:
    those enter its version; lenscat_catalog's does not depend on the injection engine."""
    defs = build_definitions(load_settings())
    grid = code_modules(defs.resolve_assets_def("grid_completeness"))
    for module in (
        "stronglens_assets.assets.d06",
        "stronglens_assets.science.experiments.grid",
        # imported by experiments.injections, not by assets/d06.py
        "stronglens_assets.science.lensing.injection",
        "stronglens_assets.science.lensing.profiles",  # imported by injection
        "stronglens_assets.science.learning.scoring",  # imported inside a method of assets/d06.py
    ):
        assert module in grid, module
    lenscat = code_modules(defs.resolve_assets_def("lenscat_catalog"))
    assert "stronglens_assets.science.catalogs.lenscat" in lenscat
    assert "stronglens_assets.science.lensing.injection" not in lenscat
    assert not any(m.startswith("stronglens_assets.settings") for m in grid + lenscat)


@pytest.mark.parametrize(
    ("env", "status"),
    [({}, dg.DefaultScheduleStatus.STOPPED), ({"STRONGLENS_ENV": "s3"}, "RUNNING")],
)
def test_schedules_are_off_locally_and_on_in_production(env, status, monkeypatch) -> None:
    if env:
        monkeypatch.setenv("STRONGLENS_S3_BUCKET", "darkhaloscope")
    settings = load_settings({**os.environ, **env})
    defs = build_definitions(settings)
    schedules = {s.name: s for s in defs.schedules}
    assert {"observe_external_inputs", "graph_refresh"} <= set(schedules)
    expected = dg.DefaultScheduleStatus(status) if isinstance(status, str) else status
    for schedule in schedules.values():
        assert schedule.default_status == expected, schedule.name
    (sensor,) = defs.sensors
    assert sensor.default_status.value == expected.value


def test_graph_refresh_requests_every_root_partition() -> None:
    settings = load_settings()
    defs = build_definitions(settings)
    schedule = defs.resolve_schedule_def("graph_refresh")
    with dg.instance_for_test() as instance:
        context = dg.build_schedule_context(
            instance=instance,
            repository_def=defs.get_repository_def(),
            scheduled_execution_time=datetime.datetime(2026, 12, 1, 6, tzinfo=datetime.UTC),
        )
        requests = schedule.evaluate_tick(context).run_requests
    graph = defs.resolve_asset_graph()
    roots = {
        k
        for k in graph.materializable_asset_keys
        if not (graph.get(k).parent_keys & graph.materializable_asset_keys)
    }
    assert {k for r in requests for k in r.asset_selection} == roots
    assert dg.AssetKey("survey_footprint") in roots
    assert len({r.run_key for r in requests}) == len(requests)
    assert set(root_assets([defs.resolve_assets_def(k) for k in roots])) == roots


def test_malformed_cron_fails_at_load_naming_file_and_field(config_copy: Path, monkeypatch):
    path = config_copy / "automation.yaml"
    path.write_text(path.read_text().replace('cron: "0 6 1 * *"', 'cron: "0 25 1 * *"'))
    monkeypatch.setenv("STRONGLENS_CONFIG_DIR", str(config_copy))
    with pytest.raises(ConfigError) as info:
        build_definitions(load_settings())
    message = str(info.value)
    assert str(path) in message
    assert "graph_refresh.cron" in message
    assert "'0 25 1 * *' is not a valid cron string" in message


def test_an_edited_config_changes_the_versions_of_its_readers_only(tmp_path) -> None:
    """Editing `d06.yaml` makes the D06 assets (and only assets reading it) stale."""
    import shutil

    from stronglens_assets.assets import d06, negatives
    from stronglens_assets.settings import PROJECT_ROOT

    config_dir = tmp_path / "configs"
    shutil.copytree(PROJECT_ROOT / "configs", config_dir)
    settings = load_settings({"STRONGLENS_CONFIG_DIR": str(config_dir)})
    project = Project.from_settings(settings)

    def versions(profile: str = settings.profile) -> dict[str, str]:
        items = [*d06.build_assets(project), *negatives.build_assets(project)]
        return {
            a.key.to_user_string(): code_version_of(a, config_dir, profile)
            for a in items
            if not isinstance(a, dg.AssetChecksDefinition)
        }

    before = versions()
    d06_yaml = config_dir / "d06.yaml"
    d06_yaml.write_text(d06_yaml.read_text() + "\n# an edit\n")
    after = versions()
    changed = {k for k in before if before[k] != after[k]}
    assert {"grid_completeness", "bright_arc", "linear_probe"} <= changed
    assert not changed & {"negative_pool", "negative_manifest", "injection_priors"}
    assert versions("full")["negative_pool"] != after["negative_pool"]  # the size profile
