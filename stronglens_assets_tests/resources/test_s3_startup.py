"""Start-up bucket checks fail fast and say what answered (issue 23 item 5).

Both endpoints are real sockets on 127.0.0.1 started by the test: one accepts connections and
never answers; one is a plain HTTP server that answers every request with a bare 404.
"""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Iterator

import dagster as dg
import pytest
from dagster_aws.s3 import S3Resource

from stronglens_assets.definitions import build_definitions
from stronglens_assets.resources import S3StorageResource
from stronglens_assets.resources.coadds import CoaddSourceResource
from stronglens_assets.resources.object_store import StorageError
from stronglens_assets.settings import load_settings

#: The acceptance limit for a silent endpoint (issue 23), start-up check included.
SILENT_ENDPOINT_LIMIT_S = 30.0


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """``http://127.0.0.1:<port>`` of a socket whose kernel accepts connections (listen
    backlog) and that never reads or answers a request."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()


class _NotFound(http.server.BaseHTTPRequestHandler):
    body = b""

    def _answer(self) -> None:
        body = self.body
        self.send_response(404)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_PUT = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(params=[b"", b"<html><body>404 Not Found</body></html>"], ids=["empty", "html"])
def web_server_404(request: pytest.FixtureRequest) -> Iterator[str]:
    """``http://127.0.0.1:<port>`` of an HTTP server (not S3) that answers 404 to anything,
    with an empty body or a web page."""
    handler = type("NotFound", (_NotFound,), {"body": request.param})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _storage(endpoint: str) -> S3StorageResource:
    return S3StorageResource(
        s3=S3Resource(endpoint_url=endpoint, region_name="us-east-2"), bucket="results"
    )


def test_silent_endpoint_fails_the_storage_start_up_within_30_s(silent_endpoint: str) -> None:
    """On main: 120 s read timeout x 8 attempts (about 16 minutes) before any error."""
    started = time.monotonic()
    with pytest.raises(StorageError) as info:
        _storage(silent_endpoint).setup_for_execution(dg.build_init_resource_context())
    elapsed = time.monotonic() - started
    assert elapsed < SILENT_ENDPOINT_LIMIT_S, elapsed
    message = str(info.value)
    assert "did not answer" in message and silent_endpoint in message
    assert "s3://results" in message


def test_silent_endpoint_fails_the_coadd_start_up_within_30_s(silent_endpoint: str) -> None:
    coadds = CoaddSourceResource(
        kind="s3",
        bucket="dr10",
        s3=S3Resource(endpoint_url=silent_endpoint, region_name="us-east-2"),
    )
    started = time.monotonic()
    with pytest.raises(StorageError, match="did not answer"):
        coadds.setup_for_execution(dg.build_init_resource_context())
    assert time.monotonic() - started < SILENT_ENDPOINT_LIMIT_S


def test_a_run_against_a_silent_endpoint_fails_within_30_s(
    silent_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real run of the graph in the ``s3`` environment stops at resource start-up."""
    for name, value in {
        "STRONGLENS_ENV": "s3",
        "STRONGLENS_S3_BUCKET": "results",
        "STRONGLENS_S3_ENDPOINT_URL": silent_endpoint,
        "STRONGLENS_S3_REGION": "us-east-2",
    }.items():
        monkeypatch.setenv(name, value)
    defs = build_definitions(load_settings())
    started = time.monotonic()
    with dg.instance_for_test() as instance:
        result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance,
            asset_selection=[dg.AssetKey("survey_footprint")],
            raise_on_error=False,
        )
    assert time.monotonic() - started < SILENT_ENDPOINT_LIMIT_S
    assert not result.success
    text = " ".join(str(e.event_specific_data) for e in result.all_events if e.is_failure)
    assert "did not answer" in text


def test_a_bare_404_from_a_web_server_is_not_a_missing_bucket(web_server_404: str) -> None:
    """On main: "bucket 'results' does not exist" although nothing S3 ever answered."""
    with pytest.raises(StorageError) as info:
        _storage(web_server_404).verify()
    message = str(info.value)
    assert "does not exist" not in message
    assert "HTTP 404 without an S3 error document" in message
    assert "does not look like an S3 server" in message and web_server_404 in message


def test_sync_against_a_silent_endpoint_fails_within_30_s(
    silent_endpoint: str, tmp_path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """`stronglens sync` checks its buckets with the start-up limits too (before: the data
    path's 120 s x 8 attempts)."""
    import shutil

    from stronglens_assets.cli import main
    from stronglens_assets.science.catalogs.lenscat import lenscat_csv_path

    positives = tmp_path / "inputs/data/positives"
    positives.mkdir(parents=True)
    shutil.copyfile(lenscat_csv_path(), positives / "desi_candidates.csv")
    for name, value in {
        "STRONGLENS_ENV": "s3",
        "STRONGLENS_HOME": str(tmp_path / "home"),
        "STRONGLENS_S3_BUCKET": "results",
        "STRONGLENS_S3_ENDPOINT_URL": silent_endpoint,
        "STRONGLENS_S3_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("STRONGLENS_DR10_BUCKET", raising=False)
    started = time.monotonic()
    assert main(["sync", "--from", str(tmp_path / "inputs")]) == 2
    assert time.monotonic() - started < SILENT_ENDPOINT_LIMIT_S
    assert "did not answer" in capsys.readouterr().err
