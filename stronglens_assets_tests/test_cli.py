"""The `stronglens` command: help, errors, and the demo end to end."""

from __future__ import annotations

import os
import sys
from pathlib import Path

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


def test_ui_command_runs_dagster_through_this_interpreter(tmp_path) -> None:
    from stronglens_assets.cli import CODE_LOCATION_NAME, ui_command
    from stronglens_assets.settings import PROJECT_ROOT

    command = ui_command(tmp_path, ["-h", "127.0.0.1", "-p", "3001"])
    assert command[:4] == [sys.executable, "-m", "dagster", "dev"]
    assert command[4:6] == ["-w", str(PROJECT_ROOT / "workspace.yaml")]
    assert command[6:] == ["-h", "127.0.0.1", "-p", "3001"]  # passed through as given
    assert f"location_name: {CODE_LOCATION_NAME}" in (PROJECT_ROOT / "workspace.yaml").read_text()


@pytest.mark.slow
def test_ui_starts_dagster_dev_without_the_venv_on_path(tmp_path) -> None:
    """`.venv/bin/stronglens ui -h 127.0.0.1 -p PORT` with a PATH that lacks the venv: the UI
    comes up on that host and port and shows one code location, `stronglens_assets`."""
    import json
    import signal
    import socket
    import subprocess
    import time
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    script = Path(sys.executable).parent / "stronglens"
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    env["PATH"] = "/usr/bin:/bin"
    env["STRONGLENS_HOME"] = str(tmp_path)
    log = (tmp_path / "ui.log").open("w")
    ui = subprocess.Popen(
        [str(script), "ui", "-h", "127.0.0.1", "-p", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    query = json.dumps(
        {"query": "{ workspaceOrError { ... on Workspace { locationEntries { name } } } }"}
    ).encode()
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/graphql",
                    data=query,
                    headers={"Content-Type": "application/json"},
                )
                with urllib.request.urlopen(request, timeout=10) as response:
                    entries = json.load(response)["data"]["workspaceOrError"]["locationEntries"]
                break
            except OSError:
                pass
            assert ui.poll() is None, (tmp_path / "ui.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the UI did not come up"
            time.sleep(1)
        assert [e["name"] for e in entries] == ["stronglens_assets"]
        assert (tmp_path / "dagster_home" / "dagster.yaml").is_file()
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        try:
            ui.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(ui.pid, signal.SIGKILL)
            ui.wait()
        log.close()


@pytest.mark.slow
def test_second_demo_skips_everything_and_says_so(demo_run: DemoRun) -> None:
    """On an up-to-date home every stage is skipped by Dagster's stale status: no asset runs
    again, and the summary says so per asset."""
    import subprocess
    import time

    assert demo_run.returncode == 0, demo_run.stdout[-3000:] + demo_run.stderr[-3000:]
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("STRONGLENS_", "AWS_")) and k != "DAGSTER_HOME"
    }
    with dg.DagsterInstance.from_config(str(demo_run.dagster_home)) as instance:
        materializations_before = {
            key: instance.get_latest_materialization_event(key).run_id
            for key in [dg.AssetKey("survey_footprint"), dg.AssetKey("paper_tables")]
        }
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "stronglens_assets.cli", "demo"],
        env={**env, "STRONGLENS_HOME": str(demo_run.home)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    seconds = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    stage_lines = [line for line in result.stdout.splitlines() if line.startswith("[")]
    assert stage_lines and all(line.endswith(": up to date, skipped") for line in stage_lines)
    assert f"0 succeeded, 0 failed, {len(stage_lines)} skipped as up to date" in result.stdout
    assert "materialized" not in result.stdout
    with dg.DagsterInstance.from_config(str(demo_run.dagster_home)) as instance:
        for key, run_id in materializations_before.items():
            assert instance.get_latest_materialization_event(key).run_id == run_id
    print(f"second demo: {seconds:.1f} s")  # measured, not asserted (shared CPUs)


def test_info_from_another_directory_says_where_it_looks(
    capsys: pytest.CaptureFixture[str], tmp_path, monkeypatch
) -> None:
    monkeypatch.delenv("STRONGLENS_HOME")
    monkeypatch.chdir(tmp_path)
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"home:            {tmp_path / '.stronglens'} (default ./.stronglens" in out
    assert "environment:     local (profile demo)" in out
    assert "last run:        none (no Dagster instance here yet: run `stronglens demo`)" in out


@pytest.mark.slow
def test_info_shows_the_demo_s_last_run(demo_run: DemoRun, capsys, monkeypatch) -> None:
    monkeypatch.setenv("STRONGLENS_HOME", str(demo_run.home))
    assert main(["info"]) == 0
    (line,) = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("last run:")]
    assert ", success (" in line and "run(s) in all" in line
