"""Model configs and the training loop (one code path for CPU and CUDA).

A model config (``configs/models/<name>.yaml``, validated by :class:`ModelConfig`) holds the
seeds' settings (checks 4.1-4.3, 4.10): architecture, at most 50 epochs, early-stopping
patience 10 on the validation AUC, cosine annealing of the learning rate, batch 256 of 64x64
centre crops, mixed precision (CUDA only), augmentations hflip/vflip/rot90 only, tier weights,
seed; plus the optimizer (AdamW) and learning rate. Its ``profiles.demo`` block shrinks
epochs and width for the embedded default, never the code path.

Training (:func:`train_model`): loss = tier-weighted binary cross-entropy on the logit,
``sum(w_i * bce_i) / sum(w_i)`` per batch; AdamW; ``CosineAnnealingLR`` stepped once per epoch
over ``epochs``; validation AUC (scikit-learn) after every epoch; the best state (highest val
AUC) is kept; training stops when the AUC has not improved for ``early_stopping_patience``
epochs. Determinism: ``torch.manual_seed(seed)`` before the model is built, deterministic
algorithms, a data order drawn from ``seed`` and the epoch number: the same seed on the same
CPU thread count gives the same checkpoint bytes.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field, field_validator, model_validator

from stronglens_assets.config import StrictModel, load_profiled_config
from stronglens_assets.science.learning.datasets import SAFE_AUGMENTATIONS, BatchLoader
from stronglens_assets.science.learning.models import build_model
from stronglens_assets.science.stats.roc import auc

MODELS_DIRNAME = "models"
TIERS: tuple[str, ...] = ("A", "B", "N1", "N2")


class InputMask(StrictModel):
    """Radial input mask (pixels of the crop, from its centre): keep ``inner <= r < outer``."""

    inner_px: float = Field(default=0.0, ge=0)
    outer_px: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> InputMask:
        if self.outer_px is not None and self.outer_px <= self.inner_px:
            raise ValueError("outer_px must be larger than inner_px")
        return self


class AblationConfig(StrictModel):
    """Annulus/core ablation (checks 4.7, 4.8): the same architecture trained twice.

    Annulus-only input keeps ``core_radius_px <= r < annulus_outer_px`` (the core is masked);
    core-only keeps ``r < core_radius_px`` (the annulus is masked). Radii in crop pixels
    (0.262"/px). ``epochs``/``early_stopping_patience`` default to the model's.
    """

    core_radius_px: float = Field(default=5.0, gt=0)
    annulus_outer_px: float | None = Field(default=20.0, gt=0)
    epochs: int | None = Field(default=None, ge=1)
    early_stopping_patience: int | None = Field(default=None, ge=1)
    bootstrap_samples: int = Field(default=1000, ge=10)

    @model_validator(mode="after")
    def _ordered(self) -> AblationConfig:
        if self.annulus_outer_px is not None and self.annulus_outer_px <= self.core_radius_px:
            raise ValueError("annulus_outer_px must be larger than core_radius_px")
        return self


class EvaluationConfig(StrictModel):
    """Evaluation settings (checks 4.5, 4.6)."""

    calibration_bins: int = Field(default=15, ge=1)
    recall_threshold: float = Field(default=0.5, gt=0, lt=1)
    interval_confidence: float = Field(default=0.6827, gt=0, lt=1)
    stratum_quantile_bins: int = Field(default=3, ge=1)
    spectroscopic_match_arcsec: float = Field(default=1.0, gt=0)
    batch_size: int = Field(default=512, ge=1)


class ModelConfig(StrictModel):
    """``configs/models/<name>.yaml`` (see the module docstring)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    architecture: Literal["resnet18", "bottlenecked_resnet"]
    width: int = Field(default=64, ge=1)
    embedding_dim: int | None = Field(default=None, ge=1)
    dropout: float = Field(default=0.0, ge=0, lt=1)
    crop: int = Field(default=64, ge=8, le=101)
    input_mask: InputMask | None = None
    seed: int = Field(default=1337, ge=0)
    epochs: int = Field(default=50, ge=1, le=50)
    early_stopping_patience: int = Field(default=10, ge=1)
    batch_size: int = Field(default=256, ge=1)
    optimizer: Literal["adamw"] = "adamw"
    learning_rate: float = Field(default=3e-4, gt=0)
    weight_decay: float = Field(default=1e-4, ge=0)
    scheduler: Literal["cosine"] = "cosine"
    min_learning_rate: float = Field(default=0.0, ge=0)
    mixed_precision: bool = True
    augmentations: tuple[str, ...] = SAFE_AUGMENTATIONS
    tier_weights: dict[str, float] = Field(
        default_factory=lambda: {"A": 1.0, "B": 0.5, "N1": 1.0, "N2": 1.0}
    )
    pretrained: str | None = None
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    ablation: AblationConfig = Field(default_factory=AblationConfig)

    @field_validator("augmentations")
    @classmethod
    def _safe(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(SAFE_AUGMENTATIONS))
        if unknown:
            raise ValueError(
                f"unsafe or unknown augmentation(s) {unknown}; safe: {SAFE_AUGMENTATIONS}"
            )
        return value

    @field_validator("tier_weights")
    @classmethod
    def _weights(cls, value: dict[str, float]) -> dict[str, float]:
        bad = {k: v for k, v in value.items() if not v >= 0}
        if bad:
            raise ValueError(f"tier weights must be >= 0, got {bad}")
        return value

    @field_validator("pretrained")
    @classmethod
    def _location(cls, value: str | None) -> str | None:
        if value is not None and "://" in value and not value.startswith(("s3://", "https://")):
            raise ValueError("must be a local path, an s3:// URI or an https:// URL")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ModelConfig:
        if self.architecture == "bottlenecked_resnet" and self.embedding_dim is None:
            raise ValueError("embedding_dim is required for architecture 'bottlenecked_resnet'")
        if self.architecture == "resnet18" and self.embedding_dim is not None:
            raise ValueError("embedding_dim applies to 'bottlenecked_resnet' only")
        return self

    def variant(self, suffix: str, input_mask: InputMask) -> ModelConfig:
        """This config with an input mask (the ablation models), epochs from ``ablation``."""
        return self.model_copy(
            update={
                "name": f"{self.name}__{suffix}",
                "input_mask": input_mask,
                "epochs": self.ablation.epochs or self.epochs,
                "early_stopping_patience": (
                    self.ablation.early_stopping_patience or self.early_stopping_patience
                ),
                "pretrained": None,
            }
        )


def models_dir(config_dir: str | os.PathLike[str]) -> Path:
    return Path(config_dir) / MODELS_DIRNAME


def model_config_names(config_dir: str | os.PathLike[str]) -> list[str]:
    """Names of the model configs: the ``*.yaml`` files of ``<config_dir>/models``, sorted."""
    return sorted(p.stem for p in models_dir(config_dir).glob("*.yaml"))


def load_model_config(
    config_dir: str | os.PathLike[str], name: str, profile: str = "full"
) -> ModelConfig:
    """Load and validate ``<config_dir>/models/<name>.yaml`` for ``profile``.

    :class:`~stronglens_assets.config.ConfigError` names the file and field; the ``name``
    field must equal the file name.
    """
    from stronglens_assets.config import ConfigError

    path = models_dir(config_dir) / f"{name}.yaml"
    config = load_profiled_config(path, ModelConfig, profile)
    if config.name != name:
        raise ConfigError(f"invalid config {path}:\n  name: {config.name!r} must equal {name!r}")
    return config


def load_model_config_by_name(name: str) -> ModelConfig:
    """Load a model config with the current settings (config dir and profile)."""
    from stronglens_assets.settings import load_settings

    settings = load_settings()
    return load_model_config(settings.config_dir, name, settings.profile)


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA) and ask for deterministic algorithms."""
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    if torch.backends.cudnn.is_available():
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


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
