"""The same graph in the ``s3`` environment: DR10-layout inputs and all outputs on a real S3
server (moto on 127.0.0.1), read through the real-DR10 code paths (sweep 10.1 FITS boxes,
the S3 coadd cache, the VAC key)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import dagster as dg
import pandas as pd
import pytest
from astropy.table import Table
from dagster_aws.s3 import S3Resource

from stronglens_assets.definitions import build_definitions
from stronglens_assets.resources import CoaddSourceResource, S3StorageResource
from stronglens_assets.resources.object_store import StorageError
from stronglens_assets.resources.survey import sweep_files_for_bricks
from stronglens_assets.settings import load_settings
from stronglens_assets_tests.harness import TEST_BRICKS, BuiltSky


def _upload_dr10_layout(client, bucket: str, sky: BuiltSky, tmp_path: Path) -> None:
    """Mock products in the real DR10 S3 layout: sweep FITS boxes, coadd cache, VAC."""
    sweeps = pd.concat(
        [pd.read_parquet(p) for p in sorted((sky.root / "sweep").rglob("*.parquet"))],
        ignore_index=True,
    )
    for brick in TEST_BRICKS:
        (box,) = sweep_files_for_bricks([brick])
        path = tmp_path / box
        Table.from_pandas(sweeps[sweeps["BRICKNAME"] == brick]).write(path, format="fits")
        client.upload_file(str(path), bucket, f"dr10/sweep/10.1/{box}")
        for fits_file in sorted((sky.root / "coadd" / brick[:3] / brick).glob("*.fits.fz")):
            client.upload_file(str(fits_file), bucket, f"dr10/coadd_cache/{brick}/{fits_file.name}")
    from stronglens_assets.mock_survey.vac import write_mock_desi_vac

    vac = tmp_path / "desi-sl-vac-v1.fits"
    lenses = pd.concat(
        [pd.read_parquet(p) for p in sorted((sky.root / "truth").rglob("lenses-*.parquet"))]
    )
    real = lenses[lenses["source"] == "lenscat"]
    write_mock_desi_vac(vac, real["ra"], real["dec"], [0.5] * len(real), seed=3)
    key = "stronglens_calibration/data/external/desi_dr1/desi-sl-vac-v1.fits"
    client.upload_file(str(vac), bucket, key)


def _bucket_keys(client, bucket: str, prefix: str = "") -> set[str]:
    return {
        o["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for o in page.get("Contents", [])
    }


def _asset_objects(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    bucket: str,
    prefix: str,
    selection: set[dg.AssetKey],
) -> dict[str, set[str]]:
    """For every selected asset, the bucket keys its materializations point at.

    An IO-managed value lives at ``<prefix>/<key>(/<partition>).<ext>`` (metadata ``uri``); an
    asset that writes shards itself reports their pointer object as ``uri`` too.
    """
    graph = defs.resolve_asset_graph()
    found: dict[str, set[str]] = {}
    for key in graph.materializable_asset_keys & selection:
        partitions_def = graph.get(key).partitions_def
        partitions = [None] if partitions_def is None else partitions_def.get_partition_keys()
        uris: set[str] = set()
        for partition in partitions:
            records = instance.fetch_materializations(
                dg.AssetRecordsFilter(
                    asset_key=key, asset_partitions=None if partition is None else [partition]
                ),
                limit=1,
            ).records
            assert records, f"{key.to_user_string()} [{partition}] was not materialized"
            metadata = records[0].asset_materialization.metadata
            for value in metadata.values():
                text = str(getattr(value, "value", value))
                if text.startswith(f"s3://{bucket}/{prefix}/"):
                    uris.add(text.removeprefix(f"s3://{bucket}/"))
        found[key.to_user_string()] = uris
    return found


#: Assets that compare with real Tier-A lenses: the 2-brick test sky holds none (its lenscat
#: candidates are all Tier-B, and the real-DR10 path knows nothing of the mock's planted
#: lenses), so they cannot run on it; `tier_a_scoring` is run to check it says so.
NEEDS_TIER_A = (
    "linear_probe",
    "tier_a_scoring",
    "paper_figures",
    "paper_tables",
    "comparison_gallery",
    "d06_provenance",
)


def _config_dir(tmp_path: Path) -> Path:
    """A copy of the project's configs (D06 hosts are drawn at random, per observing-condition
    bin: no Tier-A deflector is needed to choose them)."""
    import shutil

    from stronglens_assets.settings import PROJECT_ROOT

    config_dir = tmp_path / "configs"
    shutil.copytree(PROJECT_ROOT / "configs", config_dir)
    return config_dir


@pytest.mark.slow
def test_graph_runs_on_s3(
    built_sky: BuiltSky, tmp_path: Path, s3_server: str, s3_bucket: str, monkeypatch
) -> None:
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-2")
    _upload_dr10_layout(client, s3_bucket, built_sky, tmp_path)
    inputs = _bucket_keys(client, s3_bucket)
    footprint = tmp_path / "footprint.yaml"
    footprint.write_text(f"partition_nside: 16\nbricks: [{', '.join(TEST_BRICKS)}]\n")
    environ = {
        "STRONGLENS_CONFIG_DIR": str(_config_dir(tmp_path)),
        "STRONGLENS_ENV": "s3",
        "STRONGLENS_PROFILE": "demo",  # the demo sizes; the code path is the production one
        "STRONGLENS_S3_BUCKET": s3_bucket,
        "STRONGLENS_S3_ENDPOINT_URL": s3_server,
        "STRONGLENS_S3_REGION": "us-east-2",
        "STRONGLENS_HOME": str(tmp_path / "home"),
        "STRONGLENS_FOOTPRINT": str(footprint),
    }
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    defs = build_definitions(load_settings())
    graph = defs.resolve_asset_graph()
    assert not any(k.to_user_string().startswith("mock_") for k in graph.get_all_asset_keys())

    from stronglens_assets.runner import plan_stages, run_stages

    needs_tier_a = {dg.AssetKey(name) for name in NEEDS_TIER_A}
    assert needs_tier_a <= graph.materializable_asset_keys
    selection = graph.materializable_asset_keys - needs_tier_a
    with dg.instance_for_test() as instance:
        records = run_stages(defs, plan_stages(defs, selection), instance, report=lambda _: None)
        failed = [r for r in records if not r.success]
        for record in failed:  # the failure events of the failed run, for the report
            for event in instance.all_logs(record.run_id):
                if event.is_dagster_event and event.dagster_event.is_failure:
                    print(event.dagster_event.event_specific_data)
        assert records and not failed, [(r.asset_keys, r.partition_key) for r in failed]
        by_asset = _asset_objects(defs, instance, s3_bucket, "stronglens_calibration", selection)
        (scoring,) = run_stages(
            defs,
            plan_stages(defs, [dg.AssetKey("tier_a_scoring")]),
            instance,
            report=lambda _: None,
        )
        assert not scoring.success
        errors = [
            str(event.dagster_event.event_specific_data.error)
            for event in instance.all_logs(scoring.run_id)
            if event.is_dagster_event and event.dagster_event.is_step_failure
        ]
        assert any("no Tier-A lens in the splits" in e for e in errors), errors

    keys = _bucket_keys(client, s3_bucket, "stronglens_calibration/")
    outputs = keys - inputs
    # every asset (and partition) has its objects in the bucket ...
    for name, uris in by_asset.items():
        assert uris, f"{name}: no s3:// output in its materialization metadata"
        assert uris <= keys, (name, sorted(uris - keys))
    # ... and every object the graph wrote belongs to an asset: an IO-managed output
    # <asset>(/<partition>).<ext>, or lies beside an object an asset reported (its shards)
    asset_names = set(by_asset)
    reported_dirs = {u.rsplit("/", 1)[0] for uris in by_asset.values() for u in uris}
    for key in outputs:
        relative = key.removeprefix("stronglens_calibration/")
        stem = relative.rsplit(".", 1)[0]
        owner = stem if stem in asset_names else stem.rsplit("/", 1)[0]
        assert (
            owner in asset_names
            or any(key.startswith(d + "/") for d in reported_dirs)
            or relative.split("/", 1)[0] in {"manifests", "dagster"}
        ), f"{key} belongs to no asset"
    for expected in (
        "stronglens_calibration/lenscat_positives.parquet",
        "stronglens_calibration/dr10_sweep/hpx-nest16-1105.parquet",
        "stronglens_calibration/negative_manifest.parquet",
        "stronglens_calibration/cutouts/positives/hpx-nest16-1105.json",
        "stronglens_calibration/training_manifest.parquet",
        "stronglens_calibration/manifests/training_parity_70_30_v1.parquet",
    ):
        assert expected in keys
    storage = defs.resources["storage"]
    manifest = storage.read_value("training_manifest.parquet")
    assert set(manifest["source"]) == {"lenscat", "dr10"}  # no mock lenses outside the demo
    shard_keys = {f"stronglens_calibration/{k}" for k in manifest["cutout_key"].unique()}
    assert shard_keys <= keys
    matched = storage.read_value("positives_dr10_crossmatch.parquet")
    truth = pd.concat(
        [pd.read_parquet(p) for p in (built_sky.root / "truth").rglob("lenses-*.parquet")]
    )
    assert matched["matched"].all()
    assert sorted(matched["name"]) == sorted(truth.loc[truth["source"] == "lenscat", "name"])


# --------------------------------------------------------------------------------------------
# Transient failures: an endpoint that throttles the first requests
# --------------------------------------------------------------------------------------------
class _FlakyProxy:
    """HTTP proxy on 127.0.0.1 in front of the moto server: answers the first ``failures``
    requests with ``503 SlowDown`` (S3's throttling error), then forwards every request."""

    def __init__(self, upstream: str, failures: int):
        import http.client
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import urlsplit

        target = urlsplit(upstream)
        proxy = self
        self.failures = failures
        self.seen: list[int] = []
        self.lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # answers `Expect: 100-continue` as S3 does

            def log_message(self, *args) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with proxy.lock:
                    fail = proxy.failures > 0
                    proxy.failures -= int(fail)
                if fail:
                    payload = (
                        b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
                        b"<Message>Please reduce your request rate.</Message></Error>"
                    )
                    self.send_response(503)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    proxy.seen.append(503)
                    return
                connection = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in ("connection", "expect")
                }
                connection.request(self.command, self.path, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
                self.send_response(response.status)
                for name, value in response.getheaders():
                    if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                connection.close()
                proxy.seen.append(response.status)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> _FlakyProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def _storage(endpoint: str, bucket: str, **kwargs) -> S3StorageResource:
    s3 = S3Resource(endpoint_url=endpoint, region_name="us-east-2")
    return S3StorageResource(s3=s3, bucket=bucket, prefix="stronglens_calibration", **kwargs)


def test_throttling_is_retried_by_botocore(s3_server: str, s3_bucket: str) -> None:
    with _FlakyProxy(s3_server, failures=3) as proxy:
        storage = _storage(proxy.url, s3_bucket)
        uri = storage.write_bytes("retry/object.bin", b"payload")
        assert storage.read_bytes("retry/object.bin") == b"payload"
    assert uri == f"s3://{s3_bucket}/stronglens_calibration/retry/object.bin"
    assert proxy.seen[:3] == [503, 503, 503]
    assert proxy.seen[3:] and all(status == 200 for status in proxy.seen[3:])


def test_without_retries_the_same_endpoint_fails(s3_server: str, s3_bucket: str) -> None:
    """The control: one attempt per request, so the proxy's throttling surfaces."""
    with _FlakyProxy(s3_server, failures=1) as proxy:
        storage = _storage(proxy.url, s3_bucket, max_attempts=1)
        with pytest.raises(StorageError, match="SlowDown"):
            storage.write_bytes("retry/object.bin", b"payload")
    assert proxy.seen == [503]


def test_coadd_source_client_retries_too(s3_server: str, s3_bucket: str) -> None:
    boto3.client("s3", endpoint_url=s3_server, region_name="us-east-2").put_object(
        Bucket=s3_bucket, Key="dr10/coadd_cache/0366m037/x.txt", Body=b"x"
    )
    with _FlakyProxy(s3_server, failures=2) as proxy:
        resource = CoaddSourceResource(
            kind="s3",
            bucket=s3_bucket,
            s3=S3Resource(endpoint_url=proxy.url, region_name="us-east-2"),
            backoff_s=0.0,
        )
        resource.setup_for_execution(dg.build_init_resource_context())
        source = resource.get_source()
        assert source.client.meta.config.retries["total_max_attempts"] >= 3
    assert proxy.seen[:2] == [503, 503] and proxy.seen[2] == 200


# --------------------------------------------------------------------------------------------
# Start-up validation: wrong credentials, missing bucket
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def authenticating_s3(tmp_path_factory) -> Iterator[tuple[str, dict[str, str], str]]:
    """A moto server on 127.0.0.1 that checks credentials (IAM auth on), with one user whose
    key may use S3 and a bucket. Yields ``(endpoint, good credentials, bucket)``."""
    import os
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "3"}  # 3 set-up calls without auth
    log = (tmp_path_factory.mktemp("moto_auth") / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1")
        iam.create_user(UserName="stronglens")
        iam.put_user_policy(
            UserName="stronglens",
            PolicyName="s3",
            PolicyDocument='{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
            '"Action":"s3:*","Resource":"*"}]}',
        )
        key = iam.create_access_key(UserName="stronglens")["AccessKey"]
        good = {
            "aws_access_key_id": key["AccessKeyId"],
            "aws_secret_access_key": key["SecretAccessKey"],
        }
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **good)
        s3.create_bucket(Bucket="stronglens-auth")
        yield endpoint, good, "stronglens-auth"
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def _auth_storage(endpoint: str, credentials: dict[str, str], bucket: str) -> S3StorageResource:
    s3 = S3Resource(endpoint_url=endpoint, region_name="us-east-1", **credentials)
    return S3StorageResource(s3=s3, bucket=bucket, max_attempts=2)


def test_good_credentials_pass_start_up(authenticating_s3) -> None:
    endpoint, good, bucket = authenticating_s3
    storage = _auth_storage(endpoint, good, bucket)
    storage.setup_for_execution(dg.build_init_resource_context())
    storage.write_bytes("hello.txt", b"hi")
    assert storage.read_bytes("hello.txt") == b"hi"


def test_wrong_credentials_fail_at_resource_start_up(authenticating_s3) -> None:
    endpoint, good, bucket = authenticating_s3
    wrong = {**good, "aws_access_key_id": "AKIAWRONGWRONGWRONG0"}
    storage = _auth_storage(endpoint, wrong, bucket)
    with pytest.raises(StorageError) as info:
        storage.setup_for_execution(dg.build_init_resource_context())
    message = str(info.value)
    assert "S3 rejected the credentials" in message
    assert "InvalidAccessKeyId" in message and f"s3://{bucket}" in message


def test_missing_bucket_fails_at_resource_start_up(authenticating_s3) -> None:
    endpoint, good, _ = authenticating_s3
    storage = _auth_storage(endpoint, good, "no-such-bucket-here")
    with pytest.raises(StorageError, match="bucket 'no-such-bucket-here' does not exist"):
        storage.setup_for_execution(dg.build_init_resource_context())


def test_a_run_with_a_missing_bucket_stops_before_any_asset(s3_server: str, monkeypatch) -> None:
    """In a real run the storage resource's start-up check fails the run with the message."""
    for name, value in {
        "STRONGLENS_ENV": "s3",
        "STRONGLENS_S3_BUCKET": "absent-bucket",
        "STRONGLENS_S3_ENDPOINT_URL": s3_server,
        "STRONGLENS_S3_REGION": "us-east-2",
    }.items():
        monkeypatch.setenv(name, value)
    defs = build_definitions(load_settings())
    with dg.instance_for_test() as instance:
        result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance,
            asset_selection=[dg.AssetKey("survey_footprint")],
            raise_on_error=False,
        )
    assert not result.success
    failures = [e for e in result.all_events if e.is_failure]
    text = " ".join(str(e.event_specific_data) for e in failures)
    assert "bucket 'absent-bucket' does not exist" in text
