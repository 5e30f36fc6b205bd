"""Model configs: ``configs/models/<name>.yaml``, one ``model_checkpoint`` partition each.

A model config (validated by :class:`ModelConfig`, unknown fields are errors) holds the seeds'
settings (checks 4.1-4.3, 4.10): architecture, epochs, early-stopping patience on the
validation AUC, the learning-rate schedule, batch size, mixed precision (CUDA only),
augmentations hflip/vflip/rot90 only, tier weights, seed; the preprocessing
(``preprocessing:``, :mod:`~stronglens_assets.science.imaging.preprocess`: the paper's
``raw_robust`` on the full 101 px stamp or the seeds' ``crop_robust`` 64 px crops; an unknown
method is a config error); plus the optimizer (AdamW), the evaluation settings and the
annulus/core ablation. The paper's protocol adds (see
``configs/models/paperIV_efficientnet_v2_s.yaml``): the EfficientNetV2-S architecture,
unweighted BCE (``loss: bce``), gradient accumulation (``effective_batch_size``), a step
schedule (``scheduler: step``) and a fine-tune phase (``fine_tune``). Its ``profiles.demo``
block shrinks epochs and width for the embedded default, never the code path. Used by the
models (:mod:`.models`), the training loop (:mod:`.training`) and scoring.
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
    "FineTuneConfig",
    "InputMask",
    "ModelConfig",
    "PhaseSchedule",
    "load_model_config",
    "model_config_names",
    "models_dir",
]

MODELS_DIRNAME = "models"
TIERS: tuple[str, ...] = ("A", "B", "N1", "N2")
RESNETS: tuple[str, ...] = ("resnet18", "bottlenecked_resnet")


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


class PhaseSchedule(StrictModel):
    """Epochs, learning-rate schedule and early stopping of one training phase.

    ``scheduler: cosine``: ``CosineAnnealingLR`` from ``learning_rate`` to
    ``min_learning_rate`` over ``epochs``; ``scheduler: step``: ``StepLR``, the rate times
    ``lr_step_factor`` every ``lr_step_epochs`` epochs. Both are stepped once per epoch.
    ``early_stopping_patience``: epochs without a better validation AUC before the phase
    stops (``null``: run every epoch; the best epoch is kept either way).
    """

    epochs: int = Field(default=50, ge=1)
    early_stopping_patience: int | None = Field(default=10, ge=1)
    learning_rate: float = Field(default=3e-4, gt=0)
    scheduler: Literal["cosine", "step"] = "cosine"
    min_learning_rate: float = Field(default=0.0, ge=0)
    lr_step_epochs: int | None = Field(default=None, ge=1)
    lr_step_factor: float = Field(default=0.5, gt=0, le=1)

    @model_validator(mode="after")
    def _schedule(self) -> PhaseSchedule:
        if self.scheduler == "step" and self.lr_step_epochs is None:
            raise ValueError("scheduler 'step' needs lr_step_epochs")
        if self.scheduler != "step" and self.lr_step_epochs is not None:
            raise ValueError("lr_step_epochs applies to scheduler 'step' only")
        return self


class FineTuneConfig(PhaseSchedule):
    """A second training phase (the paper's phase 2) with its own epochs and schedule.

    ``start_from: best`` starts from phase 1's best state (highest validation AUC);
    otherwise ``start_from`` is a checkpoint (local path relative to the config directory,
    ``s3://`` or ``https://``, as ``pretrained:``) and phase 1 is skipped. The optimizer
    (AdamW, the model's weight decay) starts afresh. Validation AUC chooses the best epoch
    over both phases.
    """

    start_from: str = "best"
    epochs: int = Field(ge=1)
    learning_rate: float = Field(gt=0)

    @field_validator("start_from")
    @classmethod
    def _location(cls, value: str) -> str:
        return _checkpoint_location(value)


def _checkpoint_location(value: str) -> str:
    if "://" in value and not value.startswith(("s3://", "https://")):
        raise ValueError("must be a local path, an s3:// URI or an https:// URL")
    return value


class ModelConfig(PhaseSchedule):
    """``configs/models/<name>.yaml`` (see the module docstring).

    Architecture fields: ``width`` and ``embedding_dim`` apply to the ResNets;
    ``width_multiplier``, ``depth_multiplier`` and ``stochastic_depth_prob`` to
    ``efficientnet_v2_s``; ``dropout`` (before the head) to both. Loss: ``bce`` is unweighted
    binary cross-entropy (the paper's), ``tier_weighted_bce`` weights rows by ``tier_weights``
    (the seeds'). ``batch_size`` is the micro-batch one forward/backward pass sees;
    ``effective_batch_size`` (a multiple of it, default equal) is the batch of one optimizer
    step, gradients accumulated over its micro-batches. ``init_from`` (local path relative to
    the config directory, ``s3://`` or ``https://``; optional ``init_from_sha256`` of its bytes)
    is a checkpoint phase 1 starts from, e.g. torchvision's ImageNet-1K weights: every key but
    the head's must match, the head (``fc``/``bottleneck``/``classifier``) keeps its fresh
    initialisation where the file's differs (1000 ImageNet classes vs one logit).
    """

    name: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    architecture: Literal["resnet18", "bottlenecked_resnet", "efficientnet_v2_s"]
    width: int = Field(default=64, ge=1)
    embedding_dim: int | None = Field(default=None, ge=1)
    width_multiplier: float = Field(default=1.0, gt=0)
    depth_multiplier: float = Field(default=1.0, gt=0)
    stochastic_depth_prob: float = Field(default=0.0, ge=0, lt=1)
    dropout: float = Field(default=0.0, ge=0, lt=1)
    preprocessing: Preprocessing = Field(default_factory=CropRobust)
    input_mask: InputMask | None = None
    seed: int = Field(default=1337, ge=0)
    batch_size: int = Field(default=256, ge=1)
    effective_batch_size: int | None = Field(default=None, ge=1)
    optimizer: Literal["adamw"] = "adamw"
    weight_decay: float = Field(default=1e-4, ge=0)
    loss: Literal["tier_weighted_bce", "bce"] = "tier_weighted_bce"
    fine_tune: FineTuneConfig | None = None
    mixed_precision: bool = True
    augmentations: tuple[str, ...] = SAFE_AUGMENTATIONS
    tier_weights: dict[str, float] = Field(
        default_factory=lambda: {"A": 1.0, "B": 0.5, "N1": 1.0, "N2": 1.0}
    )
    pretrained: str | None = None
    init_from: str | None = None
    init_from_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
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

    @field_validator("pretrained", "init_from")
    @classmethod
    def _location(cls, value: str | None) -> str | None:
        return None if value is None else _checkpoint_location(value)

    @model_validator(mode="after")
    def _consistent(self) -> ModelConfig:
        if self.architecture == "bottlenecked_resnet" and self.embedding_dim is None:
            raise ValueError("embedding_dim is required for architecture 'bottlenecked_resnet'")
        if self.architecture != "bottlenecked_resnet" and self.embedding_dim is not None:
            raise ValueError("embedding_dim applies to 'bottlenecked_resnet' only")
        given = self.model_fields_set
        if self.architecture in RESNETS:
            wrong = sorted(
                given & {"width_multiplier", "depth_multiplier", "stochastic_depth_prob"}
            )
            if wrong:
                raise ValueError(f"{wrong} apply to 'efficientnet_v2_s' only (ResNets: width)")
        elif "width" in given:
            raise ValueError(
                "width applies to the ResNets; 'efficientnet_v2_s' uses width_multiplier"
            )
        if self.init_from is not None:
            if self.pretrained is not None:
                raise ValueError("init_from starts training; pretrained skips it: set one")
            if self.fine_tune is not None and self.fine_tune.start_from != "best":
                raise ValueError("init_from starts phase 1, which fine_tune.start_from skips")
        elif self.init_from_sha256 is not None:
            raise ValueError("init_from_sha256 applies with init_from only")
        if self.effective_batch_size is not None and self.effective_batch_size % self.batch_size:
            raise ValueError(
                f"effective_batch_size {self.effective_batch_size} must be a multiple of "
                f"batch_size {self.batch_size}"
            )
        return self

    @property
    def step_batch_size(self) -> int:
        """Rows per optimizer step (``effective_batch_size``, default ``batch_size``)."""
        return self.effective_batch_size or self.batch_size

    @property
    def phase_one(self) -> PhaseSchedule:
        """The first phase's epochs, schedule and early stopping."""
        return PhaseSchedule(**{k: getattr(self, k) for k in PhaseSchedule.model_fields})

    @property
    def input_px(self) -> int:
        """Side of the network input in pixels (from the preprocessing)."""
        return self.preprocessing.output_px

    def variant(self, suffix: str, input_mask: InputMask) -> ModelConfig:
        """This config with an input mask (the ablation models), epochs from ``ablation``.

        Trained from scratch: no ``pretrained``; a fine-tune phase is kept only when it
        starts from the variant's own phase 1 (``start_from: best``).
        """
        fine_tune = self.fine_tune
        if fine_tune is not None and fine_tune.start_from != "best":
            fine_tune = None
        return self.model_copy(
            update={
                "name": f"{self.name}__{suffix}",
                "input_mask": input_mask,
                "epochs": self.ablation.epochs or self.epochs,
                "early_stopping_patience": (
                    self.ablation.early_stopping_patience or self.early_stopping_patience
                ),
                "pretrained": None,
                "fine_tune": fine_tune,
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
