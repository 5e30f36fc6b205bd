"""Wiring shared by several asset modules (so no asset module imports another's internals).

* the model-config partitions, the cutouts config and the parity manifest that training and
  evaluation read;
* the frozen model: loading ``model_checkpoint``'s ``best.pt`` for a config, and the blocking
  ``model_frozen`` check (seeds' check 4.9) of every consumer (evaluation, D06);
* training on a parity manifest (``model_checkpoint`` and the evaluation's ablation models).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
import torch
from pydantic import Field

from stronglens_assets.config import ConfigError, StrictModel, load_config
from stronglens_assets.errors import StronglensError
from stronglens_assets.project import Project
from stronglens_assets.resources.storage import StorageResource
from stronglens_assets.science.core.columns import require_columns
from stronglens_assets.science.core.hashing import sha256_bytes
from stronglens_assets.science.learning.datasets import build_image_cache
from stronglens_assets.science.learning.model_config import (
    ModelConfig,
    load_model_config,
    model_config_names,
)
from stronglens_assets.science.learning.models import model_from_checkpoint
from stronglens_assets.science.learning.training import (
    TrainingResult,
    sample_weights,
    train_model,
)
from stronglens_assets.science.stats.thresholds import ThresholdSpec
from stronglens_assets.storage_keys import CHECKPOINT_KEY, EVALUATION_THRESHOLDS_KEY, PARITY_KEY

MODEL_CHECKPOINT = "model_checkpoint"
FROZEN_CHECK = "model_frozen"
CUTOUTS_CONFIG_FILENAME = "cutouts.yaml"


class CutoutsConfig(StrictModel):
    """``configs/cutouts.yaml``."""

    cutout_size: int = Field(default=101, ge=3)
    bands: tuple[str, ...] = ("g", "r", "z")
    max_zero_invvar_fraction: float = Field(default=0.05, ge=0, le=1)
    shard_size: int = Field(default=256, ge=1)
    mock_tier_a_min_residual_snr: float = Field(default=150.0, gt=0)
    exclude_gated_positives: bool = True
    tier_weights: dict[str, float] = Field(default_factory=dict)
    parity_splits: dict[str, list[str]] = Field(default_factory=dict)
    manifest_version: str = "v1"


def load_cutouts_config(project: Project) -> CutoutsConfig:
    """``<config_dir>/cutouts.yaml`` (:class:`ConfigError` names the file and field)."""
    return load_config(project.settings.config_dir / CUTOUTS_CONFIG_FILENAME, CutoutsConfig)


def model_config_partitions(project: Project) -> dg.StaticPartitionsDefinition:
    """Static partitions: the model config files of ``<config_dir>/models``."""
    from stronglens_assets.partitions import static_partitions_def

    names = model_config_names(project.settings.config_dir)
    if not names:
        raise ConfigError(f"no model configs in {project.settings.config_dir / 'models'}")
    return static_partitions_def(names)


def parity_manifest_key(project: Project) -> str:
    """Storage key of the 70/30 parity manifest (``configs/cutouts.yaml`` version)."""
    return PARITY_KEY.format(version=load_cutouts_config(project).manifest_version)


def load_parity_manifest(storage: StorageResource, key: str) -> pd.DataFrame:
    """The parity manifest at ``key``; :class:`ConfigError` names its missing columns."""
    manifest = storage.read_value(key)
    require_columns(
        manifest.columns,
        ("cutout_key", "cutout_row", "label", "object_id", "split", "tier"),
        f"{storage.uri(key)}: parity manifest",
        error=ConfigError,
    )
    return manifest


def json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value


def train_on_manifest(
    config: ModelConfig,
    manifest: pd.DataFrame,
    storage: StorageResource,
    cache_dir: Path,
    device: Any,
    *,
    source: str,
    log: Any = None,
) -> TrainingResult:
    """Build (or reuse) the crop-once image cache of the parity manifest and train."""
    images = build_image_cache(
        storage.object_store().read_bytes, manifest, cache_dir, config.crop, source=source
    )
    labels = manifest["label"].to_numpy(np.int64)
    try:
        weights = sample_weights(manifest["tier"].to_numpy(), config.tier_weights)
    except ValueError as exc:
        raise ConfigError(f"model config {config.name}: field 'tier_weights': {exc}") from exc
    split = manifest["split"].astype(str).to_numpy()
    train_idx, val_idx = np.flatnonzero(split == "train"), np.flatnonzero(split == "val")
    return train_model(config, images, labels, weights, train_idx, val_idx, device, log=log)


def latest_checkpoint_sha(instance: dg.DagsterInstance, model_config: str) -> str | None:
    """``checkpoint_sha256`` of ``model_checkpoint``'s latest materialization of a partition."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey(MODEL_CHECKPOINT), asset_partitions=[model_config]
        ),
        limit=1,
    ).records
    if not records:
        return None
    materialization = records[0].asset_materialization
    value = materialization.metadata.get("checkpoint_sha256") if materialization else None
    return None if value is None else str(value.value)


def frozen_check_spec(asset: str) -> dg.AssetCheckSpec:
    """The blocking spec of :func:`frozen_model_check` on a consumer ``asset``."""
    return dg.AssetCheckSpec(
        FROZEN_CHECK,
        asset=asset,
        blocking=True,
        description="the checkpoint used is model_checkpoint's latest (seeds' check 4.9)",
    )


def frozen_model_check(
    context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext,
    model_config: str,
    used_sha256: str,
    *,
    asset_key: dg.AssetKey | str | None = None,
) -> dg.AssetCheckResult:
    """Seeds' check 4.9 (freeze the model): the checkpoint a consumer used must be
    ``model_checkpoint``'s latest. ERROR severity, so a blocking spec stops downstream steps.

    Use in a consumer asset declared with ``check_specs=[frozen_check_spec(asset)]``.
    """
    latest = latest_checkpoint_sha(context.instance, model_config)
    return dg.AssetCheckResult(
        check_name=FROZEN_CHECK,
        asset_key=asset_key,
        passed=latest is not None and latest == used_sha256,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "model_config": model_config,
            "checkpoint_sha256_used": used_sha256,
            "model_checkpoint_latest_sha256": latest or "(never materialized)",
        },
    )


def load_frozen_model(
    storage_store: Any,
    model_config_name: str,
    config_dir: str | os.PathLike[str],
    *,
    profile: str,
) -> tuple[torch.nn.Module, str]:
    """The trained (frozen) model of a config and the sha256 of its ``best.pt`` bytes
    (:data:`~stronglens_assets.storage_keys.CHECKPOINT_KEY`).

    Args:
        storage_store: an :class:`~stronglens_assets.resources.object_store.ObjectStore` or a
            storage resource (anything with ``read_bytes``, or ``object_store()``).
        model_config_name: a file stem of ``<config_dir>/models/``.
        profile: size profile of the config (the caller's settings decide it).

    Returns:
        ``(model in eval mode on the CPU, sha256 hex)``. Record the sha256 in every output
        made with the model: the freeze check compares it with ``model_checkpoint``'s.
    """
    store = (
        storage_store.object_store() if hasattr(storage_store, "object_store") else storage_store
    )
    config = load_model_config(config_dir, model_config_name, profile)
    key = CHECKPOINT_KEY.format(name=model_config_name)
    data = store.read_bytes(key)
    model = model_from_checkpoint(config, data, store.uri(key) if hasattr(store, "uri") else key)
    return model, sha256_bytes(data)


class ModelThresholdsError(StronglensError, ValueError):
    """A model's evaluation thresholds file is missing or malformed; the message names it."""


def load_model_thresholds(
    storage: Any, model_name: str
) -> tuple[list[ThresholdSpec], list[dict[str, Any]]]:
    """The resolved thresholds and the unresolved entries of a model's evaluation (contract 2:
    ``evaluation/<name>/thresholds.json``); a missing or malformed file is an error naming
    the key."""
    key = EVALUATION_THRESHOLDS_KEY.format(name=model_name)
    store = storage.object_store() if hasattr(storage, "object_store") else storage
    uri = store.uri(key)
    if not store.exists(key):
        raise ModelThresholdsError(
            f"{uri} is missing: materialize the evaluation of model {model_name!r} first"
        )
    try:
        document = json.loads(store.read_bytes(key))
        entries = document["thresholds"]
        resolved, unresolved = [], []
        for entry in entries:
            if entry.get("resolved", True) and entry.get("value") is not None:
                resolved.append(
                    ThresholdSpec(
                        str(entry["label"]),
                        float(entry["value"]),
                        None if entry.get("fpr_target") is None else float(entry["fpr_target"]),
                        None if entry.get("n_negatives") is None else int(entry["n_negatives"]),
                    )
                )
            else:
                unresolved.append(dict(entry))
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelThresholdsError(f"{uri}: malformed thresholds file ({exc!r})") from exc
    return resolved, unresolved
