"""Session-wide fixtures: env isolation, a real S3 server (moto's server mode on 127.0.0.1), the
two-brick mock sky and the one demo run of the end-to-end tests. Helpers live in
:mod:`stronglens_assets_tests.harness`."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import boto3
import dagster as dg
import pandas as pd
import pytest

from stronglens_assets.mock_survey import DemoSkyConfig, build_survey, load_demo_sky
from stronglens_assets.science.catalogs.lenscat import (
    desi_candidates,
    lenscat_csv_path,
    read_lenscat_csv,
)
from stronglens_assets_tests.harness import (
    TEST_BRICKS,
    BuiltSky,
    DemoRun,
    open_database_connections,
)

S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-2",
}


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory) -> None:
    """No test sees the developer's STRONGLENS_* / AWS settings or writes into the checkout."""
    import os

    for name in list(os.environ):
        if name.startswith(("STRONGLENS_", "AWS_")) or name == "DAGSTER_HOME":
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STRONGLENS_HOME", str(tmp_path_factory.mktemp("stronglens_home")))
    for name, value in S3_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """Endpoint URL of a moto S3 server on 127.0.0.1, started for this test session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh, empty bucket on the moto server."""
    for name, value in S3_ENV.items():
        monkeypatch.setenv(name, value)
    bucket = f"test-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-2")
    client.create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "us-east-2"}
    )
    return bucket


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """Run ``stronglens demo`` once per test session in a fresh ``STRONGLENS_HOME``.

    End-to-end tests (marked ``slow``) read its storage and instance instead of materializing
    the graph again. The run is a subprocess with the developer's STRONGLENS_*/AWS settings
    removed, exactly as a user would start it.
    """
    import os
    import subprocess
    import sys

    home = tmp_path_factory.mktemp("demo_home")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("STRONGLENS_", "AWS_")) and k != "DAGSTER_HOME"
    }
    result = subprocess.run(
        [sys.executable, "-m", "stronglens_assets.cli", "demo"],
        env={**env, "STRONGLENS_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=1800,
    )
    return DemoRun(home, result.returncode, result.stdout, result.stderr)


@pytest.fixture(scope="session")
def demo_config() -> DemoSkyConfig:
    return load_demo_sky()


@pytest.fixture(scope="session")
def lenscat_positions() -> pd.DataFrame:
    """lenscat DESI candidates (name, ra, dec, grading, ...), as the asset passes them."""
    return desi_candidates(read_lenscat_csv(lenscat_csv_path()))


@pytest.fixture(scope="session")
def built_sky(
    demo_config: DemoSkyConfig,
    lenscat_positions: pd.DataFrame,
    tmp_path_factory: pytest.TempPathFactory,
) -> BuiltSky:
    root = tmp_path_factory.mktemp("mock_sky")
    results = build_survey(demo_config, root, lenscat_positions, bricks=TEST_BRICKS, processes=2)
    return BuiltSky(demo_config, lenscat_positions, root, results)


@pytest.fixture
def dagster_instance() -> Iterator[dg.DagsterInstance]:
    """An ephemeral Dagster instance, disposed after the test."""
    with dg.DagsterInstance.ephemeral() as instance:
        yield instance


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the session when a test left a database connection open (a Dagster instance that
    was never disposed) instead of printing SQLAlchemy tracebacks at interpreter exit."""
    leaked = open_database_connections()
    if leaked:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = (
            f"{len(leaked)} database connection(s) left open by the tests (dispose every "
            f"Dagster instance you create, e.g. with the dagster_instance fixture): {leaked}"
        )
        if reporter is not None:
            reporter.write_line(message, red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
