"""Evaluation assets (seeds' checks 4.4 to 4.9), one partition per model config.

* ``validation_scores``: p(lens) of every validation-split row of the parity manifest, with
  label, tier, source, pool class, TYPE, PSF size and depth per band (Parquet).
* ``calibration_report``: ECE/MCE (torchmetrics' binary convention) overall and by stratum
  (tier, N1/N2, TYPE, PSF-size and depth quantile bins), with a reliability diagram.
* ``spectroscopic_validation``: recall at p > 0.5 of Tier-A lenses present in the DESI DR1
  strong-lens VAC, with n and a Wilson 68% interval.
* ``annulus_core_ablation``: the same architecture trained on annulus-only and core-only
  inputs; AUC of each and of the full model with paired bootstrap intervals.

Each records the ``best.pt`` sha256 it used; its blocking ``model_frozen`` check fails when
that differs from ``model_checkpoint``'s latest materialization (check 4.9).
"""

from typing import Any

import dagster as dg
import numpy as np
import pandas as pd

from stronglens_assets.assets.shared import (
    frozen_check_spec,
    frozen_model_check,
    json_safe,
    load_frozen_model,
    load_parity_manifest,
    model_config_partitions,
    parity_manifest_key,
    train_on_manifest,
)
from stronglens_assets.project import Project
from stronglens_assets.resources.compute import GPU_POOL, ComputeResource, gpu_op_tags
from stronglens_assets.resources.storage import StorageResource
from stronglens_assets.science.core.hashing import sha256_bytes
from stronglens_assets.science.learning.datasets import build_image_cache, load_cutouts
from stronglens_assets.science.learning.model_config import InputMask, load_model_config
from stronglens_assets.science.learning.models import build_model, state_dict_bytes
from stronglens_assets.science.learning.scoring import score_cutouts
from stronglens_assets.science.learning.training import predict_logits
from stronglens_assets.science.reporting.plots import (
    png_data_uri_markdown,
    reliability_diagram_png,
)
from stronglens_assets.science.stats.calibration import (
    CALIBRATION_CONVENTION,
    calibration_errors,
    quantile_bins,
    reliability_bins,
    stratum_summary,
)
from stronglens_assets.science.stats.detection import spectroscopic_recall
from stronglens_assets.science.stats.roc import bootstrap_auc
from stronglens_assets.storage_keys import ABLATION_CHECKPOINT_KEY

EVALUATION_GROUP = "evaluation"
#: Manifest columns copied into ``validation_scores`` (contract item 1).
SCORE_COLUMNS: tuple[str, ...] = (
    "object_id",
    "ra",
    "dec",
    "label",
    "tier",
    "source",
    "split",
    "type",
    "mag_r",
    "shape_r",
    "psfsize_g",
    "psfsize_r",
    "psfsize_z",
    "psfdepth_g",
    "psfdepth_r",
    "psfdepth_z",
    "cutout_key",
    "cutout_row",
)
STRATUM_BANDS = ("g", "r", "z")


#: Cutouts loaded at once by :func:`score_validation` (~0.5 GB of raw grz cutouts).
SCORING_CHUNK_CUTOUTS = 4096


def score_validation(
    model: Any, manifest: pd.DataFrame, storage: StorageResource, device: Any, batch_size: int
) -> pd.DataFrame:
    """``validation_scores`` table of the val rows of ``manifest`` (raw cutouts ->
    :func:`~stronglens_assets.science.learning.scoring.score_cutouts`, the D06 path)."""
    missing = sorted(set(SCORE_COLUMNS) - set(manifest.columns))
    if missing:
        raise ValueError(f"parity manifest has no column(s) {missing}")
    val = manifest[manifest["split"] == "val"].reset_index(drop=True)
    read_bytes = storage.object_store().read_bytes
    # shard by shard, a few thousand cutouts at a time: memory stays bounded at survey scale
    # (~150k val cutouts would be ~18 GB at once); each shard is still read once
    scores = np.empty(len(val), dtype=np.float32)
    keys = val["cutout_key"].astype(str).to_numpy()
    group: list[np.ndarray] = []
    for key in [*sorted(set(keys)), None]:
        if key is not None:
            group.append(np.flatnonzero(keys == key))
        if group and (key is None or sum(len(g) for g in group) >= SCORING_CHUNK_CUTOUTS):
            rows = np.concatenate(group)
            cutouts = load_cutouts(read_bytes, val.iloc[rows], source="parity manifest")
            scores[rows] = score_cutouts(model, cutouts, batch_size=batch_size, device=device)
            group = []
    table = val[list(SCORE_COLUMNS)].copy()
    table.insert(3, "score", scores.astype(np.float64))
    table.insert(6, "pool_class", np.where(val["label"] == 0, val["tier"], "lens"))
    return table


def calibration_by_stratum(
    table: pd.DataFrame, n_bins: int, threshold: float, quantile_bins_n: int
) -> dict[str, dict[str, dict[str, Any]]]:
    """Calibration summaries per stratum family (tier, pool class, TYPE, PSF, depth)."""
    scores = table["score"].to_numpy()
    labels = table["label"].to_numpy()
    # (labels per row, strata in reporting order): categories sorted by name, quantile bins
    # by their edges (then "unknown"), not as strings ("[1.25e+03, ...]" before "[797, ...]")
    families: dict[str, tuple[np.ndarray, list[str]]] = {}
    for family, column in (("tier", "tier"), ("pool_class", "pool_class"), ("type", "type")):
        values = table[column].fillna("").astype(str).replace("", "unknown").to_numpy()
        families[family] = (values, sorted(set(values.tolist())))
    for band in STRATUM_BANDS:
        for family in (f"psfsize_{band}", f"psfdepth_{band}"):
            values, names = quantile_bins(table[family], quantile_bins_n)
            families[family] = (values, [*names, "unknown"])
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for family, (values, order) in families.items():
        out[family] = {
            str(value): stratum_summary(
                scores[values == value], labels[values == value], n_bins, threshold
            )
            for value in order
            if (values == value).any()
        }
    return out


def build_assets(project: Project) -> list:
    settings = project.settings
    partitions = model_config_partitions(project)
    parity_key = parity_manifest_key(project)

    def config_of(context: dg.AssetExecutionContext):
        return load_model_config(settings.config_dir, context.partition_key, settings.profile)

    @dg.asset(
        group_name=EVALUATION_GROUP,
        partitions_def=partitions,
        kinds={"pytorch", "parquet"},
        check_specs=[frozen_check_spec("validation_scores")],
    )
    def validation_scores(
        context: dg.AssetExecutionContext,
        model_checkpoint: dict,
        storage: dg.ResourceParam[StorageResource],
        compute: dg.ResourceParam[ComputeResource],
    ):
        """p(lens) of every validation row (score, label, tier, source, pool class, TYPE,
        PSF size and depth per band, split), by the frozen ``best.pt``."""
        name = context.partition_key
        config = config_of(context)
        model, sha = load_frozen_model(storage, name, settings.config_dir, profile=settings.profile)
        manifest = load_parity_manifest(storage, parity_key)
        table = score_validation(
            model, manifest, storage, compute.torch_device(), config.evaluation.batch_size
        )
        table["model_config"] = name
        table["checkpoint_sha256"] = sha
        yield dg.Output(
            table,
            metadata={
                "rows": len(table),
                "lenses": int(table["label"].sum()),
                "checkpoint_sha256": sha,
                "mean_score_lens": float(table.loc[table["label"] == 1, "score"].mean()),
                "mean_score_nonlens": float(table.loc[table["label"] == 0, "score"].mean()),
            },
        )
        yield frozen_model_check(context, name, sha)

    @dg.asset(
        group_name=EVALUATION_GROUP,
        partitions_def=partitions,
        kinds={"json"},
        check_specs=[frozen_check_spec("calibration_report")],
    )
    def calibration_report(context: dg.AssetExecutionContext, validation_scores: pd.DataFrame):
        """ECE/MCE (torchmetrics binary convention: p(lens) vs label, equal-width bins),
        overall and by stratum, with the reliability diagram (seeds' check 4.5)."""
        name = context.partition_key
        evaluation = config_of(context).evaluation
        scores = validation_scores["score"].to_numpy()
        labels = validation_scores["label"].to_numpy()
        ece, mce = calibration_errors(scores, labels, evaluation.calibration_bins)
        bins = reliability_bins(scores, labels, evaluation.calibration_bins)
        sha = str(validation_scores["checkpoint_sha256"].iloc[0])
        report = {
            "model_config": name,
            "checkpoint_sha256": sha,
            "n": len(scores),
            "n_lens": int(labels.sum()),
            "ece": ece,
            "mce": mce,
            "n_bins": evaluation.calibration_bins,
            "convention": CALIBRATION_CONVENTION,
            "bins": bins.to_dict(orient="list"),
            "by_stratum": calibration_by_stratum(
                validation_scores,
                evaluation.calibration_bins,
                evaluation.recall_threshold,
                evaluation.stratum_quantile_bins,
            ),
        }
        png = reliability_diagram_png(bins, f"{name}: ECE {ece:.4f}, MCE {mce:.4f}")
        yield dg.Output(
            json_safe(report),
            metadata={
                "ece": ece,
                "mce": mce,
                "n": len(scores),
                "checkpoint_sha256": sha,
                "reliability_diagram": dg.MetadataValue.md(
                    png_data_uri_markdown(png, f"{name} reliability diagram")
                ),
            },
        )
        yield frozen_model_check(context, name, sha)

    @dg.asset(
        group_name=EVALUATION_GROUP,
        partitions_def=partitions,
        kinds={"json"},
        check_specs=[frozen_check_spec("spectroscopic_validation")],
    )
    def spectroscopic_validation(
        context: dg.AssetExecutionContext,
        validation_scores: pd.DataFrame,
        desi_dr1_vac: pd.DataFrame,
    ):
        """Recall at p > 0.5 of validation Tier-A lenses present in the DESI DR1 strong-lens
        VAC (position match), with n and a Wilson 68% interval (seeds' check 4.6)."""
        name = context.partition_key
        evaluation = config_of(context).evaluation
        sha = str(validation_scores["checkpoint_sha256"].iloc[0])
        result = spectroscopic_recall(
            validation_scores,
            desi_dr1_vac,
            radius_arcsec=evaluation.spectroscopic_match_arcsec,
            threshold=evaluation.recall_threshold,
            confidence=evaluation.interval_confidence,
        )
        # Tier-B lenses in the VAC, for context (the seeds' number is Tier-A only)
        tier_b = spectroscopic_recall(
            validation_scores,
            desi_dr1_vac,
            radius_arcsec=evaluation.spectroscopic_match_arcsec,
            threshold=evaluation.recall_threshold,
            confidence=evaluation.interval_confidence,
            tier="B",
        )
        result.update(
            {
                "model_config": name,
                "checkpoint_sha256": sha,
                "vac_rows": len(desi_dr1_vac),
                "tier_b": {k: v for k, v in tier_b.items() if k != "object_ids"},
            }
        )
        metadata = {
            k: result[k]
            for k in ("n", "k", "recall", "ci_low", "ci_high", "n_tier")
            if result[k] is not None
        }
        yield dg.Output(json_safe(result), metadata={**metadata, "checkpoint_sha256": sha})
        yield frozen_model_check(context, name, sha)

    @dg.asset(
        group_name=EVALUATION_GROUP,
        partitions_def=partitions,
        kinds={"pytorch", "json"},
        pool=GPU_POOL,
        op_tags=gpu_op_tags(settings.config_dir),
        check_specs=[frozen_check_spec("annulus_core_ablation")],
    )
    def annulus_core_ablation(
        context: dg.AssetExecutionContext,
        validation_scores: pd.DataFrame,
        storage: dg.ResourceParam[StorageResource],
        compute: dg.ResourceParam[ComputeResource],
    ):
        """The same architecture trained on annulus-only (core masked) and core-only (annulus
        masked) inputs; validation AUC of each and of the full model, paired bootstrap
        intervals (seeds' checks 4.7, 4.8)."""
        name = context.partition_key
        config = config_of(context)
        ablation = config.ablation
        device = compute.torch_device()
        store = storage.object_store()
        manifest = load_parity_manifest(storage, parity_key)
        cache_dir = settings.cache_dir / "training_images"
        variants = {
            "annulus_only": InputMask(
                inner_px=ablation.core_radius_px, outer_px=ablation.annulus_outer_px
            ),
            "core_only": InputMask(inner_px=0.0, outer_px=ablation.core_radius_px),
        }
        images = build_image_cache(store.read_bytes, manifest, cache_dir, config.crop)
        val_idx = np.flatnonzero(manifest["split"].astype(str).to_numpy() == "val")
        val_ids = manifest["object_id"].astype(str).to_numpy()[val_idx]
        full = validation_scores.set_index(validation_scores["object_id"].astype(str))
        score_sets = {"full": full.loc[val_ids, "score"].to_numpy()}
        labels = manifest["label"].to_numpy()[val_idx]
        details: dict[str, Any] = {}
        for variant, mask in variants.items():
            variant_config = config.variant(variant, mask)
            result = train_on_manifest(
                variant_config,
                manifest,
                storage,
                cache_dir,
                device,
                source=store.uri(parity_key),
                log=context.log.info,
            )
            model = build_model(variant_config).to(device)
            model.load_state_dict(result.best_state)
            score_sets[variant] = predict_logits(model, images, val_idx, device, 512)
            data = state_dict_bytes(result.best_state)
            key = ABLATION_CHECKPOINT_KEY.format(name=name, variant=variant)
            store.write_bytes(key, data)
            details[variant] = {
                "input_mask": mask.model_dump(),
                "checkpoint_key": key,
                "sha256": sha256_bytes(data),
                "epochs_run": result.epochs_run,
                "best_epoch": result.best_epoch,
            }
        aucs = bootstrap_auc(
            labels,
            score_sets,
            samples=ablation.bootstrap_samples,
            confidence=config.evaluation.interval_confidence,
            seed=config.seed,
            reference="full",
        )
        sha = str(validation_scores["checkpoint_sha256"].iloc[0])
        report = {
            "model_config": name,
            "checkpoint_sha256": sha,
            "n_val": len(labels),
            "n_val_lens": int(labels.sum()),
            "core_radius_px": ablation.core_radius_px,
            "annulus_outer_px": ablation.annulus_outer_px,
            "interval": f"paired bootstrap percentile, {config.evaluation.interval_confidence:.4f}",
            "auc": aucs,
            "variants": details,
        }
        yield dg.Output(
            json_safe(report),
            metadata={
                "auc_full": aucs["full"]["auc"],
                "auc_annulus_only": aucs["annulus_only"]["auc"],
                "auc_core_only": aucs["core_only"]["auc"],
                "n_val": len(labels),
                "checkpoint_sha256": sha,
            },
        )
        yield frozen_model_check(context, name, sha)

    return [validation_scores, calibration_report, spectroscopic_validation, annulus_core_ablation]
