"""Shard sets: bulk arrays an asset writes itself, replaced atomically per partition.

Layout under the storage root, for a shard set ``<prefix>`` and partition ``<part>``::

    <prefix>/<part>/<version>/shard-00000.npz   arrays (deterministic npz, no pickle)
    <prefix>/<part>/<version>/index.parquet     one row per input object (kept or rejected)
    <prefix>/<part>.json                         the pointer: version, shard keys, checksums

``<version>`` is a content hash of the shards and the index, so re-running with the same
inputs writes the same bytes under the same keys. The pointer is written last (one atomic
write locally, one PUT on S3), then files of older versions are deleted: a reader that
follows the pointer never sees a half-written set, and a failed run leaves the previous
set in place.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from stronglens_assets.partitions import validate_partition_key
from stronglens_assets.resources.object_store import ObjectStore
from stronglens_assets.resources.serialization import encode
from stronglens_assets.science.core.hashing import sha256_bytes
from stronglens_assets.science.core.npz import decode_npz, encode_npz

POINTER_FORMAT = 1


@dataclass(frozen=True)
class ShardRecord:
    """One shard of a set: storage key, rows, sha256 and size in bytes."""

    key: str
    rows: int
    sha256: str
    bytes: int


@dataclass(frozen=True)
class ShardSet:
    """The pointer of a partition's shard set."""

    prefix: str
    partition: str
    version: str
    shards: tuple[ShardRecord, ...]
    index_key: str
    index_sha256: str

    @property
    def rows(self) -> int:
        return sum(shard.rows for shard in self.shards)

    @property
    def bytes(self) -> int:
        return sum(shard.bytes for shard in self.shards)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["format"] = POINTER_FORMAT
        data["shards"] = [asdict(s) for s in self.shards]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ShardSet:
        return cls(
            prefix=data["prefix"],
            partition=data["partition"],
            version=data["version"],
            shards=tuple(ShardRecord(**s) for s in data["shards"]),
            index_key=data["index_key"],
            index_sha256=data["index_sha256"],
        )


def pointer_key(prefix: str, partition: str) -> str:
    return f"{prefix}/{validate_partition_key(partition)}.json"


def write_shard_set(
    store: ObjectStore,
    prefix: str,
    partition: str,
    shards: Sequence[Mapping[str, np.ndarray]],
    index: pd.DataFrame,
) -> ShardSet:
    """Write ``shards`` and ``index`` as the partition's new shard set; return its pointer."""
    validate_partition_key(partition)
    shard_bytes = [encode_npz(arrays) for arrays in shards]
    index_bytes, _ = encode(index.reset_index(drop=True))
    digest = hashlib.sha256()
    for data in (*shard_bytes, index_bytes):
        digest.update(hashlib.sha256(data).digest())
    version = digest.hexdigest()[:16]
    base = f"{prefix}/{partition}/{version}"
    records = []
    for number, (arrays, data) in enumerate(zip(shards, shard_bytes, strict=True)):
        key = f"{base}/shard-{number:05d}.npz"
        store.write_bytes(key, data)
        rows = len(next(iter(arrays.values()))) if arrays else 0
        records.append(ShardRecord(key, rows, sha256_bytes(data), len(data)))
    index_key = f"{base}/index.parquet"
    store.write_bytes(index_key, index_bytes)
    shard_set = ShardSet(
        prefix=prefix,
        partition=partition,
        version=version,
        shards=tuple(records),
        index_key=index_key,
        index_sha256=sha256_bytes(index_bytes),
    )
    publish_version(store, pointer_key(prefix, partition), shard_set.to_json(), base)
    return shard_set


def publish_version(store: ObjectStore, pointer: str, record: Mapping[str, Any], base: str) -> None:
    """Make the version under ``base`` (``<folder>/<version>``) current: write the pointer
    ``record`` (JSON, one write), then delete every other version's files under ``<folder>``."""
    store.write_bytes(pointer, json.dumps(record, sort_keys=True, indent=2).encode())
    folder = base.rsplit("/", 1)[0]
    for key in store.list_keys(folder):
        if not key.startswith(base + "/"):
            store.delete(key)


def read_shard_set(store: ObjectStore, prefix: str, partition: str) -> ShardSet:
    """The current pointer of a partition (:class:`ObjectNotFoundError` if never written)."""
    return ShardSet.from_json(json.loads(store.read_bytes(pointer_key(prefix, partition))))


def read_shard(store: ObjectStore, record: ShardRecord) -> dict[str, np.ndarray]:
    """Arrays of one shard, after checking its sha256 against the pointer."""
    data = store.read_bytes(record.key)
    if sha256_bytes(data) != record.sha256:
        raise ValueError(f"shard {store.uri(record.key)} does not match its recorded sha256")
    return decode_npz(data)


def read_index(store: ObjectStore, shard_set: ShardSet) -> pd.DataFrame:
    """The index table of a shard set."""
    return pd.read_parquet(io.BytesIO(store.read_bytes(shard_set.index_key)))


def split_rows(n_rows: int, shard_size: int) -> list[slice]:
    """Row slices of at most ``shard_size`` rows covering ``range(n_rows)`` (none if empty)."""
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    return [slice(start, min(start + shard_size, n_rows)) for start in range(0, n_rows, shard_size)]


def read_npz_key(store: ObjectStore, key: str) -> dict[str, np.ndarray]:
    """Arrays of the ``.npz`` at storage ``key`` (relative to the store's root), no pickle.

    The manifests' ``cutout_key`` column is such a key: the same manifest resolves through a
    local store, a moved copy of it or S3. A cutout shard holds ``cutout`` (n, 3, 101, 101)
    float32 nanomaggies, ``invvar`` (n, 3, 101, 101) 1/nanomaggy^2, ``psfsize`` (n, 3) arcsec
    FWHM and ``objid``; row ``cutout_row`` of the manifest is row ``cutout_row`` here.
    """
    return decode_npz(store.read_bytes(key))
