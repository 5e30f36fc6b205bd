"""The `stronglens` command: help, errors, and the demo end to end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from stronglens_assets.cli import main
from stronglens_assets.definitions import build_definitions
from stronglens_assets.settings import load_settings


def _stronglens(*args: str, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stronglens_assets.cli", *args],
        env={**os.environ, "STRONGLENS_HOME": str(home), **env},
        capture_output=True,
        text=True,
        timeout=900,
    )


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
    assert "bricks:          16" in out


@pytest.mark.slow
def test_demo_materializes_into_persistent_instance(tmp_path: Path) -> None:
    result = _stronglens("demo", home=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Summary" in result.stdout
    assert "materialized survey_footprint" in result.stdout
    assert "0 failed" in result.stdout
    graph = build_definitions(load_settings()).resolve_asset_graph()
    with dg.DagsterInstance.from_config(str(tmp_path / "dagster_home")) as instance:
        for key in graph.materializable_asset_keys:
            partitions_def = graph.get(key).partitions_def
            if partitions_def is None:
                assert instance.get_latest_materialization_event(key) is not None, key
            else:
                keys = partitions_def.get_partition_keys()
                status = instance.get_status_by_partition(key, keys, partitions_def)
                assert set(status.values()) == {dg.AssetPartitionStatus.MATERIALIZED}, key
    assert (tmp_path / "storage" / "survey_footprint.parquet").is_file()
