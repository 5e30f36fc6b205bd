"""Storage contract: every supported type round-trips, locally and on a real S3 server."""

import hashlib
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import torch
from dagster_aws.s3 import S3Resource

from stronglens_assets.partitions import PartitionKeyError
from stronglens_assets.resources import (
    ArtifactIOManager,
    LocalStorageResource,
    S3StorageResource,
    StorageResource,
)
from stronglens_assets.resources.object_store import (
    LocalObjectStore,
    ObjectNotFoundError,
    validate_key,
)
from stronglens_assets.resources.serialization import SerializationError, decode, encode


def _values() -> dict[str, object]:
    rng = np.random.default_rng(7)
    generator = torch.Generator().manual_seed(7)
    return {
        "table": pd.DataFrame(
            {
                "name": ["DESI-001", "DESI-002", "DESI-003"],
                "ra": [1.5, 2.5, 359.9],
                "tier": pd.Categorical(["A", "B", "B"]),
                "zlens": pd.array([0.4, None, 0.7], dtype="Float64"),
                "objid": np.array([1, 2, 3], dtype=np.int64),
            }
        ),
        "summary": {"auc": 0.9592, "counts": {"A": 435, "B": 4669}, "names": ["x", "y"]},
        "array": rng.normal(size=(3, 101, 101)).astype(np.float32),
        "arrays": {
            "cutout": rng.normal(size=(2, 3, 8, 8)).astype(np.float32),
            "objid": np.arange(2, dtype=np.int64),
        },
        "state_dict": {
            "conv.weight": torch.randn(4, 3, 3, 3, generator=generator),
            "fc.bias": torch.zeros(2),
        },
    }


def _assert_same(kind: str, expected: object, actual: object) -> None:
    if kind == "table":
        pd.testing.assert_frame_equal(actual, expected)
    elif kind == "summary":
        assert actual == expected
    elif kind == "array":
        assert actual.dtype == expected.dtype
        np.testing.assert_array_equal(actual, expected)
    elif kind == "arrays":
        assert set(actual) == set(expected)
        for name in expected:
            np.testing.assert_array_equal(actual[name], expected[name])
    elif kind == "state_dict":
        assert set(actual) == set(expected)
        for name in expected:
            assert torch.equal(actual[name], expected[name])


@pytest.fixture
def local_storage(tmp_path: Path) -> LocalStorageResource:
    return LocalStorageResource(root=str(tmp_path / "storage"))


@pytest.fixture
def s3_storage(s3_server: str, s3_bucket: str) -> S3StorageResource:
    return S3StorageResource(
        s3=S3Resource(endpoint_url=s3_server, region_name="us-east-2"),
        bucket=s3_bucket,
        prefix="stronglens_calibration",
    )


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest) -> StorageResource:
    return request.getfixturevalue(f"{request.param}_storage")


@pytest.mark.parametrize("kind", list(_values()))
def test_encode_is_deterministic(kind: str) -> None:
    first, ext1 = encode(_values()[kind])
    second, ext2 = encode(_values()[kind])
    assert ext1 == ext2
    assert hashlib.sha256(first).digest() == hashlib.sha256(second).digest()


@pytest.mark.parametrize("kind", list(_values()))
def test_value_round_trip(storage: StorageResource, kind: str) -> None:
    value = _values()[kind]
    uri, digest = storage.write_value(f"roundtrip/{kind}", value)
    extension = {"table": "parquet", "summary": "json", "state_dict": "pt"}.get(kind, "npz")
    assert uri.endswith(f"roundtrip/{kind}.{extension}")
    data = storage.read_bytes(f"roundtrip/{kind}.{extension}")
    assert hashlib.sha256(data).hexdigest() == digest
    _assert_same(kind, value, storage.read_value(f"roundtrip/{kind}.{extension}"))


def test_s3_layout_and_listing(
    s3_storage: S3StorageResource, s3_server: str, s3_bucket: str
) -> None:
    s3_storage.write_bytes("cutouts/positives/hpx-nest16-1105/shard-000.npz", b"abc")
    s3_storage.write_bytes("cutouts/positives/hpx-nest16-1105/index.parquet", b"def")
    import boto3

    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-2")
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket)["Contents"]]
    assert "stronglens_calibration/cutouts/positives/hpx-nest16-1105/shard-000.npz" in keys
    assert s3_storage.list_keys("cutouts/positives") == [
        "cutouts/positives/hpx-nest16-1105/index.parquet",
        "cutouts/positives/hpx-nest16-1105/shard-000.npz",
    ]
    assert s3_storage.uri("a/b.json") == f"s3://{s3_bucket}/stronglens_calibration/a/b.json"


def test_missing_object_names_the_uri(storage: StorageResource) -> None:
    with pytest.raises(ObjectNotFoundError, match=r"nothing/here\.json"):
        storage.read_bytes("nothing/here.json")


@pytest.mark.parametrize("key", ["/abs/path", "a/../b", "a//b", "a b", "", "a/b\\c"])
def test_unsafe_keys_rejected(key: str) -> None:
    with pytest.raises(ValueError, match="invalid storage key"):
        validate_key(key)


def test_local_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalObjectStore(tmp_path)
    store.write_bytes("table.parquet", b"good")

    def broken_fsync(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("os.fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        store.write_bytes("table.parquet", b"partial")
    assert store.read_bytes("table.parquet") == b"good"
    assert [p.name for p in tmp_path.iterdir()] == ["table.parquet"]


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_local_files_get_the_users_umask_modes(tmp_path: Path, umask: int) -> None:
    """Issue 22 item 7: outputs were 0600 (mkstemp); a written object gets 0666 & ~umask,
    like any file the user writes, so a group or a web server can read the demo's results."""
    import os

    previous = os.umask(umask)
    try:
        LocalObjectStore(tmp_path).write_bytes("a/table.parquet", b"x")
    finally:
        os.umask(previous)
    assert (tmp_path / "a" / "table.parquet").stat().st_mode & 0o777 == 0o666 & ~umask


def test_unsupported_values_raise_clear_errors() -> None:
    with pytest.raises(SerializationError, match="cannot store a set"):
        encode({1, 2})
    with pytest.raises(SerializationError, match="NaN"):
        encode({"ece": float("nan")})
    with pytest.raises(SerializationError, match="dtype object"):
        encode({"a": np.array([{"x": 1}], dtype=object)})
    with pytest.raises(SerializationError, match="unknown extension"):
        decode(b"", "pickle")


def test_npz_never_unpickles() -> None:
    import io

    buffer = io.BytesIO()
    np.savez(buffer, evil=np.array([{"x": 1}], dtype=object))
    with pytest.raises(ValueError, match="pickle"):
        decode(buffer.getvalue(), "npz")


# ----------------------------------------------------------------- IO manager in Dagster runs

sky = dg.StaticPartitionsDefinition(["hpx-nest16-1105", "hpx-nest16-1126"])


@dg.asset(partitions_def=sky)
def cell_table(context: dg.AssetExecutionContext) -> pd.DataFrame:
    return pd.DataFrame({"cell": [context.partition_key] * 2, "x": [1.0, 2.0]})


@dg.asset
def summary(cell_table: dict[str, pd.DataFrame]) -> dict:
    return {key: len(frame) for key, frame in sorted(cell_table.items())}


@dg.asset
def weights(summary: dict) -> dict:
    return {"w": torch.full((2,), float(sum(summary.values())))}


@dg.asset
def grid(weights: dict) -> np.ndarray:
    return weights["w"].numpy() * 2


def _materialize_graph(storage: StorageResource) -> None:
    resources = {"io_manager": ArtifactIOManager(storage=storage), "storage": storage}
    for key in sky.get_partition_keys():
        result = dg.materialize([cell_table], partition_key=key, resources=resources)
        assert result.success
    result = dg.materialize(
        [cell_table, summary, weights, grid],
        selection=["summary", "weights", "grid"],
        resources=resources,
    )
    assert result.success


def test_io_manager_round_trip_local(local_storage: LocalStorageResource) -> None:
    _materialize_graph(local_storage)
    root = Path(local_storage.root)
    assert (root / "cell_table" / "hpx-nest16-1105.parquet").is_file()
    assert local_storage.read_value("summary.json") == {"hpx-nest16-1105": 2, "hpx-nest16-1126": 2}
    assert torch.equal(local_storage.read_value("weights.pt")["w"], torch.full((2,), 4.0))
    np.testing.assert_array_equal(local_storage.read_value("grid.npz"), np.full(2, 8.0, np.float32))


def test_io_manager_round_trip_s3(s3_storage: S3StorageResource) -> None:
    _materialize_graph(s3_storage)
    assert s3_storage.exists("cell_table/hpx-nest16-1126.parquet")
    assert s3_storage.read_value("summary.json") == {"hpx-nest16-1105": 2, "hpx-nest16-1126": 2}
    np.testing.assert_array_equal(s3_storage.read_value("grid.npz"), np.full(2, 8.0, np.float32))


def test_io_manager_records_metadata_and_same_bytes(local_storage: LocalStorageResource) -> None:
    resources = {"io_manager": ArtifactIOManager(storage=local_storage)}
    first = dg.materialize([cell_table], partition_key="hpx-nest16-1105", resources=resources)
    second = dg.materialize([cell_table], partition_key="hpx-nest16-1105", resources=resources)
    digests = []
    for result in (first, second):
        (event,) = result.get_asset_materialization_events()
        metadata = event.materialization.metadata
        assert metadata["rows"].value == 2
        assert metadata["format"].value == "parquet"
        digests.append(metadata["sha256"].value)
    assert digests[0] == digests[1]


def test_io_manager_missing_upstream_names_asset(local_storage: LocalStorageResource) -> None:
    resources = {"io_manager": ArtifactIOManager(storage=local_storage)}
    with pytest.raises(
        ObjectNotFoundError, match="partition 'hpx-nest16-1105' of asset 'cell_table'"
    ):
        dg.materialize([cell_table, summary], selection=["summary"], resources=resources)


def test_failed_asset_keeps_previous_output(local_storage: LocalStorageResource) -> None:
    resources = {"io_manager": ArtifactIOManager(storage=local_storage)}
    attempts = {"n": 0}

    @dg.asset(name="fragile")
    def fragile() -> pd.DataFrame:
        attempts["n"] += 1
        if attempts["n"] > 1:
            raise ValueError("bad input")
        return pd.DataFrame({"x": [1]})

    assert dg.materialize([fragile], resources=resources).success
    before = local_storage.read_bytes("fragile.parquet")
    result = dg.materialize([fragile], resources=resources, raise_on_error=False)
    assert not result.success
    assert local_storage.read_bytes("fragile.parquet") == before


def test_io_manager_rejects_malformed_partition_key(local_storage: LocalStorageResource) -> None:
    bad = dg.StaticPartitionsDefinition(["ok", "bad/key"])

    @dg.asset(partitions_def=bad)
    def keyed() -> dict:
        return {"a": 1}

    resources = {"io_manager": ArtifactIOManager(storage=local_storage)}
    with pytest.raises(PartitionKeyError, match="'bad/key' is malformed"):
        dg.materialize([keyed], partition_key="bad/key", resources=resources)
