"""Training data path and network throughput, against references measured in the same run.

Loader (per CPU core: one process, one thread, times in CPU seconds of this process, so other
load on a shared machine does not count):

* ours: :class:`BatchLoader` over the crop-once memory-mapped cache (``build_image_cache``),
  shuffled batches of 256 with the safe augmentations (hflip, vflip, rot90);
* reference: the uncached path, each batch read from the ``.npz`` shards and preprocessed
  (``load_cutouts`` + ``preprocess``), no augmentation;
* also: the one-off cache build (shards -> preprocess -> ``.npy``), cutouts/s.

Networks (ResNet18 and the bottlenecked ResNet at full width 64, 64x64 input): training
images/s (forward + backward + AdamW step) and inference images/s, on the CPU with one
thread and, when torch sees one, on the GPU (batch 256, AMP as in training). Ratios are
within this run.

Run: ``.venv/bin/python bench/training.py [--cutouts 4096] [--seconds 5]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from stronglens_assets.resources.object_store import LocalObjectStore
from stronglens_assets.science.imaging.preprocess import CropRobust, preprocess
from stronglens_assets.science.learning.datasets import BatchLoader, build_image_cache, load_cutouts
from stronglens_assets.science.learning.models import BottleneckedResNet, ResNet18
from stronglens_assets.testing.cutouts import synthetic_manifest


def cpu_clock() -> float:
    return time.process_time()


def bench_loader(root: Path, n: int, batch_size: int = 256) -> dict[str, float]:
    store = LocalObjectStore(root / "storage")
    manifest = synthetic_manifest(store, n=n, shard_size=256)
    labels = manifest["label"].to_numpy()
    weights = np.ones(n, np.float32)

    start = cpu_clock()
    images = build_image_cache(store.read_bytes, manifest, root / "cache", CropRobust(crop=64))
    build = n / (cpu_clock() - start)

    loader = BatchLoader(
        images,
        labels,
        weights,
        np.arange(n),
        batch_size,
        shuffle=True,
        augmentations=("hflip", "vflip", "rot90"),
        seed=0,
    )
    for _ in loader.epoch(0):  # warm the page cache
        pass
    start, seen = cpu_clock(), 0
    for epoch in range(1, 4):
        for batch, _, _ in loader.epoch(epoch):
            seen += len(batch)
    ours = seen / (cpu_clock() - start)

    rng = np.random.default_rng(0)
    order = rng.permutation(n)
    start, seen = cpu_clock(), 0
    for first in range(0, min(n, 4 * batch_size), batch_size):
        rows = manifest.iloc[np.sort(order[first : first + batch_size])]
        batch = preprocess(load_cutouts(store.read_bytes, rows), CropRobust(crop=64))
        seen += len(batch)
    reference = seen / (cpu_clock() - start)
    return {"cache_build": build, "ours": ours, "reference": reference}


def bench_network(
    model: torch.nn.Module, device: torch.device, batch_size: int, seconds: float
) -> dict[str, float]:
    model = model.to(device)
    amp = device.type == "cuda"
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler(device.type, enabled=amp)
    x = torch.randn(batch_size, 3, 64, 64, device=device)
    y = (torch.rand(batch_size, device=device) > 0.5).float()
    clock = cpu_clock if device.type == "cpu" else time.perf_counter

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, enabled=amp):
            logits = model(x)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), y)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    def infer_step() -> None:
        with torch.no_grad(), torch.autocast(device.type, enabled=amp):
            model(x)

    out = {}
    for name, step, mode in (("train", train_step, True), ("inference", infer_step, False)):
        model.train(mode)
        for _ in range(3):
            step()
        sync()
        start, seen = clock(), 0
        while clock() - start < seconds:
            step()
            seen += batch_size
        sync()
        out[name] = seen / (clock() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cutouts", type=int, default=4096)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        loader = bench_loader(Path(tmp), args.cutouts)
    print(f"loader, one core, {args.cutouts} cutouts, batch 256, 64x64 crops:")
    print(
        f"  crop-once cache build (shards -> preprocess -> .npy): {loader['cache_build']:9.0f} /s"
    )
    print(f"  ours: memory-mapped cache + augmentations:            {loader['ours']:9.0f} images/s")
    reference = loader["reference"]
    print(f"  reference: shards + preprocess per batch:             {reference:9.0f} images/s")
    print(f"  ratio ours / reference: {loader['ours'] / loader['reference']:.1f}x")
    devices = [torch.device("cpu")]
    if torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    results = {}
    for device in devices:
        batch = 64 if device.type == "cpu" else 256
        label = "CPU, 1 thread" if device.type == "cpu" else torch.cuda.get_device_name()
        print(f"networks on {label}, width 64, batch {batch}:")
        for name, model in (
            ("resnet18", ResNet18(width=64)),
            ("bottlenecked_resnet", BottleneckedResNet(width=64, embedding_dim=32)),
        ):
            torch.manual_seed(0)
            rates = bench_network(model, device, batch, args.seconds)
            results[(device.type, name)] = rates
            print(
                f"  {name:20s} train {rates['train']:9.1f} images/s   "
                f"inference {rates['inference']:9.1f} images/s"
            )
    if len(devices) > 1:
        for name in ("resnet18", "bottlenecked_resnet"):
            gpu, cpu = results[("cuda", name)], results[("cpu", name)]
            print(
                f"  {name}: GPU / one CPU core: train {gpu['train'] / cpu['train']:.0f}x, "
                f"inference {gpu['inference'] / cpu['inference']:.0f}x"
            )


if __name__ == "__main__":
    main()
