"""Loss and schedule options: unweighted BCE, accumulation, StepLR, fine-tune phase, AMP."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from stronglens_assets.resources.object_store import LocalObjectStore
from stronglens_assets.science.imaging.preprocess import CropRobust
from stronglens_assets.science.learning.datasets import build_image_cache
from stronglens_assets.science.learning.model_config import ModelConfig
from stronglens_assets.science.learning.models import ResNet18
from stronglens_assets.science.learning.training import (
    accumulate_gradients,
    amp_enabled,
    loss_weights,
    predict_logits,
    sample_weights,
    train_model,
)
from stronglens_assets.testing.cutouts import synthetic_manifest


def _batch(n: int = 32, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 16, 16, generator=generator)
    y = (torch.arange(n) % 3 == 0).float()
    w = torch.tensor([1.0, 0.5, 2.0, 1.0] * (n // 4))
    return x, y, w


def _frozen_model() -> ResNet18:
    torch.manual_seed(3)
    return ResNet18(width=4, crop=16).eval()  # eval: BatchNorm uses running statistics


def _gradients(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("micro", [4, 8, 16])
def test_accumulated_micro_batches_give_the_whole_batch_gradient(micro):
    x, y, w = _batch()
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    model = _frozen_model()
    loss = accumulate_gradients(model, x, y, w, micro, scaler=scaler, mixed_precision=True)
    accumulated = _gradients(model)
    # reference: torch's weighted BCE over the whole batch, one backward
    reference = _frozen_model()
    expected = (
        F.binary_cross_entropy_with_logits(reference(x), y, weight=w, reduction="sum") / w.sum()
    )
    expected.backward()
    assert loss == pytest.approx(expected.item(), rel=1e-5)
    for got, want in zip(accumulated, _gradients(reference), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)


def test_unweighted_bce_is_torchs_mean_bce_whatever_the_tiers():
    tiers = np.array(["A", "B", "N1", "N2"] * 8)
    tier_w = sample_weights(tiers, {"A": 1.0, "B": 0.5, "N1": 1.0, "N2": 3.0})
    bce = ModelConfig(name="m", architecture="resnet18", loss="bce")
    weighted = ModelConfig(name="m", architecture="resnet18", loss="tier_weighted_bce")
    assert np.array_equal(loss_weights(bce, tier_w), np.ones(32, np.float32))
    assert np.array_equal(loss_weights(weighted, tier_w), tier_w)
    x, y, _ = _batch()
    model = _frozen_model()
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    w = torch.from_numpy(loss_weights(bce, tier_w))
    loss = accumulate_gradients(model, x, y, w, 8, scaler=scaler, mixed_precision=False)
    with torch.no_grad():
        expected = F.binary_cross_entropy_with_logits(model(x), y)
    assert loss == pytest.approx(float(expected), rel=1e-6)


def test_amp_only_on_cuda_and_only_when_asked():
    assert amp_enabled(torch.device("cuda"), True)
    assert not amp_enabled(torch.device("cuda", 0), False)
    assert not amp_enabled(torch.device("cpu"), True)


class _AutocastProbe(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[bool] = []
        self.linear = torch.nn.Linear(4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(torch.is_autocast_enabled(x.device.type))
        return self.linear(x).squeeze(1)


def test_predict_logits_on_the_cpu_is_float32_with_or_without_mixed_precision():
    probe = _AutocastProbe()
    images = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32)
    rows = np.arange(10)
    cpu = torch.device("cpu")
    amp = predict_logits(probe, images, rows, cpu, 4, mixed_precision=True)
    plain = predict_logits(probe, images, rows, cpu, 4, mixed_precision=False)
    assert probe.seen == [False] * 6 and amp.dtype == np.float32
    assert np.array_equal(amp, plain)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("options")
    store = LocalObjectStore(root / "storage")
    manifest = synthetic_manifest(store, n=80, shard_size=32)
    images = build_image_cache(store.read_bytes, manifest, root / "cache", CropRobust(crop=32))
    split = manifest["split"].to_numpy()
    return {
        "images": images,
        "labels": manifest["label"].to_numpy(),
        "weights": sample_weights(
            manifest["tier"].to_numpy(), {"A": 1, "B": 0.5, "N1": 1, "N2": 1}
        ),
        "train": np.flatnonzero(split == "train"),
        "val": np.flatnonzero(split == "val"),
    }


def _config(**update) -> ModelConfig:
    values = dict(
        name="tiny",
        architecture="resnet18",
        width=4,
        preprocessing=CropRobust(crop=32),
        epochs=5,
        early_stopping_patience=None,
        batch_size=8,
        effective_batch_size=16,
        learning_rate=3e-3,
        seed=11,
    )
    values.update(update)
    return ModelConfig(**values)


def _train(data, config, **kwargs):
    return train_model(
        config,
        data["images"],
        data["labels"],
        data["weights"],
        data["train"],
        data["val"],
        torch.device("cpu"),
        **kwargs,
    )


def _step_lr_values(lr: float, epochs: int, step: int, factor: float) -> list[float]:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=step, gamma=factor)
    values = []
    for _ in range(epochs):
        values.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return values


def test_step_schedule_follows_torchs_step_lr(data):
    result = _train(data, _config(scheduler="step", lr_step_epochs=2, lr_step_factor=0.5))
    lrs = [h["lr"] for h in result.history]
    assert lrs == pytest.approx(_step_lr_values(3e-3, 5, 2, 0.5), rel=1e-12)
    assert lrs[:2] == [3e-3, 3e-3] and lrs[2] == pytest.approx(1.5e-3)
    assert result.epochs_run == 5  # early_stopping_patience None: every epoch runs


def test_fine_tune_starts_from_phase_one_best(data):
    base = _config(epochs=4, learning_rate=3e-2)
    phase_one = _train(data, base)
    assert phase_one.best_epoch < 4  # so phase 1's best and last states differ
    tuned = _train(
        data,
        _config(epochs=4, learning_rate=3e-2, fine_tune={"epochs": 2, "learning_rate": 1e-30}),
    )
    phases = [h["phase"] for h in tuned.history]
    assert phases == [1, 1, 1, 1, 2, 2]
    assert [h["epoch"] for h in tuned.history] == list(range(1, 7))
    assert [h["loss"] for h in tuned.history[:4]] == [h["loss"] for h in phase_one.history]
    assert tuned.history[4]["lr"] == pytest.approx(1e-30)  # phase 2: its own rate, cosine
    # a learning rate of 1e-30 leaves the weights where phase 2 started: phase 1's best
    parameters = {name for name, _ in ResNet18(width=4).named_parameters()}
    for name in parameters:
        torch.testing.assert_close(
            tuned.last_state[name], phase_one.best_state[name], rtol=0, atol=1e-12
        )
    assert not torch.equal(tuned.last_state["conv1.weight"], phase_one.last_state["conv1.weight"])
    record = tuned.extra["phases"]
    assert [r["phase"] for r in record] == [1, 2] and record[1]["start_from"] == "best"
    assert record[0]["best_epoch"] == phase_one.best_epoch
    assert tuned.best_val_auc == max(h["val_auc"] for h in tuned.history)


def test_fine_tune_from_a_file_skips_phase_one(data):
    torch.manual_seed(99)
    start = ResNet18(width=4, crop=32).state_dict()
    config = _config(
        fine_tune={"epochs": 2, "learning_rate": 1e-30, "start_from": "checkpoints/phase1.pt"}
    )
    with pytest.raises(ValueError, match=r"phase1\.pt"):
        _train(data, config)
    with pytest.raises(ValueError, match="initial_state"):
        _train(data, _config(), initial_state=start)
    result = _train(data, config, initial_state=start)
    assert [h["phase"] for h in result.history] == [2, 2]
    assert result.extra["phases"][0]["start_from"] == "checkpoints/phase1.pt"
    for name, _ in ResNet18(width=4).named_parameters():
        torch.testing.assert_close(result.last_state[name], start[name], rtol=0, atol=1e-12)


def test_init_from_loads_the_trunk_and_keeps_a_fresh_head(data):
    torch.manual_seed(5)
    other_task = ResNet18(width=4, crop=32).state_dict()
    other_task["fc.weight"] = torch.zeros(10, 32)  # a 10-class head: not loaded
    other_task["fc.bias"] = torch.zeros(10)
    config = _config(epochs=1, learning_rate=1e-30, init_from="imagenet.pth")
    with pytest.raises(ValueError, match=r"imagenet\.pth"):
        _train(data, config)
    result = _train(data, config, initial_state=other_task)
    trunk = [n for n, _ in ResNet18(width=4).named_parameters() if not n.startswith("fc.")]
    for name in trunk:
        torch.testing.assert_close(result.last_state[name], other_task[name], rtol=0, atol=1e-12)
    assert result.last_state["fc.weight"].shape == (1, 32)
    assert result.extra["initialised_from"] == {
        "location": "imagenet.pth",
        "head_keys_not_loaded": ["fc.bias", "fc.weight"],
    }
    assert result.extra["phases"][0]["start_from"] == "imagenet.pth"
