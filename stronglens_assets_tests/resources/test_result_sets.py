"""Result sets: all files appear at once; a crash leaves the previous set readable."""

from __future__ import annotations

import pytest

from stronglens_assets.resources.object_store import LocalObjectStore
from stronglens_assets.resources.result_sets import (
    ResultSetSource,
    read_result_set,
    verify_result_set,
    write_result_set,
)


class CrashingStore(LocalObjectStore):
    """Fails on the n-th write (a crash mid-set)."""

    def __init__(self, root, fail_at: int):
        super().__init__(root)
        self.writes = 0
        self.fail_at = fail_at

    def write_bytes(self, key: str, data: bytes) -> str:
        self.writes += 1
        if self.writes == self.fail_at:
            raise OSError("simulated crash")
        return super().write_bytes(key, data)


def test_new_set_replaces_the_old_one_and_reads_through_the_pointer(tmp_path) -> None:
    store = LocalObjectStore(tmp_path)
    first = write_result_set(store, "results/D06", "grid_x", {"a.csv": b"1", "b.json": b"{}"})
    second = write_result_set(store, "results/D06", "grid_x", {"a.csv": b"2", "b.json": b"{}"})
    assert first.version != second.version
    assert read_result_set(store, "results/D06", "grid_x").version == second.version
    assert not any(
        k.startswith(f"results/D06/grid_x/{first.version}") for k in store.list_keys("results")
    )
    source = ResultSetSource(store, "results/D06")
    assert source.read_bytes("grid_x/a.csv") == b"2"
    assert source.list_keys() == ["grid_x/a.csv", "grid_x/b.json"]
    with pytest.raises(FileNotFoundError):
        source.read_bytes("grid_x/c.csv")
    assert verify_result_set(store, second) == []
    (tmp_path / second.key("a.csv")).write_bytes(b"22")
    assert "pointer says 1" in verify_result_set(store, second)[0]


def test_a_crash_mid_write_leaves_the_previous_set_readable(tmp_path) -> None:
    good = LocalObjectStore(tmp_path)
    write_result_set(good, "r", "set", {"a": b"old-a", "b": b"old-b"})
    crashing = CrashingStore(tmp_path, fail_at=2)  # after the first new file, before the pointer
    with pytest.raises(OSError, match="simulated"):
        write_result_set(crashing, "r", "set", {"a": b"new-a", "b": b"new-b"})
    source = ResultSetSource(good, "r")
    assert source.read_bytes("set/a") == b"old-a" and source.read_bytes("set/b") == b"old-b"
    # the next successful write removes the orphan version
    done = write_result_set(good, "r", "set", {"a": b"new-a", "b": b"new-b"})
    versions = {k.split("/")[2] for k in good.list_keys("r/set")}
    assert versions == {done.version}


def test_invalid_file_names_and_empty_sets_are_rejected(tmp_path) -> None:
    store = LocalObjectStore(tmp_path)
    with pytest.raises(ValueError, match="no files"):
        write_result_set(store, "r", "s", {})
    with pytest.raises(ValueError, match="invalid file name"):
        write_result_set(store, "r", "s", {"a/b": b""})
