"""Versioned result sets (resources/versioned.py): the writer deletes only the version it
replaced and only files not rewritten since; the orphan sweep is safe; every read of a
versioned file is checked against the sha256 its pointer records."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from stronglens_assets.resources.object_store import (
    IntegrityError,
    LocalObjectStore,
    S3ObjectStore,
)
from stronglens_assets.resources.shards import read_shard, write_shard_set
from stronglens_assets.resources.storage import s3_client_for
from stronglens_assets.resources.versioned import (
    publish,
    read_file,
    read_pointer,
    stage,
    sweep_orphans,
)
from stronglens_assets_tests.resources.test_concurrent_shard_writers import (
    PARTITION,
    PREFIX,
    _content,
    _read_everything,
    race_two_writers,
)


def test_orphans_of_two_writers_are_swept_only_when_old(tmp_path: Path) -> None:
    """After two writer processes raced (A paused before its pointer switch, so B's version
    lost), B's version is an orphan: the sweep leaves it while young, removes it when old
    enough, and the published set still reads."""
    root = race_two_writers(tmp_path, "before_pointer")
    store = LocalObjectStore(root)
    root_key = f"{PREFIX}/{PARTITION}"
    assert sweep_orphans(store, root_key) == []  # too young to sweep
    swept = sweep_orphans(store, root_key, min_age_s=0.0)
    assert len(swept) == 3 and all("/shard-" in k or k.endswith("index.parquet") for k in swept)
    assert _read_everything(LocalObjectStore(root)) == "a"
    assert len({key.split("/")[3] for key in store.list_keys(root_key)}) == 1


def test_rewrite_of_the_replaced_version_is_kept(tmp_path: Path) -> None:
    """A writer publishing new content deletes the version it replaced, but not files of
    that version that a concurrent writer re-created after the replaced pointer was written."""
    store = LocalObjectStore(tmp_path)
    first = stage("d06/grid", {"cell0.npz": b"one", "summary.json": b"{}"})
    publish(store, first, {"variant": "x"})
    time.sleep(0.01)
    second = stage("d06/grid", {"cell0.npz": b"two", "summary.json": b"{}"})
    # another writer re-creates one file of the first version while the second is published
    store.write_bytes(first.files["cell0.npz"].key, b"one")
    pointer = publish(store, second, {"variant": "x"})
    assert pointer.version == second.version
    assert store.exists(first.files["cell0.npz"].key)  # re-created after: kept
    assert not store.exists(first.files["summary.json"].key)  # replaced and old: deleted
    assert read_file(store, read_pointer(store, "d06/grid"), "cell0.npz") == b"two"


def test_same_content_rewrites_same_keys_and_keeps_them(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    files = {"a.npz": b"alpha", "b.json": b"[1]"}
    first = publish(store, stage("results/x", files), {"n": 2})
    second = publish(store, stage("results/x", files), {"n": 2})
    assert first.version == second.version
    assert store.list_keys("results/x") == sorted(r.key for r in first.files.values())
    assert read_file(store, second, "a.npz") == b"alpha"
    assert read_pointer(store, "results/x").fields == {"n": 2}


def test_sweep_keeps_everything_without_a_pointer(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    store.write_bytes("results/x/0123456789abcdef/a.npz", b"x")
    assert sweep_orphans(store, "results/x", min_age_s=0.0) == []
    assert store.exists("results/x/0123456789abcdef/a.npz")


def test_pointer_fields_cannot_override_the_file_list(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="reserved"):
        publish(LocalObjectStore(tmp_path), stage("r", {"a": b"1"}), {"files": []})


def test_tampered_and_truncated_files_are_refused_naming_them(tmp_path: Path) -> None:
    """A set's files are read back only if they match the sha256 the pointer recorded; the
    store checks every read of a versioned file, whoever reads it."""
    store = LocalObjectStore(tmp_path)
    shards, index = _content("a")
    shard_set = write_shard_set(store, PREFIX, PARTITION, shards, index)
    key = shard_set.shards[1].key
    path = tmp_path / key
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])
    for read in (
        lambda: read_shard(store, shard_set.shards[1]),
        lambda: LocalObjectStore(tmp_path).read_bytes(key),
    ):
        with pytest.raises(IntegrityError, match=rf"{key}.*does not match"):
            read()
    path.write_bytes(good)
    assert float(read_shard(store, shard_set.shards[1])["cutout"][0, 0, 0, 0]) == 2.0


def test_s3_publish_and_sweep(s3_server: str, s3_bucket: str) -> None:
    """The same writer and sweep on a real S3 server (moto), where times come from the
    server's LastModified."""
    from dagster_aws.s3 import S3Resource

    client = s3_client_for(S3Resource(endpoint_url=s3_server, region_name="us-east-2"))
    store = S3ObjectStore(client, s3_bucket, "prefix")
    old = publish(store, stage("sets/p", {"a": b"old"}), {})
    time.sleep(1.1)  # LastModified has a resolution of one second
    new = publish(store, stage("sets/p", {"a": b"new"}), {})
    assert store.list_keys("sets/p") == [new.files["a"].key]
    assert not store.exists(old.files["a"].key)
    orphan = stage("sets/p", {"a": b"orphan"})
    store.write_bytes(orphan.files["a"].key, b"orphan")
    assert sweep_orphans(store, "sets/p", min_age_s=3600) == []
    assert sweep_orphans(store, "sets/p", min_age_s=-60) == [orphan.files["a"].key]
    assert read_file(store, read_pointer(store, "sets/p"), "a") == b"new"
