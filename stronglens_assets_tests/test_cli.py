"""The `stronglens` command: help, errors, and the demo end to end."""

from __future__ import annotations

import dagster as dg
import pytest

from stronglens_assets.cli import main
from stronglens_assets.definitions import build_definitions
from stronglens_assets.settings import load_settings
from stronglens_assets_tests.harness import DemoRun


def test_help_explains_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for word in ("demo", "ui", "info", "STRONGLENS_ENV"):
        assert word in out


def test_unknown_environment_is_a_clear_error(
    capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    monkeypatch.setenv("STRONGLENS_ENV", "production")
    assert main(["info"]) == 2
    assert "STRONGLENS_ENV='production' is not a known environment" in capsys.readouterr().err


def test_info_lists_partitions(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "hpx-nest16-1105" in out
    assert "bricks:          24" in out


@pytest.mark.slow
def test_demo_materializes_into_persistent_instance(demo_run: DemoRun) -> None:
    result = demo_run
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Summary" in result.stdout
    assert "materialized survey_footprint" in result.stdout
    assert "0 failed" in result.stdout
    graph = build_definitions(load_settings()).resolve_asset_graph()
    with dg.DagsterInstance.from_config(str(demo_run.dagster_home)) as instance:
        for key in graph.materializable_asset_keys:
            partitions_def = graph.get(key).partitions_def
            if partitions_def is None:
                assert instance.get_latest_materialization_event(key) is not None, key
            else:
                keys = partitions_def.get_partition_keys()
                status = instance.get_status_by_partition(key, keys, partitions_def)
                assert set(status.values()) == {dg.AssetPartitionStatus.MATERIALIZED}, key
    assert (demo_run.storage / "survey_footprint.parquet").is_file()
    # what the webserver shows of this instance: production/test_webserver_ui.py
