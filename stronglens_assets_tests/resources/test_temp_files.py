"""Crash leftovers and write errors (issue 23 item 7): temporary files of writers that are
gone are removed at start, a live writer's are kept; a failed write names its path.

Writers are real processes: a crashed one is a child killed with SIGKILL; a full disk is the
kernel refusing a write (``RLIMIT_FSIZE`` in a child process: EFBIG, as ENOSPC would)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import numpy as np
import pytest

from stronglens_assets.resources import LocalStorageResource
from stronglens_assets.resources.object_store import LocalObjectStore
from stronglens_assets.science.core.tempfiles import temp_path_for, this_host
from stronglens_assets.science.imaging.preprocess import CropRobust
from stronglens_assets.science.learning.datasets import build_image_cache
from stronglens_assets.testing.cutouts import synthetic_manifest


def _dead_pid() -> int:
    """The pid of a child process that was killed with SIGKILL (a crashed writer)."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    child.send_signal(signal.SIGKILL)
    child.wait()
    return child.pid


@pytest.fixture
def live_writer() -> int:
    """The pid of a running child process (a writer still at work)."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield child.pid
    child.kill()
    child.wait()


def test_image_cache_start_removes_a_crashed_writers_temp_files(
    tmp_path: Path, live_writer: int
) -> None:
    """On main, ``cache/training_images/.images-<digest>.npy.<pid>.tmp`` of a SIGKILLed
    training run stayed forever (28 MB in the demo, GBs at full size)."""
    store = LocalObjectStore(tmp_path / "storage")
    manifest = synthetic_manifest(store, n=8, shard_size=4)
    cache = tmp_path / "cache" / "training_images"
    cache.mkdir(parents=True)
    dead = _dead_pid()
    crashed = [
        cache / f".images-0123456789abcdef0123.npy.{dead}.tmp",  # name used until now
        cache / f".images-0123456789abcdef0123.npy.{dead}@{this_host()}.c0ffee00.tmp",
    ]
    live = [
        cache / f".images-fedcba9876543210fedc.npy.{live_writer}.tmp",
        cache / f".images-fedcba9876543210fedc.npy.{live_writer}@{this_host()}.beef0001.tmp",
        temp_path_for(cache / "images-fedcba9876543210fedc.npy"),  # this process's
    ]
    for path in crashed + live:
        path.write_bytes(b"\0" * 4096)
    images = build_image_cache(store.read_bytes, manifest, cache, CropRobust(crop=32))
    assert images.shape == (8, 3, 32, 32)
    assert [p for p in crashed if p.exists()] == []
    assert all(p.exists() for p in live)
    names = sorted(p.name for p in cache.iterdir() if not p.name.startswith("."))
    assert len(names) == 1 and names[0].startswith("images-")


def test_storage_start_up_removes_stale_temp_files_only(tmp_path: Path, live_writer: int) -> None:
    root = tmp_path / "storage"
    store = LocalObjectStore(root)
    store.write_bytes("validation_scores/resnet18.parquet", b"good")
    directory = root / "validation_scores"
    dead = _dead_pid()
    host = this_host()
    old_unnamed = directory / ".resnet18.parquet.k3j_x9q2.tmp"  # mkstemp name until now
    stale = [directory / f".resnet18.parquet.{dead}@{host}.0a0a0a0a.tmp", old_unnamed]
    young_unnamed = directory / ".resnet18.parquet.p0q1r2s3.tmp"
    other_host = directory / f".resnet18.parquet.{dead}@another-host.0b0b0b0b.tmp"
    kept = [directory / f".resnet18.parquet.{live_writer}@{host}.0c0c0c0c.tmp"]
    kept += [young_unnamed, other_host]
    for path in stale + kept:
        path.write_bytes(b"partial")
    seven_hours_ago = time.time() - 7 * 3600
    os.utime(old_unnamed, (seven_hours_ago, seven_hours_ago))
    LocalStorageResource(root=str(root)).setup_for_execution(dg.build_init_resource_context())
    assert [p for p in stale if p.exists()] == []
    assert all(p.exists() for p in kept)
    assert store.read_bytes("validation_scores/resnet18.parquet") == b"good"


_FULL_DISK = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # the kernel then fails the write with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))
{body}
"""


def _run_with_full_disk(body: str, cwd: Path) -> str:
    script = _FULL_DISK.format(body=textwrap.dedent(body))
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_write_that_hits_a_full_disk_names_the_path(tmp_path: Path) -> None:
    """On main: ``OSError: [Errno 27] File too large`` naming no path."""
    root = tmp_path / "storage"
    LocalObjectStore(root).write_bytes("d06/summary.json", b"previous")
    out = _run_with_full_disk(
        f"""
        from stronglens_assets.resources.object_store import LocalObjectStore
        try:
            LocalObjectStore({str(root)!r}).write_bytes("d06/summary.json", bytes(1 << 20))
        except OSError as exc:
            print(type(exc).__name__, exc)
        """,
        tmp_path,
    )
    assert str(root / "d06" / "summary.json") in out and "File too large" in out, out
    assert (root / "d06" / "summary.json").read_bytes() == b"previous"
    assert [p.name for p in (root / "d06").iterdir()] == ["summary.json"]  # no temp left


def test_an_image_cache_that_does_not_fit_names_its_path(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "storage")
    synthetic_manifest(store, n=8, shard_size=4).to_parquet(tmp_path / "manifest.parquet")
    cache = tmp_path / "cache"
    out = _run_with_full_disk(
        f"""
        import pandas as pd
        from stronglens_assets.resources.object_store import LocalObjectStore
        from stronglens_assets.science.imaging.preprocess import RawRobust
        from stronglens_assets.science.learning.datasets import build_image_cache
        store = LocalObjectStore({str(tmp_path / "storage")!r})
        manifest = pd.read_parquet({str(tmp_path / "manifest.parquet")!r})
        try:
            build_image_cache(store.read_bytes, manifest, {str(cache)!r}, RawRobust())
        except OSError as exc:
            print(type(exc).__name__, exc)
        """,
        tmp_path,
    )
    assert str(cache) in out and "File too large" in out, out
    assert not np.any([p.name.endswith(".tmp") for p in cache.iterdir()])
