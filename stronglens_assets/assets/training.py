"""Training assets: ``model_checkpoint``, one partition per model config in ``configs/models/``.

``model_checkpoint`` trains the config's network on the parity manifest's train split, picking
the epoch on its val split (test is left for the evaluation; or, when the config names
``pretrained:``, imports and validates that checkpoint instead; a fine-tune phase that starts
from a file fetches and validates it the same way) and writes through the storage resource::

    checkpoints/<config>/best.pt        torch state dict, highest validation AUC
    checkpoints/<config>/last.pt        torch state dict after the last epoch
    checkpoints/<config>/history.json   per epoch: phase, loss, val AUC, lr, seconds, images/s
    checkpoints/<config>/preprocessing.json  the preprocessing best.pt was trained with

Its IO-managed value is a small JSON dict (``model_config``, ``checkpoint_key``, ``sha256`` of
the ``best.pt`` bytes, ...). It runs on the GPU pool (``pool="gpu"``, dagster-k8s GPU tags);
the device comes from the ``compute`` resource. Every consumer of the model records the
sha256 it used; :func:`~stronglens_assets.assets.shared.frozen_model_check` compares it with
``model_checkpoint``'s latest materialization (seeds' check 4.9, blocking).
"""

import json
import urllib.request
from pathlib import Path
from typing import Any

import dagster as dg
import torch

from stronglens_assets.assets.metadata import ui_metadata
from stronglens_assets.assets.shared import (
    MODEL_CHECKPOINT,
    json_safe,
    load_parity_manifest,
    model_config_partitions,
    parity_manifest_key,
    preprocessing_record,
    train_on_manifest,
)
from stronglens_assets.config import ConfigError
from stronglens_assets.project import Project
from stronglens_assets.resources.compute import GPU_POOL, ComputeResource, gpu_op_tags
from stronglens_assets.resources.storage import StorageResource
from stronglens_assets.science.core.hashing import sha256_bytes
from stronglens_assets.science.learning.model_config import ModelConfig, load_model_config
from stronglens_assets.science.learning.models import (
    build_model,
    load_backbone_state,
    load_checked_state_dict,
    read_state_dict,
    state_dict_bytes,
)
from stronglens_assets.science.reporting.plots import png_data_uri_markdown, training_curve_png
from stronglens_assets.settings import Settings
from stronglens_assets.storage_keys import (
    CHECKPOINT_KEY,
    HISTORY_KEY,
    LAST_CHECKPOINT_KEY,
    PREPROCESSING_KEY,
)

TRAINING_GROUP = "training"


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


def fetch_initial_state(config: ModelConfig, settings: Settings) -> dict[str, torch.Tensor] | None:
    """The checkpoint training starts from, checked against the model before training:
    ``fine_tune.start_from`` when it names a file (strict), else ``init_from`` (head keys may
    differ; ``init_from_sha256``, when given, must equal the sha256 of the fetched bytes).
    ``None`` when training starts from scratch. Errors name the location."""
    if config.fine_tune is not None and config.fine_tune.start_from != "best":
        location = config.fine_tune.start_from
        data = fetch_pretrained(location, settings.config_dir, settings.s3_endpoint_url)
        state = read_state_dict(data, location)
        load_checked_state_dict(build_model(config), state, location)
        return state
    if config.init_from is None:
        return None
    location = config.init_from
    data = fetch_pretrained(location, settings.config_dir, settings.s3_endpoint_url)
    digest = sha256_bytes(data)
    if config.init_from_sha256 is not None and digest != config.init_from_sha256:
        raise ConfigError(
            f"model config {config.name}: field 'init_from_sha256': {location} has sha256 "
            f"{digest}, expected {config.init_from_sha256}"
        )
    state = read_state_dict(data, location)
    load_backbone_state(build_model(config), state, location)
    return state


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
            initial_state = fetch_initial_state(config, settings)
            manifest = load_parity_manifest(storage, parity_key)
            result = train_on_manifest(
                config,
                manifest,
                storage,
                settings.cache_dir / "training_images",
                device,
                source=store.uri(parity_key),
                initial_state=initial_state,
                log=context.log.info,
            )
            best, last = state_dict_bytes(result.best_state), state_dict_bytes(result.last_state)
            history = json_safe(
                {
                    "model_config": name,
                    "epochs": result.history,
                    "best_epoch": result.best_epoch,
                    "best_val_auc": result.best_val_auc,
                    "phases": result.extra.get("phases", []),
                    "initialised_from": result.extra.get("initialised_from"),
                    "stopped_early": result.stopped_early,
                    "device": result.device,
                    "train_rows": int((manifest["split"] == "train").sum()),
                    "val_rows": int((manifest["split"] == "val").sum()),
                    "test_rows_untouched": int((manifest["split"] == "test").sum()),
                    "selection": "best val AUC (early stopping on val); test not seen",
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
                    "epochs": result.history,
                    "training_curve": dg.MetadataValue.md(
                        png_data_uri_markdown(png, f"{name} training curve")
                    ),
                }
            )
        sha = sha256_bytes(best)
        history["preprocessing"] = config.preprocessing.model_dump(mode="json")
        # best.pt last: a reader that sees the new best.pt also sees its history, last.pt and
        # preprocessing record (which names best.pt's sha256, so a stale one is detected).
        store.write_bytes(HISTORY_KEY.format(name=name), _history_bytes(history))
        store.write_bytes(
            PREPROCESSING_KEY.format(name=name),
            preprocessing_record(name, sha, config.preprocessing),
        )
        store.write_bytes(LAST_CHECKPOINT_KEY.format(name=name), last)
        uri = store.write_bytes(CHECKPOINT_KEY.format(name=name), best)
        metadata.update(
            {
                "checkpoint_sha256": sha,
                "checkpoint": dg.MetadataValue.path(uri),
                "preprocessing": config.preprocessing.model_dump(mode="json"),
            }
        )
        value = {
            "model_config": name,
            "checkpoint_key": CHECKPOINT_KEY.format(name=name),
            "last_key": LAST_CHECKPOINT_KEY.format(name=name),
            "history_key": HISTORY_KEY.format(name=name),
            "sha256": sha,
            "architecture": config.architecture,
            "pretrained": config.pretrained,
            "best_val_auc": metadata.get("best_val_auc"),
            "preprocessing": config.preprocessing.model_dump(mode="json"),
        }
        metadata = {k: v for k, v in metadata.items() if v is not None}
        return dg.Output(json_safe(value), metadata=ui_metadata(metadata))

    return [model_checkpoint]


def _history_bytes(history: dict[str, Any]) -> bytes:
    return (json.dumps(history, sort_keys=True, indent=2, allow_nan=False) + "\n").encode()


__all__ = ["TRAINING_GROUP", "build_assets", "fetch_initial_state", "fetch_pretrained"]
