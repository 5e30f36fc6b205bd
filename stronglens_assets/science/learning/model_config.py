"""Model configs: ``configs/models/<name>.yaml``, one ``model_checkpoint`` partition each.

A model config (validated by :class:`ModelConfig`, unknown fields are errors) holds the seeds'
settings (checks 4.1-4.3, 4.10): architecture, at most 50 epochs, early-stopping patience 10
on the validation AUC, cosine annealing of the learning rate, batch 256, mixed precision
(CUDA only), augmentations hflip/vflip/rot90 only, tier weights, seed; the preprocessing
(``preprocessing:``, :mod:`~stronglens_assets.science.imaging.preprocess`: the paper's
``raw_robust`` on the full 101 px stamp or the seeds' ``crop_robust`` 64 px crops; an unknown
method is a config error); plus the optimizer (AdamW), learning rate, the evaluation
settings and the annulus/core ablation.
Its ``profiles.demo`` block shrinks epochs and width for the embedded default, never the code
path. Used by the models (:mod:`.models`), the training loop (:mod:`.training`) and scoring.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from stronglens_assets.config import ConfigError, StrictModel, load_profiled_config
from stronglens_assets.science.imaging.preprocess import CropRobust, Preprocessing
from stronglens_assets.science.learning.datasets import SAFE_AUGMENTATIONS

__all__ = [
    "MODELS_DIRNAME",
    "TIERS",
    "AblationConfig",
    "EvaluationConfig",
    "InputMask",
    "ModelConfig",
    "load_model_config",
    "model_config_names",
    "models_dir",
]

MODELS_DIRNAME = "models"
TIERS: tuple[str, ...] = ("A", "B", "N1", "N2")


class InputMask(StrictModel):
    """Radial input mask (pixels of the network input, from its centre): keep
    ``inner <= r < outer``."""

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
    core-only keeps ``r < core_radius_px`` (the annulus is masked). Radii in input pixels
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
    """Evaluation settings (checks 4.5, 4.6; thresholds and prevalence of the paper).

    ``fixed_thresholds`` and ``fpr_targets``: the model's thresholds (detection ``p > t``),
    the FPR ones derived from its val negatives (``evaluation_thresholds``); an FPR target
    those negatives cannot resolve is recorded as unresolved and skipped by consumers, or is
    an error with ``require_fpr_thresholds``. ``deployment_prevalence``: lens fraction that
    prevalence-dependent metrics (ECE, precision) are reweighted to, besides the sample's.
    ``recall_confidence``: Wilson level of the Tier-A recall at every threshold.
    """

    calibration_bins: int = Field(default=15, ge=1)
    recall_threshold: float = Field(default=0.5, gt=0, lt=1)
    interval_confidence: float = Field(default=0.6827, gt=0, lt=1)
    stratum_quantile_bins: int = Field(default=3, ge=1)
    spectroscopic_match_arcsec: float = Field(default=1.0, gt=0)
    batch_size: int = Field(default=512, ge=1)
    fixed_thresholds: tuple[float, ...] = (0.3, 0.5, 0.7)
    fpr_targets: tuple[float, ...] = (1e-3, 1e-4)
    require_fpr_thresholds: bool = False
    deployment_prevalence: float = Field(default=1.0 / 94.0, gt=0, lt=1)
    recall_confidence: float = Field(default=0.95, gt=0, lt=1)

    @field_validator("fixed_thresholds")
    @classmethod
    def _scores(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        bad = [v for v in value if not 0.0 <= v < 1.0]
        if bad:
            raise ValueError(f"thresholds must be scores in [0, 1), got {bad}")
        return value

    @field_validator("fpr_targets")
    @classmethod
    def _rates(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        bad = [v for v in value if not 0.0 < v < 1.0]
        if bad:
            raise ValueError(f"FPR targets must be in (0, 1), got {bad}")
        return value


class ModelConfig(StrictModel):
    """``configs/models/<name>.yaml`` (see the module docstring)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    architecture: Literal["resnet18", "bottlenecked_resnet"]
    width: int = Field(default=64, ge=1)
    embedding_dim: int | None = Field(default=None, ge=1)
    dropout: float = Field(default=0.0, ge=0, lt=1)
    preprocessing: Preprocessing = Field(default_factory=CropRobust)
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

    @property
    def input_px(self) -> int:
        """Side of the network input in pixels (from the preprocessing)."""
        return self.preprocessing.output_px

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
    path = models_dir(config_dir) / f"{name}.yaml"
    config = load_profiled_config(path, ModelConfig, profile)
    if config.name != name:
        raise ConfigError(f"invalid config {path}:\n  name: {config.name!r} must equal {name!r}")
    return config
