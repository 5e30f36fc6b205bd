"""Training assets: ``model_checkpoint``, one partition per model config in ``configs/models/``.

``model_checkpoint`` trains the config's network on the 70/30 parity manifest (or, when the
config names ``pretrained:``, imports and validates that checkpoint instead) and writes through
the storage resource::

    checkpoints/<config>/best.pt        torch state dict, highest validation AUC
    checkpoints/<config>/last.pt        torch state dict after the last epoch
    checkpoints/<config>/history.json   per epoch: loss, val AUC, lr, seconds, images/s

Its IO-managed value is a small JSON dict (``model_config``, ``checkpoint_key``, ``sha256`` of
the ``best.pt`` bytes, ...). It runs on the GPU pool (``pool="gpu"``, dagster-k8s GPU tags);
the device comes from the ``compute`` resource. Every consumer of the model records the
sha256 it used; :func:`frozen_model_check` compares it with ``model_checkpoint``'s latest
materialization (seeds' check 4.9, blocking).
"""

import json
import math
import urllib.request
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd

from stronglens_assets.assets.cutouts import PARITY_KEY, CutoutsConfig
from stronglens_assets.config import ConfigError, load_config
from stronglens_assets.project import Project
from stronglens_assets.resources.compute import GPU_POOL, ComputeResource, gpu_op_tags
from stronglens_assets.resources.storage import StorageResource
from stronglens_assets.science.core.hashing import sha256_bytes
from stronglens_assets.science.learning.datasets import build_image_cache
from stronglens_assets.science.learning.model_config import (
    ModelConfig,
    load_model_config,
    model_config_names,
)
from stronglens_assets.science.learning.models import (
    build_model,
    load_checked_state_dict,
    read_state_dict,
    state_dict_bytes,
)
from stronglens_assets.science.learning.scoring import (
    CHECKPOINT_KEY,
    HISTORY_KEY,
    LAST_CHECKPOINT_KEY,
)
from stronglens_assets.science.learning.training import TrainingResult, sample_weights, train_model
from stronglens_assets.science.reporting.plots import png_data_uri_markdown, training_curve_png

TRAINING_GROUP = "training"
MODEL_CHECKPOINT = "model_checkpoint"
FROZEN_CHECK = "model_frozen"


def model_config_partitions(project: Project) -> dg.StaticPartitionsDefinition:
    """Static partitions: the model config files of ``<config_dir>/models``."""
    from stronglens_assets.partitions import static_partitions_def

    names = model_config_names(project.settings.config_dir)
    if not names:
        raise ConfigError(f"no model configs in {project.settings.config_dir / 'models'}")
    return static_partitions_def(names)


def parity_manifest_key(project: Project) -> str:
    """Storage key of the 70/30 parity manifest (``configs/cutouts.yaml`` version)."""
    config = load_config(project.settings.config_dir / "cutouts.yaml", CutoutsConfig)
    return PARITY_KEY.format(version=config.manifest_version)


def load_parity_manifest(storage: StorageResource, key: str) -> pd.DataFrame:
    manifest = storage.read_value(key)
    required = {"object_id", "label", "tier", "split", "cutout_key", "cutout_row"}
    missing = sorted(required - set(manifest.columns))
    if missing:
        raise ConfigError(f"{storage.uri(key)}: parity manifest has no column(s) {missing}")
    return manifest


def fetch_pretrained(location: str, config_dir: Path, s3_endpoint_url: str | None = None) -> bytes:
    """Bytes of a ``pretrained:`` checkpoint: a local path (relative to ``config_dir``),
    ``s3://bucket/key`` (standard AWS credential chain, botocore retries as every S3 client
    here) or ``https://`` URL. Any failure is a :class:`ConfigError` naming the location."""
    try:
        if location.startswith("s3://"):
            from stronglens_assets.resources.object_store import make_s3_client

            bucket, _, key = location.removeprefix("s3://").partition("/")
            client = make_s3_client(endpoint_url=s3_endpoint_url)
            return client.get_object(Bucket=bucket, Key=key)["Body"].read()
        if location.startswith("https://"):
            with urllib.request.urlopen(location, timeout=120) as response:
                return response.read()
    except Exception as exc:
        raise ConfigError(
            f"pretrained checkpoint {location} cannot be fetched: {type(exc).__name__}: {exc}"
        ) from exc
    path = Path(location).expanduser()
    if not path.is_absolute():
        path = config_dir / path
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"pretrained checkpoint {path} cannot be read: {exc}") from exc


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


def build_assets(project: Project) -> list:
    settings = project.settings
    partitions = model_config_partitions(project)
    for name in partitions.get_partition_keys():  # validate every config at load time
        load_model_config(settings.config_dir, name, settings.profile)
    parity_key = parity_manifest_key(project)

    @dg.asset(
        name=MODEL_CHECKPOINT,
        group_name=TRAINING_GROUP,
        partitions_def=partitions,
        kinds={"pytorch"},
        deps=["training_manifest"],
        pool=GPU_POOL,
        op_tags=gpu_op_tags(settings.config_dir),
    )
    def model_checkpoint(
        context: dg.AssetExecutionContext,
        storage: dg.ResourceParam[StorageResource],
        compute: dg.ResourceParam[ComputeResource],
    ) -> dg.Output[dict]:
        """Trained weights of one model config (``best.pt``, ``last.pt``, ``history.json``),
        or its validated ``pretrained:`` checkpoint; GPU-tagged, device from ``compute``."""
        name = context.partition_key
        config = load_model_config(settings.config_dir, name, settings.profile)
        device = compute.torch_device()
        store = storage.object_store()
        metadata: dict[str, Any] = {"device": str(device), "profile": settings.profile}
        if config.pretrained:
            data = fetch_pretrained(
                config.pretrained, settings.config_dir, settings.s3_endpoint_url
            )
            model = build_model(config)
            load_checked_state_dict(
                model, read_state_dict(data, config.pretrained), config.pretrained
            )
            best = last = state_dict_bytes(model)
            history: dict[str, Any] = {"pretrained": config.pretrained, "epochs": []}
            metadata["pretrained"] = config.pretrained
        else:
            manifest = load_parity_manifest(storage, parity_key)
            result = train_on_manifest(
                config,
                manifest,
                storage,
                settings.cache_dir / "training_images",
                device,
                source=store.uri(parity_key),
                log=context.log.info,
            )
            best, last = state_dict_bytes(result.best_state), state_dict_bytes(result.last_state)
            history = json_safe(
                {
                    "model_config": name,
                    "epochs": result.history,
                    "best_epoch": result.best_epoch,
                    "best_val_auc": result.best_val_auc,
                    "stopped_early": result.stopped_early,
                    "device": result.device,
                    "train_rows": int((manifest["split"] == "train").sum()),
                    "val_rows": int((manifest["split"] == "val").sum()),
                }
            )
            png = training_curve_png(result.history, f"{name}: training curve")
            metadata.update(
                {
                    "best_val_auc": result.best_val_auc,
                    "epochs_run": result.epochs_run,
                    "best_epoch": result.best_epoch,
                    "early_stop_epoch": result.epochs_run if result.stopped_early else None,
                    "train_images_per_s": result.train_images_per_s,
                    "training_curve": dg.MetadataValue.md(
                        png_data_uri_markdown(png, f"{name} training curve")
                    ),
                }
            )
        sha = sha256_bytes(best)
        # best.pt last: a reader that sees the new best.pt also sees its history and last.pt.
        store.write_bytes(HISTORY_KEY.format(name=name), _history_bytes(history))
        store.write_bytes(LAST_CHECKPOINT_KEY.format(name=name), last)
        uri = store.write_bytes(CHECKPOINT_KEY.format(name=name), best)
        metadata.update({"checkpoint_sha256": sha, "checkpoint": dg.MetadataValue.path(uri)})
        value = {
            "model_config": name,
            "checkpoint_key": CHECKPOINT_KEY.format(name=name),
            "last_key": LAST_CHECKPOINT_KEY.format(name=name),
            "history_key": HISTORY_KEY.format(name=name),
            "sha256": sha,
            "architecture": config.architecture,
            "pretrained": config.pretrained,
            "best_val_auc": metadata.get("best_val_auc"),
        }
        metadata = {k: v for k, v in metadata.items() if v is not None}
        return dg.Output(json_safe(value), metadata=json_safe(metadata))

    return [model_checkpoint]


def _history_bytes(history: dict[str, Any]) -> bytes:
    return (json.dumps(history, sort_keys=True, indent=2, allow_nan=False) + "\n").encode()


__all__ = [
    "FROZEN_CHECK",
    "MODEL_CHECKPOINT",
    "fetch_pretrained",
    "frozen_check_spec",
    "frozen_model_check",
    "latest_checkpoint_sha",
    "model_config_partitions",
]
