"""Evaluation assets (seeds' checks 4.4 to 4.9), one partition per model config.

Splits: the parity manifest keeps train / val / test apart. Training uses train and picks the
epoch on val; the FPR thresholds rest on val negatives (the paper's choice); every reported
metric below comes from the **test** split, and each output says which split it used.

* ``validation_scores``: p(lens) of every val and test row of the parity manifest (``split``
  says which), with label, tier, source, pool class, TYPE, PSF size and depth (Parquet).
* ``evaluation_thresholds``: fixed thresholds and FPR-derived ones from the val negatives'
  scores, written to ``evaluation/<name>/thresholds.json`` (contract 2) for every consumer.
* ``calibration_report``: test split; ECE/MCE (torchmetrics' binary convention) at the sample
  prevalence and reweighted to the configured deployment prevalence, overall and by stratum
  (tier, N1/N2, TYPE, PSF-size and depth quantile bins; a one-class stratum is not reported
  as calibration), precision at every threshold, with a reliability diagram.
* ``spectroscopic_validation``: test split; recall of Tier-A lenses present in the DESI DR1
  strong-lens VAC at p > 0.5 with a Wilson 68% interval (seeds' 4.6), and at every threshold
  with Wilson 95% intervals and the missed lenses (name, deflector magnitude, score).
* ``annulus_core_ablation``: the same architecture trained on annulus-only and core-only
  inputs (train, epoch picked on val); test AUC of each and of the full model with paired
  bootstrap intervals.

Each records the ``best.pt`` sha256 it used; its blocking ``model_frozen`` check fails when
that differs from ``model_checkpoint``'s latest materialization (check 4.9).
"""

import json
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd

from stronglens_assets.assets.metadata import ui_metadata
from stronglens_assets.assets.shared import (
    frozen_check_spec,
    frozen_model_check,
    json_safe,
    load_frozen_model,
    load_model_thresholds,
    load_parity_manifest,
    model_config_partitions,
    model_thresholds_document,
    parity_manifest_key,
    recorded_checkpoint_sha,
    train_on_manifest,
)
from stronglens_assets.config import ConfigError
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
    precision_at,
    prevalence_weights,
    quantile_bins,
    reliability_bins,
    stratum_summary,
    weighted_calibration_errors,
)
from stronglens_assets.science.stats.detection import detected, recall_at, spectroscopic_recall
from stronglens_assets.science.stats.roc import bootstrap_auc
from stronglens_assets.science.stats.thresholds import ThresholdResolutionError, ThresholdSpec
from stronglens_assets.storage_keys import ABLATION_CHECKPOINT_KEY, EVALUATION_THRESHOLDS_KEY

EVALUATION_GROUP = "evaluation"
SELECTION_SPLIT = "val"
"""Split that picks the epoch (early stopping) and the FPR thresholds."""
REPORTED_SPLIT = "test"
"""Split every reported metric comes from."""
SCORED_SPLITS: tuple[str, ...] = (SELECTION_SPLIT, REPORTED_SPLIT)
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
    model: Any,
    manifest: pd.DataFrame,
    storage: StorageResource,
    device: Any,
    batch_size: int,
    splits: tuple[str, ...] = SCORED_SPLITS,
) -> pd.DataFrame:
    """``validation_scores`` table of the ``splits`` rows of ``manifest`` (raw cutouts ->
    :func:`~stronglens_assets.science.learning.scoring.score_cutouts`, the D06 path)."""
    missing = sorted(set(SCORE_COLUMNS) - set(manifest.columns))
    if missing:
        raise ValueError(f"parity manifest has no column(s) {missing}")
    val = manifest[manifest["split"].isin(splits)].reset_index(drop=True)
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


def rows_of_split(table: pd.DataFrame, split: str, what: str) -> pd.DataFrame:
    """Rows of ``split``; :class:`ConfigError` when there are none (the parity manifest must
    keep the split apart)."""
    rows = table[table["split"].astype(str) == split].reset_index(drop=True)
    if rows.empty:
        raise ConfigError(
            f"{what}: no {split!r} rows (splits present: {sorted(set(table['split']))}); the "
            "parity manifest must keep train / val / test apart"
        )
    return rows


def prevalence_metrics(
    scores: np.ndarray, labels: np.ndarray, n_bins: int, prevalence: float
) -> dict[str, Any]:
    """ECE/MCE at the sample prevalence and reweighted to ``prevalence``; ``None`` with the
    reason when the sample holds one class only (no calibration to measure)."""
    n_lens = int(labels.sum())
    out: dict[str, Any] = {
        "sample_prevalence": n_lens / len(labels) if len(labels) else None,
        "deployment_prevalence": prevalence,
    }
    if not 0 < n_lens < len(labels):
        out.update(
            {
                "calibration": "not reported: one class only",
                "ece": None,
                "mce": None,
                "ece_deployment": None,
                "mce_deployment": None,
            }
        )
        return out
    ece, mce = calibration_errors(scores, labels, n_bins)
    weights = prevalence_weights(labels, prevalence)
    ece_d, mce_d = weighted_calibration_errors(scores, labels, n_bins, weights)
    out.update(
        {
            "calibration": "reported",
            "ece": ece,
            "mce": mce,
            "ece_deployment": ece_d,
            "mce_deployment": mce_d,
        }
    )
    return out


def threshold_metrics(
    scores: np.ndarray,
    labels: np.ndarray,
    thresholds: list[ThresholdSpec],
    prevalence: float,
) -> list[dict[str, Any]]:
    """Per threshold: detected fraction, TPR, FPR and precision at the sample and at the
    deployment prevalence (detection ``p > t``)."""
    lens = labels.astype(bool)
    rows = []
    for spec in thresholds:
        hits = detected(scores, spec.value)
        rows.append(
            {
                **threshold_fields(spec),
                "fraction_detected": float(hits.mean()) if len(hits) else None,
                "tpr": float(hits[lens].mean()) if lens.any() else None,
                "fpr": float(hits[~lens].mean()) if (~lens).any() else None,
                "precision": precision_at(scores, labels, spec.value),
                "precision_deployment": precision_at(scores, labels, spec.value, prevalence),
            }
        )
    return rows


def threshold_fields(spec: ThresholdSpec) -> dict[str, Any]:
    return {
        "label": spec.label,
        "value": spec.value,
        "fpr_target": spec.fpr_target,
        "n_negatives": spec.n_negatives,
    }


def recall_by_threshold(
    lenses: pd.DataFrame, thresholds: list[ThresholdSpec], confidence: float
) -> list[dict[str, Any]]:
    """Recall of ``lenses`` (rows with object_id, source, mag_r, score) at every threshold,
    Wilson interval at ``confidence``, and the lenses missed (``p <= t``) by name, deflector
    r magnitude and score, lowest score first."""
    scores = lenses["score"].to_numpy(dtype=np.float64)
    out = []
    for spec in thresholds:
        result = recall_at(scores, spec.value, confidence)
        missed = lenses[~detected(scores, spec.value)].sort_values(["score", "object_id"])
        result.pop("threshold")
        out.append(
            {
                **threshold_fields(spec),
                **result,
                "missed": [
                    {
                        "name": str(row.object_id),
                        "source": str(row.source),
                        "deflector_mag_r": _finite(row.mag_r),
                        "score": float(row.score),
                    }
                    for row in missed.itertuples()
                ],
            }
        )
    return out


def _finite(value: Any) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


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
        """p(lens) of every val and test row (``split``: val picks the epoch and the FPR
        thresholds, test gives the reported metrics), with label, tier, source, pool class,
        TYPE, PSF size and depth per band, by the frozen ``best.pt``."""
        name = context.partition_key
        config = config_of(context)
        model, sha = load_frozen_model(
            storage,
            name,
            settings.config_dir,
            profile=settings.profile,
            expected_sha256=recorded_checkpoint_sha(context.instance, name),
        )
        manifest = load_parity_manifest(storage, parity_key)
        for split in SCORED_SPLITS:
            rows_of_split(manifest, split, f"{storage.uri(parity_key)}: parity manifest")
        table = score_validation(
            model, manifest, storage, compute.torch_device(), config.evaluation.batch_size
        )
        table["model_config"] = name
        table["checkpoint_sha256"] = sha
        per_split = {
            split: {"rows": len(rows), "lenses": int(rows["label"].sum())}
            for split, rows in table.groupby("split")
        }
        yield dg.Output(
            table,
            metadata=ui_metadata(
                {
                    "rows": len(table),
                    "rows_by_split": per_split,
                    "lenses": int(table["label"].sum()),
                    "checkpoint_sha256": sha,
                    "mean_score_lens": float(table.loc[table["label"] == 1, "score"].mean()),
                    "mean_score_nonlens": float(table.loc[table["label"] == 0, "score"].mean()),
                }
            ),
        )
        yield frozen_model_check(context, name, sha)

    @dg.asset(
        group_name=EVALUATION_GROUP,
        partitions_def=partitions,
        kinds={"json"},
        check_specs=[frozen_check_spec("evaluation_thresholds")],
    )
    def evaluation_thresholds(
        context: dg.AssetExecutionContext,
        validation_scores: pd.DataFrame,
        storage: dg.ResourceParam[StorageResource],
    ):
        """The model's thresholds (detection p > t): fixed ones and one per FPR target,
        derived from the val negatives' scores, with the number of negatives they rest on;
        ``evaluation/<name>/thresholds.json`` (read by every evaluation consumer and D06).
        A target those negatives cannot resolve is kept unresolved with its reason."""
        name = context.partition_key
        evaluation = config_of(context).evaluation
        sha = str(validation_scores["checkpoint_sha256"].iloc[0])
        val = rows_of_split(validation_scores, SELECTION_SPLIT, f"validation_scores[{name}]")
        negatives = val.loc[val["label"] == 0, "score"].to_numpy(dtype=np.float64)
        document = model_thresholds_document(
            name, sha, negatives, evaluation.fixed_thresholds, evaluation.fpr_targets
        )
        unresolved = [e for e in document["thresholds"] if not e["resolved"]]
        if unresolved and evaluation.require_fpr_thresholds:
            raise ThresholdResolutionError(
                f"model config {name}: evaluation.require_fpr_thresholds is set, but "
                + "; ".join(e["reason"] for e in unresolved)
            )
        key = EVALUATION_THRESHOLDS_KEY.format(name=name)
        uri = storage.write_bytes(
            key, (json.dumps(document, indent=2, allow_nan=False) + "\n").encode()
        )
        yield dg.Output(
            document,
            metadata=ui_metadata(
                {
                    "split": SELECTION_SPLIT,
                    "n_negatives": document["n_negatives"],
                    "thresholds": {
                        e["label"]: e["value"] if e["resolved"] else f"unresolved: {e['reason']}"
                        for e in document["thresholds"]
                    },
                    "checkpoint_sha256": sha,
                    "thresholds_file": dg.MetadataValue.path(uri),
                }
            ),
        )
        yield frozen_model_check(context, name, sha)

    thresholds_dep = ["evaluation_thresholds"]

    @dg.asset(
        group_name=EVALUATION_GROUP,
        partitions_def=partitions,
        kinds={"json"},
        deps=thresholds_dep,
        check_specs=[frozen_check_spec("calibration_report")],
    )
    def calibration_report(
        context: dg.AssetExecutionContext,
        validation_scores: pd.DataFrame,
        storage: dg.ResourceParam[StorageResource],
    ):
        """Test split: ECE/MCE (torchmetrics binary convention: p(lens) vs label, equal-width
        bins) at the sample prevalence and reweighted to the deployment prevalence, overall
        and by stratum, precision at every threshold, the reliability diagram."""
        name = context.partition_key
        evaluation = config_of(context).evaluation
        thresholds, unresolved = load_model_thresholds(storage, name)
        test = rows_of_split(validation_scores, REPORTED_SPLIT, f"validation_scores[{name}]")
        scores = test["score"].to_numpy()
        labels = test["label"].to_numpy()
        overall = prevalence_metrics(
            scores, labels, evaluation.calibration_bins, evaluation.deployment_prevalence
        )
        bins = reliability_bins(scores, labels, evaluation.calibration_bins)
        sha = str(validation_scores["checkpoint_sha256"].iloc[0])
        report = {
            "model_config": name,
            "checkpoint_sha256": sha,
            "split": REPORTED_SPLIT,
            "n": len(scores),
            "n_lens": int(labels.sum()),
            **overall,
            "n_bins": evaluation.calibration_bins,
            "convention": CALIBRATION_CONVENTION,
            "reweighting": (
                "deployment metrics weight lenses by pi/pi_s and non-lenses by "
                "(1-pi)/(1-pi_s), pi = deployment_prevalence, pi_s = sample_prevalence"
            ),
            "thresholds": threshold_metrics(
                scores, labels, thresholds, evaluation.deployment_prevalence
            ),
            "unresolved_thresholds": unresolved,
            "bins": bins.to_dict(orient="list"),
            "by_stratum": calibration_by_stratum(
                test,
                evaluation.calibration_bins,
                evaluation.recall_threshold,
                evaluation.stratum_quantile_bins,
            ),
        }
        ece, mce = overall["ece"], overall["mce"]
        title = (
            f"{name} (test): ECE {ece:.4f}, MCE {mce:.4f}"
            if ece is not None
            else f"{name} (test): one class only"
        )
        png = reliability_diagram_png(bins, title)
        yield dg.Output(
            json_safe(report),
            metadata=ui_metadata(
                {
                    "split": REPORTED_SPLIT,
                    "ece": ece,
                    "mce": mce,
                    "ece_deployment": overall["ece_deployment"],
                    "sample_prevalence": overall["sample_prevalence"],
                    "deployment_prevalence": evaluation.deployment_prevalence,
                    "n": len(scores),
                    "checkpoint_sha256": sha,
                    "reliability_diagram": dg.MetadataValue.md(
                        png_data_uri_markdown(png, f"{name} reliability diagram")
                    ),
                }
            ),
        )
        yield frozen_model_check(context, name, sha)

    @dg.asset(
        group_name=EVALUATION_GROUP,
        partitions_def=partitions,
        kinds={"json"},
        deps=thresholds_dep,
        check_specs=[frozen_check_spec("spectroscopic_validation")],
    )
    def spectroscopic_validation(
        context: dg.AssetExecutionContext,
        validation_scores: pd.DataFrame,
        desi_dr1_vac: pd.DataFrame,
        storage: dg.ResourceParam[StorageResource],
    ):
        """Test split: recall of Tier-A lenses present in the DESI DR1 strong-lens VAC
        (position match) at p > 0.5 with a Wilson 68% interval (the spectroscopic check), and at
        every threshold of the model's evaluation with Wilson 95% intervals and the missed
        lenses; the same for all test Tier-A lenses per source."""
        name = context.partition_key
        evaluation = config_of(context).evaluation
        thresholds, unresolved = load_model_thresholds(storage, name)
        sha = str(validation_scores["checkpoint_sha256"].iloc[0])
        test = rows_of_split(validation_scores, REPORTED_SPLIT, f"validation_scores[{name}]")
        match = {
            "vac": desi_dr1_vac,
            "radius_arcsec": evaluation.spectroscopic_match_arcsec,
            "threshold": evaluation.recall_threshold,
            "confidence": evaluation.interval_confidence,
        }
        result = spectroscopic_recall(test, **match)
        # Tier-B lenses in the VAC, for context (the seeds' number is Tier-A only)
        tier_b = spectroscopic_recall(test, **match, tier="B")
        matched = test[test["object_id"].astype(str).isin(result["object_ids"])]
        tier_a = test[(test["tier"] == "A") & (test["label"] == 1)]
        result.update(
            {
                "model_config": name,
                "checkpoint_sha256": sha,
                "split": REPORTED_SPLIT,
                "vac_rows": len(desi_dr1_vac),
                "tier_b": {k: v for k, v in tier_b.items() if k != "object_ids"},
                "recall_confidence": evaluation.recall_confidence,
                "by_threshold": recall_by_threshold(
                    matched, thresholds, evaluation.recall_confidence
                ),
                "tier_a_by_source": {
                    str(source): recall_by_threshold(rows, thresholds, evaluation.recall_confidence)
                    for source, rows in tier_a.groupby("source")
                },
                "unresolved_thresholds": unresolved,
            }
        )
        metadata = {
            k: result[k]
            for k in ("n", "k", "recall", "ci_low", "ci_high", "n_tier")
            if result[k] is not None
        }
        yield dg.Output(
            json_safe(result),
            metadata=ui_metadata({**metadata, "split": REPORTED_SPLIT, "checkpoint_sha256": sha}),
        )
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
        masked) inputs (train split, epoch picked on val); test AUC of each and of the full
        model, paired bootstrap intervals: does the finder use the arc or the central galaxy?"""
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
        images = build_image_cache(store.read_bytes, manifest, cache_dir, config.preprocessing)
        test_idx = np.flatnonzero(manifest["split"].astype(str).to_numpy() == REPORTED_SPLIT)
        test_ids = manifest["object_id"].astype(str).to_numpy()[test_idx]
        full = validation_scores.set_index(validation_scores["object_id"].astype(str))
        score_sets = {"full": full.loc[test_ids, "score"].to_numpy()}
        labels = manifest["label"].to_numpy()[test_idx]
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
            score_sets[variant] = predict_logits(model, images, test_idx, device, 512)
            data = state_dict_bytes(result.best_state)
            key = ABLATION_CHECKPOINT_KEY.format(name=name, variant=variant)
            store.write_bytes(key, data)
            details[variant] = {
                "input_mask": mask.model_dump(),
                "checkpoint_key": key,
                "sha256": sha256_bytes(data),
                "epochs_run": result.epochs_run,
                "best_epoch": result.best_epoch,
                "best_val_auc": result.best_val_auc,
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
            "split": REPORTED_SPLIT,
            "selection_split": SELECTION_SPLIT,
            "n_test": len(labels),
            "n_test_lens": int(labels.sum()),
            "core_radius_px": ablation.core_radius_px,
            "annulus_outer_px": ablation.annulus_outer_px,
            "interval": f"paired bootstrap percentile, {config.evaluation.interval_confidence:.4f}",
            "auc": aucs,
            "variants": details,
        }
        yield dg.Output(
            json_safe(report),
            metadata=ui_metadata(
                {
                    "split": REPORTED_SPLIT,
                    "auc_full": aucs["full"]["auc"],
                    "auc_annulus_only": aucs["annulus_only"]["auc"],
                    "auc_core_only": aucs["core_only"]["auc"],
                    "n_test": len(labels),
                    "checkpoint_sha256": sha,
                }
            ),
        )
        yield frozen_model_check(context, name, sha)

    return [
        validation_scores,
        evaluation_thresholds,
        calibration_report,
        spectroscopic_validation,
        annulus_core_ablation,
    ]
