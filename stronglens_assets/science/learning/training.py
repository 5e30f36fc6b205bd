"""The training loop (one code path for CPU and CUDA).

Model configs (architecture, epochs, early stopping, optimizer, schedule, loss, accumulation,
fine-tune phase, augmentations, tier weights, seed, ...) are
:mod:`~stronglens_assets.science.learning.model_config`.

Training (:func:`train_model`): loss = binary cross-entropy on the logit, weighted per row:
``sum(w_i * bce_i) / sum(w_i)`` over the rows of one optimizer step, with ``w`` the tier
weights (``loss: tier_weighted_bce``) or 1 (``loss: bce``, the paper's: then it equals the
mean BCE). One optimizer step takes ``effective_batch_size`` rows, fed to the network in
micro-batches of ``batch_size`` whose gradients are accumulated (each micro-batch's loss is
divided by the step's total weight, so the gradient is that of the whole step's loss; only
BatchNorm statistics see the micro-batch). AdamW; the learning rate follows
``CosineAnnealingLR`` or ``StepLR`` stepped once per epoch; validation AUC
(:func:`~stronglens_assets.science.stats.roc.auc`) after every epoch; the best state (highest
val AUC) is kept; a phase stops when the AUC has not improved for ``early_stopping_patience``
epochs. Phase 1 starts from the seeded initialisation or from ``init_from`` (e.g. ImageNet-1K
weights, the head re-initialised). An optional fine-tune phase (``fine_tune``) restarts the
optimizer and schedule from phase 1's best state (or from a given checkpoint, phase 1
skipped); the best epoch is chosen over both phases and the history numbers epochs across
them (each entry says its ``phase``).

AMP: float16 autocast and gradient scaling on CUDA when ``mixed_precision`` is true, float32
on the CPU; training, validation and scoring share :func:`autocast`.

Determinism: ``torch.manual_seed(seed)`` before the model is built, deterministic
algorithms, a data order drawn from ``seed`` and the epoch number: the same seed on the same
CPU thread count gives the same checkpoint bytes (on CUDA the compute resource also sets
cuBLAS's deterministic workspace, :func:`stronglens_assets.settings.enable_deterministic_cuda`).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from stronglens_assets.science.learning.datasets import BatchLoader
from stronglens_assets.science.learning.model_config import ModelConfig, PhaseSchedule
from stronglens_assets.science.learning.models import build_model, load_backbone_state
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


def loss_weights(config: ModelConfig, weights: np.ndarray) -> np.ndarray:
    """The per-row loss weights of ``config.loss``: ``weights`` (tier weights) for
    ``tier_weighted_bce``, ones for ``bce``; float32."""
    weights = np.asarray(weights, dtype=np.float32)
    if config.loss == "bce":
        return np.ones_like(weights)
    return weights


def amp_enabled(device: torch.device, mixed_precision: bool) -> bool:
    """Whether float16 autocast and gradient scaling apply: on CUDA with ``mixed_precision``."""
    return bool(mixed_precision) and device.type == "cuda"


def autocast(device: torch.device, mixed_precision: bool) -> torch.autocast:
    """The autocast context of training and scoring (disabled off CUDA or without AMP)."""
    return torch.autocast(device.type, enabled=amp_enabled(device, mixed_precision))


def make_scheduler(
    optimizer: torch.optim.Optimizer, schedule: PhaseSchedule
) -> torch.optim.lr_scheduler.LRScheduler:
    """``CosineAnnealingLR`` over ``epochs`` (to ``min_learning_rate``) or ``StepLR``
    (``lr_step_epochs``, ``lr_step_factor``), to be stepped once per epoch."""
    if schedule.scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(
            optimizer, step_size=int(schedule.lr_step_epochs), gamma=schedule.lr_step_factor
        )
    return torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=schedule.epochs, eta_min=schedule.min_learning_rate
    )


def accumulate_gradients(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    w: torch.Tensor,
    micro_batch_size: int,
    *,
    scaler: torch.amp.GradScaler,
    mixed_precision: bool,
) -> float:
    """Backward pass of one optimizer step's rows in micro-batches of ``micro_batch_size``.

    Loss ``sum(w_i * bce_i) / sum(w_i)`` over all rows of ``x``; each micro-batch contributes
    its share, so the accumulated gradient is that of the whole step (up to BatchNorm, which
    sees micro-batches). Gradients add to ``.grad`` (zero them before). Returns the loss.
    """
    total_weight = w.sum().clamp_min(1e-12)
    loss_value = 0.0
    for start in range(0, len(x), micro_batch_size):
        rows = slice(start, start + micro_batch_size)
        with autocast(x.device, mixed_precision):
            logits = model(x[rows])
        per_row = F.binary_cross_entropy_with_logits(logits.float(), y[rows], reduction="none")
        loss = (per_row * w[rows]).sum() / total_weight
        scaler.scale(loss).backward()
        loss_value += float(loss.detach())
    return loss_value


@dataclass
class TrainingResult:
    """Best and last weights, and the per-epoch history.

    ``extra["phases"]``: per phase its number, starting point, epochs run, best epoch and AUC
    and whether it stopped early. ``stopped_early`` is the last phase's.
    """

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
    *,
    mixed_precision: bool | None = None,
) -> np.ndarray:
    """Logits of ``images[indices]`` (already preprocessed) in eval mode, float32.

    ``mixed_precision``: float16 autocast on CUDA (never on the CPU); ``None`` takes the
    model's ``mixed_precision`` attribute (set from its config by ``build_model``; False
    when absent).
    """
    if mixed_precision is None:
        mixed_precision = bool(getattr(model, "mixed_precision", False))
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(indices), batch_size):
            batch = np.sort(indices[start : start + batch_size])
            if not np.array_equal(batch, indices[start : start + batch_size]):
                raise ValueError("indices must be sorted")
            x = torch.from_numpy(np.asarray(images[batch], dtype=np.float32)).to(device)
            with autocast(device, mixed_precision):
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
    initial_state: Mapping[str, torch.Tensor] | None = None,
    log: Callable[[str], None] | None = None,
) -> TrainingResult:
    """Train ``config``'s model on preprocessed ``images`` (N, 3, crop, crop).

    Args:
        labels: (N,) 1 lens / 0 non-lens. weights: (N,) tier weights (used when ``config.loss``
            is ``tier_weighted_bce``; ``bce`` weighs every row 1).
        train_idx, val_idx: row numbers of each split (sorted here for a fixed data order).
        device: from the compute resource; AMP (float16 autocast + grad scaling) on CUDA when
            ``config.mixed_precision``, plain float32 on CPU (same code path).
        initial_state: the checkpoint ``config.init_from`` or ``config.fine_tune.start_from``
            names (required when either names a file, refused otherwise). ``init_from``: phase
            1 starts from it (head keys may differ, :func:`~.models.load_backbone_state`);
            ``start_from``: the fine-tune phase starts from it (strict), phase 1 skipped.
    """
    train_idx = np.sort(np.asarray(train_idx, dtype=np.int64))
    val_idx = np.sort(np.asarray(val_idx, dtype=np.int64))
    if len(train_idx) == 0 or len(val_idx) == 0:
        raise ValueError(f"need train and val rows, got {len(train_idx)} and {len(val_idx)}")
    if len(np.unique(labels[train_idx])) < 2:
        raise ValueError("the training split needs both lenses and non-lenses")
    fine_tune = config.fine_tune
    from_file = fine_tune is not None and fine_tune.start_from != "best"
    initial_location = fine_tune.start_from if from_file else config.init_from
    if initial_location is not None and initial_state is None:
        raise ValueError(f"{initial_location!r}: pass its state dict as initial_state")
    if initial_state is not None and initial_location is None:
        raise ValueError(
            "initial_state is only used when init_from or fine_tune.start_from names a file"
        )
    phases: list[tuple[int, PhaseSchedule]] = []
    if not from_file:
        phases.append((1, config.phase_one))
    if fine_tune is not None:
        phases.append((2, fine_tune))

    seed_everything(config.seed)
    model = build_model(config).to(device)
    extra: dict[str, Any] = {}
    if initial_state is not None and from_file:
        model.load_state_dict(dict(initial_state), strict=True)
    elif initial_state is not None:
        kept = load_backbone_state(model, initial_state, str(initial_location))
        extra["initialised_from"] = {"location": initial_location, "head_keys_not_loaded": kept}
    amp = amp_enabled(device, config.mixed_precision)
    loader = BatchLoader(
        images,
        labels,
        loss_weights(config, weights),
        train_idx,
        config.step_batch_size,
        shuffle=True,
        augmentations=config.augmentations,
        seed=config.seed,
    )
    history: list[dict[str, float]] = []
    best: dict[str, Any] = {"auc": -np.inf, "epoch": 0, "state": None}
    phase_records: list[dict[str, Any]] = []
    counters = {"seen": 0, "seconds": 0.0}

    def run_phase(number: int, schedule: PhaseSchedule) -> dict[str, Any]:
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=schedule.learning_rate, weight_decay=config.weight_decay
        )
        scheduler = make_scheduler(optimizer, schedule)
        scaler = torch.amp.GradScaler(device.type, enabled=amp)
        phase_best, phase_best_epoch, since_best, stopped = -np.inf, 0, 0, False
        for _ in range(schedule.epochs):
            epoch = len(history) + 1
            started = time.perf_counter()
            model.train()
            total, weight_sum = 0.0, 0.0
            lr = optimizer.param_groups[0]["lr"]
            for x_np, y_np, w_np in loader.epoch(epoch):
                x = torch.from_numpy(x_np).to(device, non_blocking=True)
                y = torch.from_numpy(y_np).to(device)
                w = torch.from_numpy(w_np).to(device)
                optimizer.zero_grad(set_to_none=True)
                loss = accumulate_gradients(
                    model, x, y, w, config.batch_size, scaler=scaler, mixed_precision=amp
                )
                scaler.step(optimizer)
                scaler.update()
                total += loss * float(w_np.sum())
                weight_sum += float(w_np.sum())
                counters["seen"] += len(x_np)
            train_time = time.perf_counter() - started
            counters["seconds"] += train_time
            scheduler.step()
            val_logits = predict_logits(
                model,
                images,
                val_idx,
                device,
                max(config.batch_size, 256),
                mixed_precision=config.mixed_precision,
            )
            val_auc = auc(labels[val_idx], val_logits)
            history.append(
                {
                    "epoch": epoch,
                    "phase": number,
                    "loss": total / max(weight_sum, 1e-12),
                    "val_auc": val_auc,
                    "lr": lr,
                    "seconds": time.perf_counter() - started,
                    "train_images_per_s": len(train_idx) / max(train_time, 1e-9),
                }
            )
            if log is not None:
                log(
                    f"phase {number} epoch {epoch}: loss {history[-1]['loss']:.4f}, "
                    f"val AUC {val_auc:.4f}"
                )
            improved = np.isfinite(val_auc) and val_auc > phase_best
            if improved:
                phase_best, phase_best_epoch, since_best = val_auc, epoch, 0
                phase_state = copy.deepcopy(model.state_dict())
                if val_auc > best["auc"]:
                    best.update(auc=val_auc, epoch=epoch, state=phase_state)
                if number == 1:
                    best["phase_one_state"] = phase_state
            else:
                since_best += 1
                patience = schedule.early_stopping_patience
                if patience is not None and since_best >= patience:
                    stopped = True
                    break
        return {
            "phase": number,
            "start_from": (
                (config.init_from or "scratch")
                if number == 1
                else getattr(schedule, "start_from", None)
            ),
            "epochs_run": sum(1 for h in history if h["phase"] == number),
            "best_epoch": phase_best_epoch or None,
            "best_val_auc": float(phase_best) if np.isfinite(phase_best) else None,
            "stopped_early": stopped,
        }

    for number, schedule in phases:
        if number == 2 and not from_file and best.get("phase_one_state") is not None:
            model.load_state_dict(best["phase_one_state"])
        phase_records.append(run_phase(number, schedule))
    last_state = copy.deepcopy(model.state_dict())
    best_state, best_epoch, best_auc = best["state"], best["epoch"], best["auc"]
    if best_state is None:  # val AUC undefined (one class): keep the last weights
        best_state, best_epoch, best_auc = last_state, len(history), float("nan")
    return TrainingResult(
        best_state={k: v.cpu() for k, v in best_state.items()},
        last_state={k: v.cpu() for k, v in last_state.items()},
        history=history,
        best_epoch=best_epoch,
        best_val_auc=float(best_auc),
        epochs_run=len(history),
        stopped_early=phase_records[-1]["stopped_early"],
        device=str(device),
        train_images_per_s=counters["seen"] / max(counters["seconds"], 1e-9),
        extra={"phases": phase_records, **extra},
    )
