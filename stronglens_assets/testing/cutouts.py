"""Synthetic cutout shards and parity manifests (training/evaluation tests and benchmarks).

Lenses are a galaxy blob plus a ring of radius 8 px (a stand-in arc); non-lenses the blob
only. Shards are real ``.npz`` files in a local object store, the manifest has the parity
manifest's columns (``cutout_key`` = storage key, ``cutout_row``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from stronglens_assets.resources.object_store import ObjectStore
from stronglens_assets.science.core.npz import encode_npz

SIZE = 101


def synthetic_cutouts(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """(n, 3, 101, 101) float32 nanomaggies: blob (+ ring for label 1) + Gaussian sky noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] - SIZE // 2
    r = np.hypot(xx, yy)
    blob = np.exp(-0.5 * (r / 3.0) ** 2)
    ring = np.exp(-0.5 * ((r - 8.0) / 1.2) ** 2)
    n = len(labels)
    amp = rng.uniform(0.5, 1.5, (n, 1, 1, 1))
    images = amp * blob + np.asarray(labels).reshape(-1, 1, 1, 1) * 0.25 * ring
    images = images * np.array([0.5, 1.0, 1.5]).reshape(1, 3, 1, 1)
    images = images + rng.normal(0, 0.03, (n, 3, SIZE, SIZE))
    return images.astype(np.float32)


def write_shards(
    store: ObjectStore, cutouts: np.ndarray, shard_size: int, prefix: str = "cutouts/test/v1"
) -> tuple[list[str], np.ndarray]:
    """Write shards; return (cutout_key per row, cutout_row per row)."""
    keys, rows = [], []
    for number, start in enumerate(range(0, len(cutouts), shard_size)):
        chunk = cutouts[start : start + shard_size]
        key = f"{prefix}/shard-{number:05d}.npz"
        store.write_bytes(
            key,
            encode_npz(
                {
                    "cutout": chunk,
                    "invvar": np.ones_like(chunk),
                    "psfsize": np.full((len(chunk), 3), 1.3, np.float32),
                }
            ),
        )
        keys += [key] * len(chunk)
        rows += list(range(len(chunk)))
    return keys, np.asarray(rows, dtype=np.int64)


def synthetic_manifest(
    store: ObjectStore,
    n: int = 80,
    val_fraction: float = 0.3,
    seed: int = 0,
    shard_size: int = 32,
    test_fraction: float = 0.0,
) -> pd.DataFrame:
    """A parity manifest of ``n`` rows (half lenses) with shards written to ``store``; splits
    train / val / test (test only with ``test_fraction > 0``)."""
    rng = np.random.default_rng(seed)
    labels = np.tile([1, 0], n // 2)
    cutouts = synthetic_cutouts(labels, seed)
    keys, rows = write_shards(store, cutouts, shard_size)
    u = rng.uniform(size=n)
    split = np.where(u < val_fraction, "val", "train")
    split[(u >= val_fraction) & (u < val_fraction + test_fraction)] = "test"
    split[:2], split[2:4] = "val", "train"  # both labels in every split
    if test_fraction > 0:
        split[4:6] = "test"
    tier = np.where(labels == 1, np.where(np.arange(n) % 4 == 0, "A", "B"), "N1")
    tier[(labels == 0) & (np.arange(n) % 3 == 0)] = "N2"
    return pd.DataFrame(
        {
            "object_id": [f"obj{i:04d}" for i in range(n)],
            "ra": 10.0 + np.arange(n) * 0.01,
            "dec": np.linspace(-1, 1, n),
            "brickname": "0100p000",
            "label": labels.astype(np.int8),
            "tier": tier,
            "source": np.where(labels == 1, "mock", "dr10"),
            "split": split,
            "sample_weight": np.float32(1.0),
            "cutout_key": keys,
            "cutout_row": rows,
            "partition": "hpx-nest16-1105",
            "type": np.where(np.arange(n) % 2 == 0, "DEV", "SER"),
            "mag_r": rng.uniform(17, 20, n),
            "shape_r": rng.uniform(0.5, 2.0, n),
            "psfdepth_g": rng.uniform(500, 2000, n),
            "psfdepth_r": rng.uniform(200, 900, n),
            "psfdepth_z": rng.uniform(50, 200, n),
            "psfsize_g": rng.uniform(1.1, 1.8, n),
            "psfsize_r": rng.uniform(1.0, 1.6, n),
            "psfsize_z": rng.uniform(0.9, 1.5, n),
            "gate_reason": "",
        }
    )
