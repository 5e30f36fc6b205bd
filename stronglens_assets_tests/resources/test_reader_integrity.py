"""Readers verify what they read (issue 23 item 6): a shard that no longer matches the sha256
its pointer records, a truncated shard and a NaN cutout fail naming the shard or the object,
through every reader of cutouts (training/scoring, D06 hosts, the paper's gallery)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stronglens_assets.resources.object_store import IntegrityError, LocalObjectStore
from stronglens_assets.resources.shards import read_npz_key, write_shard_set
from stronglens_assets.science.core.npz import NpzDecodeError, decode_npz, encode_npz
from stronglens_assets.science.experiments.hosts import read_host_arrays
from stronglens_assets.science.learning.datasets import ManifestError, load_cutouts
from stronglens_assets.testing.cutouts import synthetic_cutouts

PREFIX, PARTITION = "cutouts/negatives", "hpx-nest16-1126"


def _write(store: LocalObjectStore, cutouts: np.ndarray) -> pd.DataFrame:
    """One shard set of two shards; the manifest rows that point into it."""
    n = len(cutouts)
    ids = np.array([f"obj{i:03d}" for i in range(n)])
    halves = [slice(0, n // 2), slice(n // 2, n)]
    shards = [
        {
            "cutout": cutouts[rows],
            "invvar": np.ones_like(cutouts[rows]),
            "psfsize": np.full((rows.stop - rows.start, 3), 1.3, np.float32),
            "objid": ids[rows],
        }
        for rows in halves
    ]
    shard_set = write_shard_set(store, PREFIX, PARTITION, shards, pd.DataFrame({"object_id": ids}))
    keys = np.repeat([r.key for r in shard_set.shards], [n // 2, n - n // 2])
    rows = np.concatenate([np.arange(n // 2), np.arange(n - n // 2)])
    return pd.DataFrame({"object_id": ids, "cutout_key": keys, "cutout_row": rows})


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "storage")


@pytest.fixture
def cutouts() -> np.ndarray:
    return synthetic_cutouts(np.tile([1, 0], 4), seed=3)


def _readers(store: LocalObjectStore, manifest: pd.DataFrame) -> dict:
    """Every reader of cutout shards, as the assets call it."""
    return {
        "scoring/training (load_cutouts)": lambda: load_cutouts(store.read_bytes, manifest),
        "D06 hosts (read_host_arrays)": lambda: read_host_arrays(store.read_bytes, manifest),
        "paper gallery (read_npz_key)": lambda: read_npz_key(store, manifest["cutout_key"][5]),
    }


def test_nan_written_into_a_shard_is_refused_by_every_reader(
    store: LocalObjectStore, cutouts: np.ndarray
) -> None:
    """The probe of the issue: one pixel of a validation cutout set to NaN in a valid .npz.
    On main the scoring read returned the NaN cutout (preprocessing maps NaN to 0 and the
    score changed silently)."""
    manifest = _write(store, cutouts)
    key = manifest["cutout_key"][5]
    arrays = decode_npz(store.read_bytes(key))
    arrays["cutout"][1, 1, 50, 50] = np.nan
    (store.root / key).write_bytes(encode_npz(arrays))
    for reader, read in _readers(store, manifest).items():
        with pytest.raises((IntegrityError, ManifestError)) as info:
            read()
        message = str(info.value)
        assert key in message and "does not match the sha256" in message, (reader, message)


def test_truncated_shard_error_names_the_shard(
    store: LocalObjectStore, cutouts: np.ndarray
) -> None:
    """On main: ``BadZipFile: File is not a zip file`` (D06 hosts, the gallery), naming no
    shard."""
    manifest = _write(store, cutouts)
    key = manifest["cutout_key"][5]
    path = store.root / key
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    for reader, read in _readers(store, manifest).items():
        with pytest.raises((IntegrityError, ManifestError)) as info:
            read()
        assert key in str(info.value), reader
        assert not isinstance(info.value, zipfile.BadZipFile)


def test_nan_cutout_recorded_by_its_producer_is_refused_naming_the_object(
    store: LocalObjectStore, cutouts: np.ndarray
) -> None:
    """A shard that matches its record but holds a NaN cutout: scoring and training refuse
    it naming the object (on main: read silently)."""
    cutouts = cutouts.copy()
    cutouts[6, 2, 10, 10] = np.nan
    manifest = _write(store, cutouts)
    with pytest.raises(ManifestError, match=r"object 'obj006'.*NaN or infinite"):
        load_cutouts(store.read_bytes, manifest)
    clean = manifest.drop(index=6)
    np.testing.assert_array_equal(
        load_cutouts(store.read_bytes, clean), cutouts[clean.index.to_numpy()]
    )


def test_npz_decode_errors_name_their_source() -> None:
    data = encode_npz({"cutout": np.zeros((2, 3, 4, 4), np.float32)})
    for broken in (data[: len(data) // 2], data[:-30], b"not an archive"):
        with pytest.raises(NpzDecodeError, match=r"shard s3://b/x\.npz is not a readable \.npz"):
            decode_npz(broken, source="shard s3://b/x.npz")
    bare = io.BytesIO()
    np.save(bare, np.zeros(3))
    with pytest.raises(ValueError, match="single array"):
        decode_npz(bare.getvalue())


def test_a_manifest_older_than_its_shards_is_refused(
    store: LocalObjectStore, cutouts: np.ndarray
) -> None:
    """A key of a replaced version that still exists (an orphan kept for the sweep) is not
    served as if current."""
    manifest = _write(store, cutouts)
    old_key = manifest["cutout_key"][0]
    old_bytes = store.read_bytes(old_key)
    _write(store, cutouts[::-1].copy())  # new content: new version, old one deleted
    (store.root / old_key).parent.mkdir(parents=True, exist_ok=True)
    (store.root / old_key).write_bytes(old_bytes)  # as if left behind by a losing writer
    with pytest.raises(IntegrityError, match="names version"):
        LocalObjectStore(store.root).read_bytes(old_key)
