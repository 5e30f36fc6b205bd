"""Coadd sources: local DR10 layout, S3 coadd cache (moto server), HTTP (local server)."""

from __future__ import annotations

import http.server
import os
import re
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pandas as pd
import pytest
from botocore.exceptions import ClientError
from dagster_aws.s3 import S3Resource

from stronglens_assets.resources.coadds import (
    DEFAULT_S3_PREFIX,
    CoaddFetchError,
    CoaddNotFoundError,
    CoaddSourceResource,
    CorruptCoaddError,
    HttpCoaddSource,
    LocalCoaddSource,
    S3CoaddSource,
    coadd_filename,
    dr10_coadd_path,
)
from stronglens_assets.science.imaging.cutouts import extract_brick_cutouts
from stronglens_assets_tests.fixtures_coadds import (
    TEST_BRICK,
    brick_grid_wcs,
    sky_of_pixels,
    write_brick,
)

NPIX = 200
FAST = {"attempts": 4, "backoff_s": 0.001}


@pytest.fixture(scope="module")
def brick_files(tmp_path_factory) -> tuple[Path, dict[tuple[str, str], Path]]:
    """A 200x200 test brick in the DR10 layout: (root, {(product, band): path})."""
    root = tmp_path_factory.mktemp("coadd_root")
    return root, write_brick(root, TEST_BRICK, NPIX)


def _objects() -> pd.DataFrame:
    ra, dec = sky_of_pixels(brick_grid_wcs(TEST_BRICK, NPIX), [100, 70], [100, 120])
    return pd.DataFrame({"objid": [1, 2], "ra": ra, "dec": dec})


def _cached_files(cache: Path) -> list[Path]:
    return sorted(p for p in cache.rglob("*") if p.is_file())


# ------------------------------------------------------------------------------------------
# Layout and local source
# ------------------------------------------------------------------------------------------
def test_layouts():
    assert coadd_filename("1126p222", "image", "g") == "legacysurvey-1126p222-image-g.fits.fz"
    assert (
        dr10_coadd_path("0001m002", "psfsize", "z")
        == "coadd/000/0001m002/legacysurvey-0001m002-psfsize-z.fits.fz"
    )
    with pytest.raises(ValueError):
        dr10_coadd_path("1126p222", "../x", "g")
    with pytest.raises(ValueError):
        coadd_filename("nonsense", "image", "g")
    s3 = S3CoaddSource(object(), "bucket", cache_dir="/tmp/x")
    assert s3.path_for(TEST_BRICK, "invvar", "r") == (
        "1126p222/legacysurvey-1126p222-invvar-r.fits.fz"
    )
    assert s3.uri(TEST_BRICK, "invvar", "r") == (
        "s3://bucket/dr10/coadd_cache/1126p222/legacysurvey-1126p222-invvar-r.fits.fz"
    )
    default_cache = Path(os.environ["STRONGLENS_HOME"]).resolve() / "cache" / "coadds"
    assert S3CoaddSource(object(), "bucket").cache_dir == default_cache
    assert HttpCoaddSource().cache_dir == default_cache
    web = HttpCoaddSource("https://example.org/dr10/south/", "/tmp/x")
    assert web.uri(TEST_BRICK, "image", "g") == (
        "https://example.org/dr10/south/coadd/112/1126p222/legacysurvey-1126p222-image-g.fits.fz"
    )


def test_local_source(brick_files):
    root, paths = brick_files
    source = LocalCoaddSource(root)
    assert source.has_brick(TEST_BRICK) and not source.has_brick("0001m002")
    assert source.open(TEST_BRICK, "image", "g") == paths[("image", "g")]
    with pytest.raises(CoaddNotFoundError, match="0001m002"):
        source.open("0001m002", "image", "g")


# ------------------------------------------------------------------------------------------
# HTTP
# ------------------------------------------------------------------------------------------
@dataclass
class _Behaviour:
    """Per-test server behaviour."""

    fail_first: int = 0  # answer 503 to the first N GETs of each path
    truncate_first: int = 0  # send only half the body (full Content-Length) N times
    garbage: bool = False  # serve random bytes of the right length
    requests: Counter = field(default_factory=Counter)


class _Server:
    def __init__(self, root: Path):
        self.root = root
        self.behaviour = _Behaviour()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _file(self) -> Path | None:
                path = server.root / self.path.lstrip("/")
                return path if path.is_file() else None

            def do_HEAD(self) -> None:
                path = self._file()
                self.send_response(200 if path else 404)
                self.send_header("Content-Length", str(path.stat().st_size if path else 0))
                self.end_headers()

            def do_GET(self) -> None:
                b = server.behaviour
                b.requests[self.path] += 1
                n = b.requests[self.path]
                path = self._file()
                if path is None:
                    self.send_error(404)
                    return
                if n <= b.fail_first:
                    self.send_error(503, "try later")
                    return
                data = path.read_bytes()
                if b.garbage:
                    data = np.random.default_rng(n).bytes(len(data))
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if n <= b.fail_first + b.truncate_first:
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(data)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/dr10/south"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> _Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def http_server(brick_files) -> Iterator[_Server]:
    root, _ = brick_files
    web_root = root.parent / f"{root.name}_web"
    (web_root / "dr10").mkdir(parents=True, exist_ok=True)
    link = web_root / "dr10" / "south"
    if not link.exists():
        link.symlink_to(root, target_is_directory=True)
    with _Server(web_root) as server:
        yield server


@pytest.fixture
def server(http_server: _Server) -> _Server:
    http_server.behaviour = _Behaviour()
    return http_server


def test_http_fetch_and_cache_hit(server, brick_files, tmp_path):
    _, paths = brick_files
    source = HttpCoaddSource(server.url, tmp_path / "cache", **FAST)
    path = source.open(TEST_BRICK, "image", "g")
    assert path == tmp_path / "cache" / dr10_coadd_path(TEST_BRICK, "image", "g")
    assert path.read_bytes() == paths[("image", "g")].read_bytes()
    assert source.open(TEST_BRICK, "image", "g") == path
    assert sum(server.behaviour.requests.values()) == 1  # second open: cache hit
    assert source.has_brick(TEST_BRICK)
    assert not source.has_brick("0001m002")
    # the whole brick through the source: same cutouts as the local files
    wcs = brick_grid_wcs(TEST_BRICK, NPIX)
    remote = extract_brick_cutouts(TEST_BRICK, _objects(), source.opener(TEST_BRICK), wcs=wcs)
    local_source = LocalCoaddSource(brick_files[0])
    local = extract_brick_cutouts(TEST_BRICK, _objects(), local_source.opener(TEST_BRICK), wcs=wcs)
    np.testing.assert_array_equal(remote.cutouts, local.cutouts)
    np.testing.assert_array_equal(remote.psfsize, local.psfsize)


def test_http_retries_503_then_succeeds(server, tmp_path):
    server.behaviour.fail_first = 2
    sleeps: list[float] = []
    source = HttpCoaddSource(server.url, tmp_path, attempts=4, backoff_s=0.001, sleep=sleeps.append)
    path = source.open(TEST_BRICK, "invvar", "r")
    assert path.is_file()
    url_path = f"/dr10/south/{dr10_coadd_path(TEST_BRICK, 'invvar', 'r')}"
    assert server.behaviour.requests[url_path] == 3
    assert len(sleeps) == 2 and 0.0005 <= sleeps[0] <= 0.001 and sleeps[1] <= 0.002


def test_http_gives_up_after_attempts(server, tmp_path):
    server.behaviour.fail_first = 10
    source = HttpCoaddSource(server.url, tmp_path, attempts=3, backoff_s=0.001)
    with pytest.raises(CoaddFetchError, match=r"after 3 attempt.*503"):
        source.open(TEST_BRICK, "image", "z")
    assert _cached_files(tmp_path) == []


def test_http_404_names_the_url(server, tmp_path):
    source = HttpCoaddSource(server.url, tmp_path, **FAST)
    url = source.uri("0001m002", "image", "g")
    with pytest.raises(CoaddNotFoundError) as err:
        source.open("0001m002", "image", "g")
    assert url in str(err.value)
    assert sum(server.behaviour.requests.values()) == 1  # not retried
    assert _cached_files(tmp_path) == []


def test_http_truncated_response_is_retried(server, tmp_path):
    server.behaviour.truncate_first = 1
    source = HttpCoaddSource(server.url, tmp_path, **FAST)
    path = source.open(TEST_BRICK, "image", "r")
    assert path.stat().st_size == (
        Path(server.root / "dr10" / "south" / dr10_coadd_path(TEST_BRICK, "image", "r"))
        .stat()
        .st_size
    )
    assert _cached_files(tmp_path) == [path]


def test_http_always_truncated_leaves_no_partial_file(server, tmp_path):
    server.behaviour.truncate_first = 10
    source = HttpCoaddSource(server.url, tmp_path, attempts=2, backoff_s=0.001)
    with pytest.raises(CoaddFetchError, match=r"(short read|IncompleteRead)"):
        source.open(TEST_BRICK, "psfsize", "g")
    assert _cached_files(tmp_path) == []


def test_http_corrupt_download_is_not_cached(server, tmp_path):
    server.behaviour.garbage = True
    source = HttpCoaddSource(server.url, tmp_path, **FAST)
    with pytest.raises(CorruptCoaddError, match=re.escape("http://127.0.0.1")):
        source.open(TEST_BRICK, "image", "g")
    assert _cached_files(tmp_path) == []


def test_http_connection_refused_is_retried_then_fails(tmp_path):
    import socket

    with socket.socket() as sock:  # a port with nothing listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sleeps: list[float] = []
    source = HttpCoaddSource(
        f"http://127.0.0.1:{port}", tmp_path, attempts=3, backoff_s=0.001, sleep=sleeps.append
    )
    with pytest.raises(CoaddFetchError, match="after 3 attempt"):
        source.open(TEST_BRICK, "image", "g")
    assert len(sleeps) == 2


# ------------------------------------------------------------------------------------------
# S3 (moto server)
# ------------------------------------------------------------------------------------------
class _CountingClient:
    """Wraps a boto3 client: counts get_object calls and can inject failures."""

    def __init__(self, client: Any, failures: list[Exception] | None = None):
        self._client = client
        self.failures = list(failures or [])
        self.calls: Counter = Counter()

    def get_object(self, **kwargs: Any) -> Any:
        self.calls["get_object"] += 1
        if self.failures:
            raise self.failures.pop(0)
        return self._client.get_object(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def _throttle() -> ClientError:
    return ClientError(
        {
            "Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."},
            "ResponseMetadata": {"HTTPStatusCode": 503},
        },
        "GetObject",
    )


@pytest.fixture
def s3_coadds(s3_server, s3_bucket, brick_files) -> Any:
    """boto3 client with the test brick uploaded to the flat coadd cache layout."""
    _, paths = brick_files
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-2")
    for (product, band), path in paths.items():
        key = f"{DEFAULT_S3_PREFIX}/{TEST_BRICK}/{coadd_filename(TEST_BRICK, product, band)}"
        client.put_object(Bucket=s3_bucket, Key=key, Body=path.read_bytes())
    return client


def test_s3_fetch_and_cache_hit(s3_coadds, s3_bucket, brick_files, tmp_path):
    _, paths = brick_files
    client = _CountingClient(s3_coadds)
    source = S3CoaddSource(client, s3_bucket, cache_dir=tmp_path, **FAST)
    path = source.open(TEST_BRICK, "image", "g")
    assert path == tmp_path / DEFAULT_S3_PREFIX / TEST_BRICK / coadd_filename(
        TEST_BRICK, "image", "g"
    )
    assert path.read_bytes() == paths[("image", "g")].read_bytes()
    assert source.open(TEST_BRICK, "image", "g") == path
    assert client.calls["get_object"] == 1
    assert source.has_brick(TEST_BRICK)
    fresh = S3CoaddSource(client, s3_bucket, cache_dir=tmp_path / "other", **FAST)
    assert fresh.has_brick(TEST_BRICK) and not fresh.has_brick("0001m002")
    wcs = brick_grid_wcs(TEST_BRICK, NPIX)
    remote = extract_brick_cutouts(TEST_BRICK, _objects(), source.opener(TEST_BRICK), wcs=wcs)
    local_source = LocalCoaddSource(brick_files[0])
    local = extract_brick_cutouts(TEST_BRICK, _objects(), local_source.opener(TEST_BRICK), wcs=wcs)
    np.testing.assert_array_equal(remote.cutouts, local.cutouts)
    np.testing.assert_array_equal(remote.invvar, local.invvar)


def test_s3_missing_key_names_the_uri(s3_coadds, s3_bucket, tmp_path):
    client = _CountingClient(s3_coadds)
    source = S3CoaddSource(client, s3_bucket, cache_dir=tmp_path, **FAST)
    uri = f"s3://{s3_bucket}/dr10/coadd_cache/0001m002/legacysurvey-0001m002-image-g.fits.fz"
    with pytest.raises(CoaddNotFoundError) as err:
        source.open("0001m002", "image", "g")
    assert uri in str(err.value)
    assert client.calls["get_object"] == 1
    assert _cached_files(tmp_path) == []


def test_s3_throttling_is_retried(s3_coadds, s3_bucket, tmp_path):
    client = _CountingClient(s3_coadds, failures=[_throttle(), _throttle()])
    sleeps: list[float] = []
    source = S3CoaddSource(
        client, s3_bucket, cache_dir=tmp_path, attempts=3, backoff_s=0.001, sleep=sleeps.append
    )
    assert source.open(TEST_BRICK, "psfsize", "z").is_file()
    assert client.calls["get_object"] == 3 and len(sleeps) == 2


def test_s3_persistent_throttling_gives_up(s3_coadds, s3_bucket, tmp_path):
    client = _CountingClient(s3_coadds, failures=[_throttle()] * 5)
    source = S3CoaddSource(client, s3_bucket, cache_dir=tmp_path, attempts=2, backoff_s=0.001)
    with pytest.raises(CoaddFetchError, match=r"s3://.*after 2 attempt.*SlowDown"):
        source.open(TEST_BRICK, "psfsize", "z")
    assert _cached_files(tmp_path) == []


def test_s3_connection_error_is_retried(s3_coadds, s3_bucket, tmp_path):
    from botocore.exceptions import EndpointConnectionError

    client = _CountingClient(
        s3_coadds, failures=[EndpointConnectionError(endpoint_url="http://127.0.0.1:1")]
    )
    source = S3CoaddSource(client, s3_bucket, cache_dir=tmp_path, **FAST)
    assert source.open(TEST_BRICK, "image", "r").is_file()
    assert client.calls["get_object"] == 2


def test_s3_corrupt_object_is_not_cached(s3_coadds, s3_bucket, tmp_path):
    key = f"{DEFAULT_S3_PREFIX}/{TEST_BRICK}/{coadd_filename(TEST_BRICK, 'image', 'i')}"
    s3_coadds.put_object(Bucket=s3_bucket, Key=key, Body=b"SIMPLE  = garbage" * 300)
    source = S3CoaddSource(s3_coadds, s3_bucket, cache_dir=tmp_path, **FAST)
    with pytest.raises(CorruptCoaddError, match=f"s3://{s3_bucket}/{key}"):
        source.open(TEST_BRICK, "image", "i")
    assert _cached_files(tmp_path) == []


# ------------------------------------------------------------------------------------------
# Dagster resource
# ------------------------------------------------------------------------------------------
def test_resource_builds_each_source(s3_server, s3_coadds, s3_bucket, brick_files, tmp_path):
    root, _ = brick_files
    local = CoaddSourceResource(kind="local", root=str(root)).get_source()
    assert isinstance(local, LocalCoaddSource) and local.has_brick(TEST_BRICK)

    resource = CoaddSourceResource(
        kind="s3",
        bucket=s3_bucket,
        cache_dir=str(tmp_path / "s3cache"),
        s3=S3Resource(endpoint_url=s3_server, region_name="us-east-2"),
        backoff_s=0.001,
    )
    s3 = resource.get_source()
    assert isinstance(s3, S3CoaddSource)
    assert s3.open(TEST_BRICK, "image", "g").is_file()

    web = CoaddSourceResource(kind="http").get_source()
    assert isinstance(web, HttpCoaddSource)
    assert web.uri(TEST_BRICK, "image", "g").startswith(
        "https://portal.nersc.gov/cfs/cosmo/data/legacysurvey/dr10/south/coadd/112/1126p222/"
    )
    with pytest.raises(ValueError, match="root"):
        CoaddSourceResource(kind="local").get_source()
    with pytest.raises(ValueError, match="bucket"):
        CoaddSourceResource(kind="s3").get_source()
