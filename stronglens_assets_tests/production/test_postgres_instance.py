"""The production instance (deploy/dagster.yaml) on a real PostgreSQL server.

The test starts Debian's PostgreSQL (``initdb`` + ``pg_ctl``) on 127.0.0.1 in a temporary data
directory, builds the instance from the production ``dagster.yaml`` with its S3 parts pointed at
the moto server (the Kubernetes run launcher is the one part left out: there is no cluster),
materializes the catalog corner of the graph in the ``s3`` environment and reads the runs,
materializations, compute logs and the ``gpu`` pool limit back.

Without the PostgreSQL binaries the test is skipped, except in CI (``CI`` set), where their
absence is a failure: ``.ci/run`` installs them.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import dagster as dg
import pytest
import yaml

from stronglens_assets.automation import apply_pool_limits, load_pool_limits
from stronglens_assets.definitions import build_definitions
from stronglens_assets.settings import PROJECT_ROOT, Settings
from stronglens_assets_tests.harness import missing

DEPLOY = PROJECT_ROOT / "deploy"
PASSWORD = "stronglens-test"


@dataclass(frozen=True)
class Postgres:
    host: str
    port: int
    user: str
    password: str
    db_name: str


def _pg_bin() -> Path | None:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(candidate) / "initdb").is_file() and (Path(candidate) / "pg_ctl").is_file():
            return Path(candidate)
    for name in ("initdb", "pg_ctl"):
        if shutil.which(name) is None:
            return None
    return Path(shutil.which("initdb")).parent  # type: ignore[arg-type]


def _as_postgres_user(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run it as the ``postgres`` system user then."""
    if os.geteuid() != 0:
        return command
    runuser = shutil.which("runuser")
    if runuser is None:
        pytest.fail("running as root but `runuser` is missing: cannot start PostgreSQL")
    return [runuser, "-u", "postgres", "--", *command]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    bin_dir = _pg_bin()
    if bin_dir is None:
        missing("PostgreSQL binaries (initdb, pg_ctl) not found; apt-get install postgresql")
    root = Path(tempfile.mkdtemp(prefix="stronglens-pg-"))
    data, log = root / "data", root / "server.log"
    pwfile = root / "pw"
    pwfile.write_text(PASSWORD + "\n")
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        shutil.chown(pwfile, "postgres", "postgres")
    os.chmod(root, 0o700)
    port = _free_port()
    run = {"check": True, "capture_output": True, "text": True, "timeout": 120}
    subprocess.run(
        _as_postgres_user(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                "dagster",
                "--auth=scram-sha-256",
                f"--pwfile={pwfile}",
                "--encoding=UTF8",
                "--no-instructions",
            ]
        ),
        **run,
    )
    options = f"-h 127.0.0.1 -p {port} -k {root} -c fsync=off"
    subprocess.run(
        _as_postgres_user(
            [str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log), "-w", "start"]
        ),
        **run,
    )
    try:
        import psycopg2

        connection = psycopg2.connect(
            host="127.0.0.1", port=port, user="dagster", password=PASSWORD, dbname="postgres"
        )
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("CREATE DATABASE dagster")
        connection.close()
        yield Postgres("127.0.0.1", port, "dagster", PASSWORD, "dagster")
    finally:
        subprocess.run(
            _as_postgres_user(
                [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]
            ),
            capture_output=True,
            timeout=120,
        )
        shutil.rmtree(root, ignore_errors=True)


def _instance_home(tmp_path: Path, s3_server: str, bucket: str) -> Path:
    """DAGSTER_HOME holding deploy/dagster.yaml with S3 pointed at moto and no k8s launcher."""
    config = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    del config["run_launcher"]  # K8sRunLauncher needs a cluster; runs execute in process here
    config["compute_logs"]["config"].update({"endpoint_url": s3_server, "region": "us-east-2"})
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    return home


def test_production_instance_on_postgres_records_runs_and_materializations(
    postgres: Postgres,
    s3_settings: Settings,
    s3_bucket: str,
    s3_server: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in {
        "DAGSTER_PG_HOST": postgres.host,
        "DAGSTER_PG_USER": postgres.user,
        "DAGSTER_PG_PASSWORD": postgres.password,
        "DAGSTER_PG_DB": postgres.db_name,
    }.items():
        monkeypatch.setenv(name, value)
    home = _instance_home(tmp_path, s3_server, s3_bucket)
    config = yaml.safe_load((home / "dagster.yaml").read_text())
    config["storage"]["postgres"]["postgres_db"]["port"] = postgres.port
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))

    defs = build_definitions(s3_settings)
    selection = ["survey_footprint", "lenscat_catalog", "lenscat_positives"]
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert type(instance.compute_log_manager).__name__ == "S3ComputeLogManager"
        apply_pool_limits(instance, load_pool_limits(str(DEPLOY / "pools.yaml")))
        result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance,
            asset_selection=[dg.AssetKey(k) for k in selection],
        )
        assert result.success
        run_id = result.run_id

    # a fresh instance object (new connections) reads everything back from PostgreSQL
    with dg.DagsterInstance.from_config(str(home)) as instance:
        run = instance.get_run_by_id(run_id)
        assert run is not None and run.status == dg.DagsterRunStatus.SUCCESS
        for key in selection:
            event = instance.get_latest_materialization_event(dg.AssetKey(key))
            assert event is not None and event.run_id == run_id, key
            uri = event.asset_materialization.metadata["uri"].value
            assert uri == f"s3://{s3_bucket}/stronglens_calibration/{key}.parquet"
        checks = instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [dg.AssetCheckKey(dg.AssetKey("lenscat_catalog"), "schema")]
        )
        assert len(checks) == 1
        gpu = load_pool_limits(str(DEPLOY / "pools.yaml"))["gpu"]
        assert instance.event_log_storage.get_concurrency_info("gpu").slot_count == gpu

    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-2")
    deadline = time.monotonic() + 60
    while True:  # the compute-log manager uploads when the step's capture closes
        listing = client.list_objects_v2(
            Bucket=s3_bucket, Prefix="stronglens_calibration/dagster/compute_logs/"
        )
        if listing.get("KeyCount", 0) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert listing.get("KeyCount", 0) > 0, "no compute logs in S3"
