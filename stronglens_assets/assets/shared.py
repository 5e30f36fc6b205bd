"""Wiring shared by several asset modules (so no asset module imports another's internals).

* the model-config partitions, the cutouts config and the parity manifest that training and
  evaluation read;
* the frozen model: loading ``model_checkpoint``'s ``best.pt`` for a config, and the blocking
  ``model_frozen`` check (seeds' check 4.9) of every consumer (evaluation, D06);
* training on a parity manifest (``model_checkpoint`` and the evaluation's ablation models);
* a model's evaluation thresholds (contract 2): :func:`model_thresholds_document` builds
  ``evaluation/<name>/thresholds.json`` from the val negatives' scores, and
  :func:`load_model_thresholds` reads it for every consumer (evaluation, D06).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
import torch
from pydantic import Field

from stronglens_assets.assets.metadata import ui_metadata
from stronglens_assets.config import ConfigError, StrictModel, load_config
from stronglens_assets.project import Project
from stronglens_assets.resources.storage import StorageResource
from stronglens_assets.science.core.columns import require_columns
from stronglens_assets.science.core.hashing import sha256_bytes
from stronglens_assets.science.imaging.preprocess import preprocessing_from
from stronglens_assets.science.learning.datasets import build_image_cache
from stronglens_assets.science.learning.model_config import (
    ModelConfig,
    load_model_config,
    model_config_names,
)
from stronglens_assets.science.learning.models import CheckpointError, model_from_checkpoint
from stronglens_assets.science.learning.training import (
    TrainingResult,
    sample_weights,
    train_model,
)
from stronglens_assets.science.stats.thresholds import (
    ThresholdsFormatError,
    ThresholdSpec,
    threshold_entries,
    thresholds_from_entries,
)
from stronglens_assets.storage_keys import (
    CHECKPOINT_KEY,
    EVALUATION_THRESHOLDS_KEY,
    PARITY_SPLITS_KEY,
    PREPROCESSING_KEY,
)

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
    """Storage key of the train / val / test parity manifest that training and evaluation
    read (``configs/cutouts.yaml`` version; the seeds' 70/30 file is a view beside it)."""
    return PARITY_SPLITS_KEY.format(version=load_cutouts_config(project).manifest_version)


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
    initial_state: Any = None,
    log: Any = None,
) -> TrainingResult:
    """Build (or reuse) the crop-once image cache of the parity manifest and train
    (``initial_state``: the fine-tune phase's starting checkpoint, see :func:`train_model`)."""
    images = build_image_cache(
        storage.object_store().read_bytes, manifest, cache_dir, config.preprocessing, source=source
    )
    labels = manifest["label"].to_numpy(np.int64)
    try:
        weights = sample_weights(manifest["tier"].to_numpy(), config.tier_weights)
    except ValueError as exc:
        raise ConfigError(f"model config {config.name}: field 'tier_weights': {exc}") from exc
    split = manifest["split"].astype(str).to_numpy()
    train_idx, val_idx = np.flatnonzero(split == "train"), np.flatnonzero(split == "val")
    return train_model(
        config,
        images,
        labels,
        weights,
        train_idx,
        val_idx,
        device,
        initial_state=initial_state,
        log=log,
    )


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
        description=(
            "Model freeze: this asset scored with the checkpoint (SHA-256) of "
            "model_checkpoint's latest materialization, so every result downstream comes "
            "from one trained model."
        ),
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
        metadata=ui_metadata(
            {
                "model_config": model_config,
                "checkpoint_sha256_used": used_sha256,
                "model_checkpoint_latest_sha256": latest or "(never materialized)",
            }
        ),
    )


def recorded_checkpoint_sha(instance: dg.DagsterInstance, model_config: str) -> str:
    """The sha256 ``model_checkpoint`` recorded for ``model_config`` (its latest
    materialization), for :func:`load_frozen_model`'s ``expected_sha256``: consumers check the
    checkpoint **before** scoring, so a corrupted or replaced ``best.pt`` fails without
    writing. :class:`~stronglens_assets.science.learning.models.CheckpointError` when
    ``model_checkpoint[model_config]`` was never materialized in this instance."""
    sha = latest_checkpoint_sha(instance, model_config)
    if sha is None:
        raise CheckpointError(
            f"model_checkpoint[{model_config}] has no materialization in this Dagster instance, "
            "so there is no recorded checkpoint sha256 to check best.pt against; materialize "
            f"model_checkpoint[{model_config}] first"
        )
    return sha


def load_frozen_model(
    storage_store: Any,
    model_config_name: str,
    config_dir: str | os.PathLike[str],
    *,
    profile: str,
    expected_sha256: str | None = None,
) -> tuple[torch.nn.Module, str]:
    """The trained (frozen) model of a config and the sha256 of its ``best.pt`` bytes
    (:data:`~stronglens_assets.storage_keys.CHECKPOINT_KEY`).

    Args:
        storage_store: an :class:`~stronglens_assets.resources.object_store.ObjectStore` or a
            storage resource (anything with ``read_bytes``, or ``object_store()``).
        model_config_name: a file stem of ``<config_dir>/models/``.
        profile: size profile of the config (the caller's settings decide it).
        expected_sha256: the sha256 its producer recorded (``model_checkpoint``'s
            ``checkpoint_sha256``, :func:`latest_checkpoint_sha`). When given, bytes that
            differ (a corrupted or replaced ``best.pt``: flipped bytes can still load) raise
            :class:`~stronglens_assets.science.learning.models.CheckpointError` naming the
            file, before any model is built, so nothing is scored or written with it.

    Returns:
        ``(model in eval mode on the CPU, sha256 hex)``. Record the sha256 in every output
        made with the model: the freeze check compares it with ``model_checkpoint``'s.
    """
    store = _object_store(storage_store)
    config = load_model_config(config_dir, model_config_name, profile)
    key = CHECKPOINT_KEY.format(name=model_config_name)
    data = store.read_bytes(key)
    sha = sha256_bytes(data)
    if expected_sha256 is not None and sha != expected_sha256:
        raise CheckpointError(
            f"{_where(store, key)}: sha256 {sha} does not match the {expected_sha256} that "
            f"model_checkpoint recorded for {model_config_name!r}: the checkpoint was "
            "corrupted or replaced after training; re-materialize model_checkpoint"
        )
    model = model_from_checkpoint(config, data, _where(store, key))
    recorded = checkpoint_preprocessing(store, model_config_name, sha)
    if recorded != config.preprocessing:
        raise PreprocessingMismatchError(
            f"{_where(store, key)} was trained with preprocessing "
            f"{recorded.model_dump()}, but model config {model_config_name!r} now says "
            f"{config.preprocessing.model_dump()}; re-materialize model_checkpoint"
            f"[{model_config_name}] (to score with other settings on purpose, pass "
            "preprocessing_override to the scoring functions)"
        )
    return model, sha


class PreprocessingMismatchError(ConfigError):
    """A checkpoint's recorded preprocessing differs from its model config's, or is missing."""


def _where(store: Any, key: str) -> str:
    return store.uri(key) if hasattr(store, "uri") else key


def preprocessing_record(model_name: str, checkpoint_sha256: str, settings: Any) -> bytes:
    """``checkpoints/<name>/preprocessing.json``: the preprocessing ``best.pt`` was trained
    with (or declared for a ``pretrained:`` import) and that checkpoint's sha256."""
    record = {
        "model_config": model_name,
        "checkpoint_sha256": checkpoint_sha256,
        "preprocessing": settings.model_dump(mode="json"),
    }
    return (json.dumps(record, indent=2, sort_keys=True) + "\n").encode()


def checkpoint_preprocessing(store: Any, model_name: str, checkpoint_sha256: str) -> Any:
    """The preprocessing recorded for the checkpoint with ``checkpoint_sha256``;
    :class:`PreprocessingMismatchError` naming the key when the record is missing, malformed
    or written for other weights."""
    key = PREPROCESSING_KEY.format(name=model_name)
    where = _where(store, key)
    if not store.exists(key):
        raise PreprocessingMismatchError(
            f"{where}: the checkpoint of {model_name!r} records no preprocessing; "
            f"re-materialize model_checkpoint[{model_name}]"
        )
    try:
        record = json.loads(store.read_bytes(key))
        settings = record["preprocessing"]
        sha = record["checkpoint_sha256"]
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise PreprocessingMismatchError(f"{where}: not a preprocessing record ({exc})") from exc
    if sha != checkpoint_sha256:
        raise PreprocessingMismatchError(
            f"{where}: recorded for checkpoint {sha}, not the current best.pt "
            f"{checkpoint_sha256}; re-materialize model_checkpoint[{model_name}]"
        )
    return preprocessing_from(settings, where)


THRESHOLD_SPLIT = "val"
"""Split whose negatives the FPR-derived thresholds rest on (the paper: validation negatives)."""


def _object_store(storage: Any) -> Any:
    return storage.object_store() if hasattr(storage, "object_store") else storage


def model_thresholds_document(
    model_name: str,
    checkpoint_sha256: str,
    negative_scores: np.ndarray,
    fixed: Sequence[float],
    fpr_targets: Sequence[float],
) -> dict[str, Any]:
    """``evaluation/<name>/thresholds.json`` (contract 2): fixed thresholds and one per FPR
    target derived from the :data:`THRESHOLD_SPLIT` negatives' ``negative_scores``, an
    unresolvable target kept with ``resolved: false`` and its reason."""
    scores = np.asarray(negative_scores, dtype=np.float64).ravel()
    return {
        "model": model_name,
        "split": THRESHOLD_SPLIT,
        "checkpoint_sha256": checkpoint_sha256,
        "n_negatives": int(scores.size),
        "thresholds": threshold_entries(scores, fixed, fpr_targets),
    }


def load_model_thresholds(
    storage: Any, model_name: str
) -> tuple[list[ThresholdSpec], list[dict[str, Any]]]:
    """``(resolved thresholds, unresolved entries)`` of a model's evaluation (contract 2).

    Args:
        storage: a storage resource or an object store.
        model_name: the model config (``evaluation_thresholds`` partition).

    Raises:
        ThresholdsFormatError: the file is missing, not JSON, for another model, or an entry
            is malformed; the message names the key.
    """
    store = _object_store(storage)
    key = EVALUATION_THRESHOLDS_KEY.format(name=model_name)
    where = _where(store, key)
    if not store.exists(key):
        raise ThresholdsFormatError(
            f"{where}: no thresholds for model {model_name!r}; materialize "
            f"evaluation_thresholds[{model_name}] first"
        )
    try:
        document = json.loads(store.read_bytes(key))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ThresholdsFormatError(f"{where}: not valid JSON ({exc})") from exc
    if not isinstance(document, dict) or "thresholds" not in document:
        raise ThresholdsFormatError(f"{where}: expected a mapping with a 'thresholds' list")
    if document.get("model") != model_name:
        raise ThresholdsFormatError(
            f"{where}: written for model {document.get('model')!r}, not {model_name!r}"
        )
    return thresholds_from_entries(document["thresholds"], where)
