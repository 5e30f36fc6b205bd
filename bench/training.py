"""Training data path and network throughput, against references measured in the same run.

Loader (per CPU core: one process, one thread, times in CPU seconds of this process, so other
load on a shared machine does not count):

* ours: :class:`BatchLoader` over the crop-once memory-mapped cache (``build_image_cache``),
  shuffled batches of 256 with the safe augmentations (hflip, vflip, rot90);
* reference: the uncached path, each batch read from the ``.npz`` shards and preprocessed
  (``load_cutouts`` + ``preprocess``), no augmentation;
* also: the one-off cache build (shards -> preprocess -> ``.npy``), cutouts/s.

Networks at full size, built from the shipped model configs: the seeds' ResNet18 and
bottlenecked ResNet on their 64x64 crops, ResNet18 on the full 101x101 stamp, and the paper's
EfficientNetV2-S (``paperIV_efficientnet_v2_s``, full width and depth) on 101x101. Training
images/s (forward + backward through the training loop's :func:`accumulate_gradients` + AdamW
step) and inference images/s (eval mode, no grad), on the CPU with one thread (batch 64, the
paper's micro-batch; CPU seconds of this process) and, when torch sees a GPU, on it (batch 256,
float16 autocast as ``mixed_precision: true`` trains, and float32). The ratios
EfficientNetV2-S / ResNet18 are within this run.

Run: ``.venv/bin/python bench/training.py [--cutouts 4096] [--seconds 5] [--only networks]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from stronglens_assets.resources.object_store import LocalObjectStore
from stronglens_assets.science.imaging.preprocess import CropRobust, RawRobust, preprocess
from stronglens_assets.science.learning.datasets import BatchLoader, build_image_cache, load_cutouts
from stronglens_assets.science.learning.model_config import load_model_config
from stronglens_assets.science.learning.models import build_model
from stronglens_assets.science.learning.training import accumulate_gradients, amp_enabled, autocast
from stronglens_assets.settings import PROJECT_ROOT
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
    model: torch.nn.Module,
    device: torch.device,
    batch_size: int,
    crop: int,
    seconds: float,
    mixed_precision: bool,
) -> dict[str, float]:
    """Training and inference images/s of ``model`` on random ``crop`` x ``crop`` inputs."""
    model = model.to(device)
    amp = amp_enabled(device, mixed_precision)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler(device.type, enabled=amp)
    x = torch.randn(batch_size, 3, crop, crop, device=device)
    y = (torch.rand(batch_size, device=device) > 0.5).float()
    w = torch.ones(batch_size, device=device)
    clock = cpu_clock if device.type == "cpu" else time.perf_counter

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        accumulate_gradients(model, x, y, w, batch_size, scaler=scaler, mixed_precision=amp)
        scaler.step(optimizer)
        scaler.update()

    def infer_step() -> None:
        with torch.no_grad(), autocast(device, mixed_precision):
            model(x)

    out = {}
    for name, step, mode in (("train", train_step, True), ("inference", infer_step, False)):
        model.train(mode)
        step()  # warm-up
        sync()
        start, seen = clock(), 0
        while seen == 0 or clock() - start < seconds:
            step()
            seen += batch_size
        sync()
        out[name] = seen / (clock() - start)
    return out


#: (label, model config, overrides of its full profile): the networks compared.
NETWORKS: tuple[tuple[str, str, dict], ...] = (
    ("resnet18 64x64", "resnet18_baseline_v1", {}),
    ("bottlenecked_resnet 101x101", "paperIV_bottlenecked_resnet", {}),
    ("resnet18 101x101", "resnet18_baseline_v1", {"preprocessing": RawRobust()}),
    ("efficientnet_v2_s 101x101", "paperIV_efficientnet_v2_s", {}),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cutouts", type=int, default=4096)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--only", choices=("all", "loader", "networks"), default="all")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.only in ("all", "loader"):
        report_loader(args.cutouts)
    if args.only in ("all", "networks"):
        report_networks(args.seconds)


def report_loader(cutouts: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        loader = bench_loader(Path(tmp), cutouts)
    print(f"loader, one core, {cutouts} cutouts, batch 256, 64x64 crops:")
    print(
        f"  crop-once cache build (shards -> preprocess -> .npy): {loader['cache_build']:9.0f} /s"
    )
    print(f"  ours: memory-mapped cache + augmentations:            {loader['ours']:9.0f} images/s")
    reference = loader["reference"]
    print(f"  reference: shards + preprocess per batch:             {reference:9.0f} images/s")
    print(f"  ratio ours / reference: {loader['ours'] / loader['reference']:.1f}x")


def report_networks(seconds: float) -> None:
    config_dir = PROJECT_ROOT / "configs"
    runs = [("cpu", torch.device("cpu"), 64, True)]
    if torch.cuda.is_available():
        cuda = torch.device("cuda")
        runs += [("cuda AMP", cuda, 256, True), ("cuda fp32", cuda, 256, False)]
    results: dict[tuple[str, str], dict[str, float]] = {}
    for run, device, batch, mixed_precision in runs:
        label = "CPU, 1 thread" if device.type == "cpu" else torch.cuda.get_device_name()
        precision = "float16 autocast" if amp_enabled(device, mixed_precision) else "float32"
        print(f"networks on {label}, full size, batch {batch}, {precision}:")
        for name, config_name, overrides in NETWORKS:
            config = load_model_config(config_dir, config_name, "full")
            config = config.model_copy(update=overrides)
            torch.manual_seed(0)
            model = build_model(config)
            rates = bench_network(model, device, batch, config.input_px, seconds, mixed_precision)
            results[(run, name)] = rates
            print(
                f"  {name:27s} train {rates['train']:9.1f} images/s   "
                f"inference {rates['inference']:9.1f} images/s"
            )
        effnet = results[(run, "efficientnet_v2_s 101x101")]
        for reference in ("resnet18 101x101", "resnet18 64x64"):
            base = results[(run, reference)]
            print(
                f"  efficientnet_v2_s 101x101 / {reference}: "
                f"train {effnet['train'] / base['train']:.3f}x, "
                f"inference {effnet['inference'] / base['inference']:.3f}x"
            )
    for run, *_ in runs[1:]:
        for name, *_ in NETWORKS:
            gpu, cpu = results[(run, name)], results[("cpu", name)]
            print(
                f"  {name} {run} / one CPU core: train {gpu['train'] / cpu['train']:.0f}x, "
                f"inference {gpu['inference'] / cpu['inference']:.0f}x"
            )


if __name__ == "__main__":
    main()
