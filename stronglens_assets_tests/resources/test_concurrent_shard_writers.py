"""Two writers of one shard-set partition, in two real processes, never lose the published
set (issue 23 item 3). Uses only the shard API, so it runs unchanged against older code."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stronglens_assets.resources.object_store import LocalObjectStore
from stronglens_assets.resources.shards import (
    read_index,
    read_shard,
    read_shard_set,
    write_shard_set,
)

PREFIX, PARTITION = "cutouts/negatives", "hpx-nest16-1126"
POINTER = f"{PREFIX}/{PARTITION}.json"
WAIT_S = 120.0


def _content(writer: str) -> tuple[list[dict[str, np.ndarray]], pd.DataFrame]:
    """Two shards and an index whose values say which writer made them."""
    value = {"a": 1.0, "b": 2.0, "old": 0.5}[writer]
    shards = [
        {"cutout": np.full((2, 3, 4, 4), value + k, np.float32), "objid": np.arange(2) + 2 * k}
        for k in range(2)
    ]
    return shards, pd.DataFrame({"object_id": [f"{writer}{i}" for i in range(4)]})


def _wait_for(flag: Path) -> None:
    deadline = time.monotonic() + WAIT_S
    while not flag.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{flag} never appeared")
        time.sleep(0.02)


class _PausingStore(LocalObjectStore):
    """The real local store; pauses around the pointer write until the test says go."""

    def __init__(self, root: Path, flags: Path, where: str):
        super().__init__(root)
        self.flags, self.where = flags, where

    def _pause(self) -> None:
        (self.flags / "paused").touch()
        _wait_for(self.flags / "go")

    def write_bytes(self, key: str, data: bytes) -> str:
        if key == POINTER and self.where == "before_pointer":
            self._pause()
        uri = super().write_bytes(key, data)
        if key == POINTER and self.where == "after_pointer":
            self._pause()
        return uri


def _writer(root: str, writer: str, flags: str | None, where: str) -> None:
    """Body of a writer process: one write_shard_set, optionally paused at ``where``."""
    store = _PausingStore(Path(root), Path(flags), where) if flags else LocalObjectStore(Path(root))
    shards, index = _content(writer)
    write_shard_set(store, PREFIX, PARTITION, shards, index)


def _run(target_args: tuple, name: str) -> multiprocessing.Process:
    process = multiprocessing.get_context("spawn").Process(
        target=_writer, args=target_args, name=name
    )
    process.start()
    return process


def _read_everything(store: LocalObjectStore) -> str:
    """Read the partition through its pointer; return which writer's data it holds."""
    shard_set = read_shard_set(store, PREFIX, PARTITION)
    values = {float(read_shard(store, r)["cutout"][0, 0, 0, 0]) for r in shard_set.shards}
    index = read_index(store, shard_set)
    writer = str(index["object_id"].iloc[0])[:-1]
    first = {"a": 1.0, "b": 2.0, "old": 0.5}[writer]
    assert values == {first, first + 1.0}  # both shards of the same writer as the index
    return writer


def race_two_writers(tmp_path: Path, where: str) -> Path:
    """Publish an "old" set; then writer A (a process) writes its version and pauses just
    before (or just after) its pointer switch while writer B (another process) writes a whole
    set; then A goes on. Returns the storage root."""
    root, flags = tmp_path / "storage", tmp_path / "flags"
    flags.mkdir()
    shards, index = _content("old")
    write_shard_set(LocalObjectStore(root), PREFIX, PARTITION, shards, index)
    writer_a = _run((str(root), "a", str(flags), where), "writer-a")
    try:
        _wait_for(flags / "paused")
        writer_b = _run((str(root), "b", None, where), "writer-b")
        writer_b.join(WAIT_S)
        assert writer_b.exitcode == 0
    finally:
        (flags / "go").touch()
        writer_a.join(WAIT_S)
    assert writer_a.exitcode == 0
    return root


@pytest.mark.parametrize("where", ["before_pointer", "after_pointer"])
def test_two_writer_processes_never_lose_the_published_set(tmp_path: Path, where: str) -> None:
    """On main, one writer's cleanup deleted the other's files and the pointer named a version
    whose shards were gone (ObjectNotFoundError ... shard-00000.npz)."""
    root = race_two_writers(tmp_path, where)
    winner = _read_everything(LocalObjectStore(root))
    assert winner == ("a" if where == "before_pointer" else "b")
    # one version besides the winner's is left for the orphan sweep (3 files: 2 shards and
    # the index): the loser's when it published first and was replaced, else the old one
    store = LocalObjectStore(root)
    versions = {key.split("/")[3] for key in store.list_keys(f"{PREFIX}/{PARTITION}")}
    assert len(versions) == 2
