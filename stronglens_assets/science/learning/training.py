"""The training loop (one code path for CPU and CUDA).

Model configs (architecture, epochs, early stopping, optimizer, augmentations, tier weights,
seed, ...) are :mod:`~stronglens_assets.science.learning.model_config`.

Training (:func:`train_model`): loss = tier-weighted binary cross-entropy on the logit,
``sum(w_i * bce_i) / sum(w_i)`` per batch; AdamW; ``CosineAnnealingLR`` stepped once per epoch
over ``epochs``; validation AUC (:func:`~stronglens_assets.science.stats.roc.auc`) after every
epoch; the best state (highest val
AUC) is kept; training stops when the AUC has not improved for ``early_stopping_patience``
epochs. Determinism: ``torch.manual_seed(seed)`` before the model is built, deterministic
algorithms, a data order drawn from ``seed`` and the epoch number: the same seed on the same
CPU thread count gives the same checkpoint bytes (on CUDA the compute resource also sets
cuBLAS's deterministic workspace, :func:`stronglens_assets.settings.enable_deterministic_cuda`).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from stronglens_assets.science.learning.datasets import BatchLoader
from stronglens_assets.science.learning.model_config import ModelConfig
from stronglens_assets.science.learning.models import build_model
from stronglens_assets.science.stats.roc import auc


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA) and ask for deterministic algorithms."""
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    if torch.backends.cudnn.is_available():
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


def sample_weights(tiers: np.ndarray, tier_weights: dict[str, float]) -> np.ndarray:
    """Per-row weights from tiers; ``ValueError`` names tiers without a weight."""
    tiers = np.asarray(tiers).astype(str)
    unknown = sorted(set(tiers) - set(tier_weights))
    if unknown:
        raise ValueError(f"tier_weights has no weight for tier(s) {unknown}")
    lookup = np.vectorize(tier_weights.__getitem__, otypes=[np.float32])
    return lookup(tiers) if len(tiers) else np.zeros(0, np.float32)


@dataclass
class TrainingResult:
    """Best and last weights, and the per-epoch history."""

    best_state: dict[str, torch.Tensor]
    last_state: dict[str, torch.Tensor]
    history: list[dict[str, float]]
    best_epoch: int
    best_val_auc: float
    epochs_run: int
    stopped_early: bool
    device: str
    train_images_per_s: float
    extra: dict[str, Any] = field(default_factory=dict)


def predict_logits(
    model: torch.nn.Module,
    images: np.ndarray,
    indices: np.ndarray,
    device: torch.device,
    batch_size: int,
) -> np.ndarray:
    """Logits of ``images[indices]`` (already preprocessed) in eval mode, float32."""
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(indices), batch_size):
            batch = np.sort(indices[start : start + batch_size])
            if not np.array_equal(batch, indices[start : start + batch_size]):
                raise ValueError("indices must be sorted")
            x = torch.from_numpy(np.asarray(images[batch], dtype=np.float32)).to(device)
            with torch.autocast(device.type, enabled=device.type == "cuda"):
                out.append(model(x).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def train_model(
    config: ModelConfig,
    images: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    device: torch.device,
    *,
    log: Callable[[str], None] | None = None,
) -> TrainingResult:
    """Train ``config``'s model on preprocessed ``images`` (N, 3, crop, crop).

    Args:
        labels: (N,) 1 lens / 0 non-lens. weights: (N,) sample weights (tier weights).
        train_idx, val_idx: row numbers of each split (sorted here for a fixed data order).
        device: from the compute resource; AMP (float16 autocast + grad scaling) on CUDA when
            ``config.mixed_precision``, plain float32 on CPU (same code path).
    """
    train_idx = np.sort(np.asarray(train_idx, dtype=np.int64))
    val_idx = np.sort(np.asarray(val_idx, dtype=np.int64))
    if len(train_idx) == 0 or len(val_idx) == 0:
        raise ValueError(f"need train and val rows, got {len(train_idx)} and {len(val_idx)}")
    if len(np.unique(labels[train_idx])) < 2:
        raise ValueError("the training split needs both lenses and non-lenses")
    seed_everything(config.seed)
    model = build_model(config).to(device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=config.epochs, eta_min=config.min_learning_rate
    )
    amp = config.mixed_precision and device.type == "cuda"
    scaler = torch.amp.GradScaler(device.type, enabled=amp)
    loss_fn = torch.nn.BCEWithLogitsLoss(reduction="none")
    loader = BatchLoader(
        images,
        labels,
        weights,
        train_idx,
        config.batch_size,
        shuffle=True,
        augmentations=config.augmentations,
        seed=config.seed,
    )
    history: list[dict[str, float]] = []
    best_auc, best_epoch, best_state = -np.inf, 0, None
    since_best, stopped_early, seen, train_seconds = 0, False, 0, 0.0
    for epoch in range(1, config.epochs + 1):
        started = time.perf_counter()
        model.train()
        total, weight_sum = 0.0, 0.0
        lr = optimizer.param_groups[0]["lr"]
        for x_np, y_np, w_np in loader.epoch(epoch):
            x = torch.from_numpy(x_np).to(device, non_blocking=True)
            y = torch.from_numpy(y_np).to(device)
            w = torch.from_numpy(w_np).to(device)
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device.type, enabled=amp):
                logits = model(x)
            per_row = loss_fn(logits.float(), y)
            loss = (per_row * w).sum() / w.sum().clamp_min(1e-12)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            total += float(loss.detach()) * float(w_np.sum())
            weight_sum += float(w_np.sum())
            seen += len(x_np)
        train_time = time.perf_counter() - started
        train_seconds += train_time
        scheduler.step()
        val_logits = predict_logits(model, images, val_idx, device, max(config.batch_size, 256))
        val_auc = auc(labels[val_idx], val_logits)
        history.append(
            {
                "epoch": epoch,
                "loss": total / max(weight_sum, 1e-12),
                "val_auc": val_auc,
                "lr": lr,
                "seconds": time.perf_counter() - started,
                "train_images_per_s": len(train_idx) / max(train_time, 1e-9),
            }
        )
        if log is not None:
            log(f"epoch {epoch}: loss {history[-1]['loss']:.4f}, val AUC {val_auc:.4f}")
        if np.isfinite(val_auc) and val_auc > best_auc:
            best_auc, best_epoch, since_best = val_auc, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            since_best += 1
            if since_best >= config.early_stopping_patience:
                stopped_early = True
                break
    last_state = copy.deepcopy(model.state_dict())
    if best_state is None:  # val AUC undefined (one class): keep the last weights
        best_state, best_epoch, best_auc = last_state, len(history), float("nan")
    return TrainingResult(
        best_state={k: v.cpu() for k, v in best_state.items()},
        last_state={k: v.cpu() for k, v in last_state.items()},
        history=history,
        best_epoch=best_epoch,
        best_val_auc=float(best_auc),
        epochs_run=len(history),
        stopped_early=stopped_early,
        device=str(device),
        train_images_per_s=seen / max(train_seconds, 1e-9),
    )
