"""The training data path: manifest rows -> crop-once cache -> augmented batches.

* :func:`build_image_cache` reads the parity manifest's shards (``cutout_key`` = storage key of
  an ``.npz`` shard, ``cutout_row`` = row in it), each shard once, runs
  :func:`~.preprocess.preprocess` with the model's preprocessing settings and writes the
  result as one ``(N, 3, P, P)`` float32 ``.npy`` file, memory-mapped for training. The
  file name is a hash of the rows and the preprocessing settings, so a second model config
  with the same settings (or a second epoch, or a re-run) reuses it; at survey scale (~1.3M
  cutouts, 64 px: ~64 GB; 101 px: ~160 GB) it lives on local disk and the page cache
  serves it.
* :class:`BatchLoader` yields batches of that cache in a seeded order with the safe
  augmentations (horizontal flip, vertical flip, rot90: the dihedral group D4, which keeps a
  lens a lens; no rescaling, colour or noise changes), vectorised over the batch.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stronglens_assets.errors import StronglensError
from stronglens_assets.science.core.columns import require_columns
from stronglens_assets.science.core.npz import decode_npz
from stronglens_assets.science.imaging.preprocess import preprocess

SAFE_AUGMENTATIONS: tuple[str, ...] = ("hflip", "vflip", "rot90")
CACHE_FORMAT = 2


class ManifestError(StronglensError, ValueError):
    """A manifest row cannot be served (missing column, missing shard, row out of range)."""


def cache_digest(manifest: pd.DataFrame, preprocessing: Any) -> str:
    """Identity of a cache: the ordered (cutout_key, cutout_row) list and the preprocessing
    settings (every field)."""
    settings = json.dumps(preprocessing.model_dump(mode="json"), sort_keys=True)
    digest = hashlib.sha256(f"format={CACHE_FORMAT};preprocessing={settings}".encode())
    digest.update("\n".join(manifest["cutout_key"].astype(str)).encode())
    digest.update(np.asarray(manifest["cutout_row"], dtype=np.int64).tobytes())
    return digest.hexdigest()[:20]


def _check_columns(manifest: pd.DataFrame, source: str) -> None:
    require_columns(manifest.columns, ("cutout_key", "cutout_row"), source, error=ManifestError)


def load_cutouts(
    read_bytes: Any,
    manifest: pd.DataFrame,
    *,
    source: str = "manifest",
    transform: Any = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Cutouts of every manifest row, in row order, reading each shard once.

    Args:
        read_bytes: ``key -> bytes`` (e.g. ``store.read_bytes``).
        manifest: rows with ``cutout_key`` and ``cutout_row`` (and ``object_id`` for errors).
        transform: applied to each shard's selected cutouts (e.g. :func:`preprocess`); the
            raw ``(n, 3, H, W)`` cutouts when ``None``.
        out: optional preallocated output (e.g. a memory map) of the transformed shape.

    Raises:
        ManifestError: a shard is missing or unreadable, or a row is out of range; the message
            names the shard key and the first object id affected.
    """
    _check_columns(manifest, source)
    keys = manifest["cutout_key"].astype(str).to_numpy()
    rows = np.asarray(manifest["cutout_row"], dtype=np.int64)
    ids = manifest["object_id"].astype(str).to_numpy() if "object_id" in manifest else keys
    positions = np.arange(len(manifest))
    result = out
    for key in sorted(set(keys)):
        members = positions[keys == key]
        try:
            arrays = decode_npz(read_bytes(key), ("cutout",))
        except FileNotFoundError as exc:
            raise ManifestError(
                f"{source}: row of object {ids[members[0]]!r} points at shard {key!r}, "
                f"which does not exist ({exc})"
            ) from exc
        except (OSError, ValueError) as exc:
            raise ManifestError(f"{source}: shard {key!r} is not a readable .npz: {exc}") from exc
        if "cutout" not in arrays:
            raise ManifestError(f"{source}: shard {key!r} has no 'cutout' array")
        shard = arrays["cutout"]
        wanted = rows[members]
        bad = (wanted < 0) | (wanted >= len(shard))
        if bad.any():
            first = members[np.flatnonzero(bad)[0]]
            raise ManifestError(
                f"{source}: object {ids[first]!r} has cutout_row {rows[first]}, but shard "
                f"{key!r} holds {len(shard)} rows"
            )
        selected = shard[wanted]
        if transform is not None:
            selected = transform(selected)
        if result is None:
            result = np.empty((len(manifest), *selected.shape[1:]), dtype=selected.dtype)
        result[members] = selected
    if result is None:
        raise ManifestError(f"{source}: manifest has no rows")
    return result


def build_image_cache(
    read_bytes: Any,
    manifest: pd.DataFrame,
    cache_dir: str | os.PathLike[str],
    preprocessing: Any,
    *,
    source: str = "manifest",
) -> np.ndarray:
    """Images of the manifest rows preprocessed with ``preprocessing`` (the model config's
    settings) as a read-only memory map (preprocess once).

    The cache file ``<cache_dir>/images-<digest>.npy`` is written atomically (temporary name,
    then rename) and reused when present.
    """
    _check_columns(manifest, source)
    directory = Path(cache_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"images-{cache_digest(manifest, preprocessing)}.npy"
    if not path.exists():
        tmp = directory / f".{path.name}.{os.getpid()}.tmp"
        size = preprocessing.output_px
        images = np.lib.format.open_memmap(
            tmp, mode="w+", dtype=np.float32, shape=(len(manifest), 3, size, size)
        )
        try:
            load_cutouts(
                read_bytes,
                manifest,
                source=source,
                transform=lambda x: preprocess(x, preprocessing),
                out=images,
            )
            images.flush()
            del images
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return np.load(path, mmap_mode="r")


def dihedral(images: np.ndarray, k: int, flip: bool) -> np.ndarray:
    """Rotate ``(..., H, W)`` images by ``k`` x 90 degrees, after a horizontal flip if ``flip``."""
    if flip:
        images = images[..., ::-1]
    return np.rot90(images, k, axes=(-2, -1))


def augment(
    images: np.ndarray, rng: np.random.Generator, ops: Sequence[str] = SAFE_AUGMENTATIONS
) -> np.ndarray:
    """Random safe augmentation of each image of a batch ``(N, B, H, W)`` (returns a copy).

    ``hflip``/``vflip``: mirror with probability 1/2 each; ``rot90``: rotate by a uniform
    multiple of 90 degrees. With all three, each image gets a uniformly random element of the
    dihedral group D4. Labels are unchanged by construction.
    """
    unknown = sorted(set(ops) - set(SAFE_AUGMENTATIONS))
    if unknown:
        raise ValueError(f"unsafe or unknown augmentation(s) {unknown}; safe: {SAFE_AUGMENTATIONS}")
    n = len(images)
    hflip = rng.random(n) < 0.5 if "hflip" in ops else np.zeros(n, bool)
    vflip = rng.random(n) < 0.5 if "vflip" in ops else np.zeros(n, bool)
    turns = rng.integers(0, 4, n) if "rot90" in ops else np.zeros(n, np.int64)
    # A vertical flip is a horizontal flip followed by a half turn.
    flip = hflip ^ vflip
    turns = (turns + 2 * vflip) % 4
    out = np.empty_like(images)
    for k in range(4):
        for mirrored in (False, True):
            members = np.flatnonzero((turns == k) & (flip == mirrored))
            if len(members):
                out[members] = dihedral(images[members], k, mirrored)
    return out


@dataclass
class BatchLoader:
    """Batches of ``images[indices]`` with labels and weights, in a seeded order.

    ``shuffle``: a new permutation per epoch from ``seed`` and the epoch number; rows inside a
    batch are read in ascending order (sequential reads from the memory map; the batch is the
    same set either way). ``augmentations``: names from :data:`SAFE_AUGMENTATIONS`.
    """

    images: np.ndarray
    labels: np.ndarray
    weights: np.ndarray
    indices: np.ndarray
    batch_size: int
    shuffle: bool = False
    augmentations: Sequence[str] = ()
    seed: int = 0

    def __len__(self) -> int:
        return (len(self.indices) + self.batch_size - 1) // self.batch_size

    def epoch(self, number: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Yield ``(images (n,3,H,W) float32, labels (n,) float32, weights (n,) float32)``."""
        rng = np.random.default_rng([self.seed, number])
        order = rng.permutation(self.indices) if self.shuffle else np.asarray(self.indices)
        for start in range(0, len(order), self.batch_size):
            batch = np.sort(order[start : start + self.batch_size])
            images = np.asarray(self.images[batch], dtype=np.float32)
            if self.augmentations:
                images = augment(images, rng, self.augmentations)
            yield (
                np.ascontiguousarray(images),
                self.labels[batch].astype(np.float32),
                self.weights[batch].astype(np.float32),
            )
