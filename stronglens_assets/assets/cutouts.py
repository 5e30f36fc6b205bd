"""Cutout assets: grz cutouts of positives and negatives per HEALPix cell; training manifest.

Cutouts are written as shard sets by the assets themselves (``resources/shards.py``):
``cutouts/{positives,negatives}/<partition>/<version>/shard-*.npz`` plus an index Parquet,
behind a pointer ``cutouts/{positives,negatives}/<partition>.json`` that is replaced last.
The assets return metadata (URI, counts kept / rejected by reason, bytes, data version).
"""

import dagster as dg
import numpy as np
import pandas as pd

from stronglens_assets.assets.metadata import ui_metadata
from stronglens_assets.assets.shared import CutoutsConfig, load_cutouts_config
from stronglens_assets.project import Project
from stronglens_assets.resources.coadds import CoaddSourceResource
from stronglens_assets.resources.shards import (
    read_index,
    read_shard,
    read_shard_set,
    split_rows,
    write_shard_set,
)
from stronglens_assets.resources.storage import StorageResource
from stronglens_assets.resources.survey import SurveyResource
from stronglens_assets.resources.versioned import sweep_orphans
from stronglens_assets.science.core.hashing import sha256_json
from stronglens_assets.science.imaging.cutouts import (
    REJECT_REASONS,
    extract_brick_cutouts,
    pack_shard,
)
from stronglens_assets.science.samples.negative_config import (
    NEGATIVES_CONFIG_FILENAME,
    load_negative_selection_config,
)
from stronglens_assets.science.samples.splits import assign_split, split_guard_mask
from stronglens_assets.science.samples.training_sets import (
    magnitude_auc,
    negative_objects,
    parity_manifest,
    positive_objects,
    positive_summary,
    rejection_counts,
    split_counts,
    training_manifest,
)
from stronglens_assets.storage_keys import (
    CUTOUT_SHARD_PREFIXES,
    PARITY_KEY,
    PARITY_META_KEY,
    PARITY_SPLITS_KEY,
)

CUTOUTS_GROUP = "cutouts"

#: The blocking checks of every cutout shard set (the UI shows these descriptions).
SHARD_CHECK_DESCRIPTIONS = {
    "shapes_and_dtypes": "Every shard holds cutout and invvar arrays of shape (n, bands, size, "
    "size) and psfsize of shape (n, bands), all float32.",
    "finite_values": "No NaN or infinity in any cutout, invvar or psfsize value.",
    "index_matches_shards": "The index's kept rows, the rows in the shards and the shard set's "
    "record agree.",
}


def _cut_partition(
    objects: pd.DataFrame,
    coadds: CoaddSourceResource,
    config: CutoutsConfig,
    log: dg.DagsterLogManager,
) -> tuple[list[dict[str, np.ndarray]], pd.DataFrame]:
    """Cut every object, brick by brick (each brick's files opened once); shard the result."""
    source = coadds.get_source()
    cutouts, invvar, psfsize, indexes = [], [], [], []
    for brick, group in objects.groupby("brickname", sort=True):
        result = extract_brick_cutouts(
            str(brick),
            group,
            source.opener(str(brick)),
            size=config.cutout_size,
            bands=config.bands,
            max_zero_invvar_frac=config.max_zero_invvar_fraction,
            id_column="object_id",
        )
        offset = sum(len(c) for c in cutouts)
        rows = result.index["cutout_row"].to_numpy()
        index = group.reset_index(drop=True).assign(
            x=result.index["x"].to_numpy(),
            y=result.index["y"].to_numpy(),
            status=result.index["status"].to_numpy(),
            cutout_row=np.where(rows >= 0, rows + offset, -1),
        )
        for j, band in enumerate(config.bands):  # PSF FWHM at the object's pixel [arcsec]
            psf = np.full(len(index), np.nan, dtype=np.float32)
            psf[rows >= 0] = result.psfsize[rows[rows >= 0], j]
            index[f"psfsize_{band}"] = psf
        log.info(f"{brick}: {len(result.cutouts)} of {len(group)} objects cut")
        cutouts.append(result.cutouts)
        invvar.append(result.invvar)
        psfsize.append(result.psfsize)
        indexes.append(index)
    shape = (0, len(config.bands), config.cutout_size, config.cutout_size)
    all_cutouts = np.concatenate(cutouts) if cutouts else np.empty(shape, np.float32)
    all_invvar = np.concatenate(invvar) if invvar else np.empty(shape, np.float32)
    all_psf = np.concatenate(psfsize) if psfsize else np.empty(shape[:2], np.float32)
    index = (
        pd.concat(indexes, ignore_index=True)
        if indexes
        else objects.assign(
            x=-1, y=-1, status="", cutout_row=-1, **{f"psfsize_{b}": np.nan for b in config.bands}
        )
    )
    kept = index[index["cutout_row"] >= 0].sort_values("cutout_row")
    index["shard"] = -1
    index["shard_row"] = -1
    shards = []
    for number, rows in enumerate(split_rows(len(all_cutouts), config.shard_size)):
        members_index = kept.iloc[rows].assign(cutout_row=np.arange(rows.stop - rows.start))
        shards.append(
            pack_shard(
                all_cutouts[rows],
                all_invvar[rows],
                all_psf[rows],
                members_index,
                id_column="object_id",
            )
        )
        members = kept.index[rows]
        index.loc[members, "shard"] = number
        index.loc[members, "shard_row"] = np.arange(rows.stop - rows.start)
    return shards, index


def _verify_shards(
    storage: StorageResource, prefix: str, partition: str, config: CutoutsConfig
) -> list[dg.AssetCheckResult]:
    """Re-read what was written: shapes, dtypes, finite values, index consistency."""
    store = storage.object_store()
    shard_set = read_shard_set(store, prefix, partition)
    index = read_index(store, shard_set)
    bad_shape, bad_dtype, nonfinite, rows = [], [], 0, 0
    n_bands, size = len(config.bands), config.cutout_size
    for record in shard_set.shards:
        arrays = read_shard(store, record)
        n = len(arrays["cutout"])
        rows += n
        expected = {
            "cutout": (n, n_bands, size, size),
            "invvar": (n, n_bands, size, size),
            "psfsize": (n, n_bands),
        }
        bad_shape += [f"{record.key}:{k}" for k, s in expected.items() if arrays[k].shape != s]
        bad_dtype += [f"{record.key}:{k}" for k in expected if arrays[k].dtype != np.float32]
        nonfinite += int(sum(np.count_nonzero(~np.isfinite(arrays[k])) for k in expected))
    kept = int((index["status"] == "ok").sum())
    return [
        dg.AssetCheckResult(
            check_name="shapes_and_dtypes",
            passed=not bad_shape and not bad_dtype,
            metadata=ui_metadata({"bad_shapes": bad_shape[:10], "bad_dtypes": bad_dtype[:10]}),
        ),
        dg.AssetCheckResult(
            check_name="finite_values",
            passed=nonfinite == 0,
            metadata=ui_metadata({"nonfinite_values": nonfinite}),
        ),
        dg.AssetCheckResult(
            check_name="index_matches_shards",
            passed=kept == rows == shard_set.rows,
            metadata=ui_metadata({"index_ok_rows": kept, "shard_rows": rows}),
        ),
    ]


def build_assets(project: Project) -> list:
    config = load_cutouts_config(project)
    split_config = load_negative_selection_config(
        project.settings.config_dir / NEGATIVES_CONFIG_FILENAME, project.settings.profile
    )
    sky = project.healpix_partitions
    survey_deps = project.survey_upstream.get("cutouts", [])

    def write_cutouts(
        context: dg.AssetExecutionContext,
        asset_name: str,
        objects: pd.DataFrame,
        storage: StorageResource,
        coadds: CoaddSourceResource,
    ):
        partition = context.partition_key
        shards, index = _cut_partition(objects, coadds, config, context.log)
        index["partition"] = partition
        prefix = CUTOUT_SHARD_PREFIXES[asset_name]
        store = storage.object_store()
        # versions earlier writers left behind (lost races, crashes), once they are old enough
        swept = sweep_orphans(store, f"{prefix}/{partition}")
        if swept:
            context.log.info(f"removed {len(swept)} orphaned shard file(s) of {partition}")
        shard_set = write_shard_set(store, prefix, partition, shards, index)
        reasons = index["status"].value_counts()
        gated = index.loc[index["status"] == "ok", "gate_reason"].astype(str)
        yield dg.MaterializeResult(
            data_version=dg.DataVersion(shard_set.version),
            metadata=ui_metadata(
                {
                    "uri": dg.MetadataValue.path(store.uri(f"{prefix}/{partition}.json")),
                    "objects": len(index),
                    "kept": int(reasons.get("ok", 0)),
                    "rejected": {r: int(reasons.get(r, 0)) for r in REJECT_REASONS},
                    "kept_failing_gates": int((gated != "").sum()),
                    "losses_by_tier": rejection_counts(index),
                    "shards": len(shard_set.shards),
                    "bytes": shard_set.bytes,
                    "by_tier": {str(t): int(n) for t, n in objects["tier"].value_counts().items()},
                    "by_source": {
                        str(s): int(n) for s, n in objects["source"].value_counts().items()
                    },
                }
            ),
        )
        yield from _verify_shards(storage, prefix, partition, config)

    def check_specs(asset_name: str) -> list[dg.AssetCheckSpec]:
        return [
            dg.AssetCheckSpec(name, asset=asset_name, blocking=True, description=description)
            for name, description in SHARD_CHECK_DESCRIPTIONS.items()
        ]

    @dg.asset(
        group_name=CUTOUTS_GROUP,
        partitions_def=sky,
        kinds={"numpy", "parquet"},
        deps=survey_deps,
        check_specs=check_specs("positive_cutouts"),
    )
    def positive_cutouts(
        context: dg.AssetExecutionContext,
        positives_dr10_crossmatch: pd.DataFrame,
        dr10_sweep: pd.DataFrame,
        storage: dg.ResourceParam[StorageResource],
        coadds: dg.ResourceParam[CoaddSourceResource],
        survey: dg.ResourceParam[SurveyResource],
    ):
        """grz cutouts (3, 101, 101) float32 + invvar + psfsize of this cell's lenses: the
        matched lenscat candidates and, in the embedded default, the lenses the mock planted
        (``source = "mock"``, Tier-A when the arc's S/N in the deflector-subtracted residual
        reaches ``mock_tier_a_min_residual_snr``, else B; the fraction is in the metadata).

        Every positive's DR10 source (the crossmatch's, or for a mock lens its deflector in
        ``dr10_sweep``) goes through the negatives' quality gates; failures are cut but carry
        ``gate_reason`` in the index, and ``training_manifest`` leaves them out by default.
        """
        bricks = project.bricks_in_partition(context.partition_key)
        planted = survey.source().planted_lenses(bricks)
        objects = positive_objects(
            positives_dr10_crossmatch,
            planted,
            bricks,
            dr10_sweep,
            split_config,
            config.mock_tier_a_min_residual_snr,
            mock_grade_column="arc_residual_snr",
        )
        yield from write_cutouts(context, "positive_cutouts", objects, storage, coadds)

    @dg.asset(
        group_name=CUTOUTS_GROUP,
        partitions_def=sky,
        kinds={"numpy", "parquet"},
        deps=survey_deps,
        check_specs=check_specs("negative_cutouts"),
    )
    def negative_cutouts(
        context: dg.AssetExecutionContext,
        negative_manifest: pd.DataFrame,
        storage: dg.ResourceParam[StorageResource],
        coadds: dg.ResourceParam[CoaddSourceResource],
    ):
        """grz cutouts (3, 101, 101) float32 + invvar + psfsize of this cell's negatives
        (``negative_manifest`` rows in the cell's bricks), with their N1/N2 tier and split."""
        bricks = project.bricks_in_partition(context.partition_key)
        objects = negative_objects(negative_manifest, bricks)
        yield from write_cutouts(context, "negative_cutouts", objects, storage, coadds)

    return [positive_cutouts, negative_cutouts, _training_manifest(project, config, split_config)]


def _finite_or_none(value: float) -> float | None:
    """JSON has no NaN: an undefined statistic is stored as null."""
    return float(value) if np.isfinite(value) else None


def _val_fractions(parity: pd.DataFrame) -> dict[str, dict[str, float | int | None]]:
    """Per class (positives / negatives): rows, val rows and the val fraction."""
    out: dict[str, dict[str, float | int | None]] = {}
    for name, label in (("positives", 1), ("negatives", 0)):
        rows = parity[parity["label"] == label]
        val = int((rows["split"] == "val").sum())
        out[name] = {
            "rows": len(rows),
            "val": val,
            "val_fraction": val / len(rows) if len(rows) else None,
        }
    return out


def _training_manifest(
    project: Project, config: CutoutsConfig, split_config
) -> dg.AssetsDefinition:
    partitions = project.healpix_partitions.get_partition_keys()

    @dg.asset(
        name="training_manifest",
        group_name=CUTOUTS_GROUP,
        kinds={"pandas", "parquet"},
        deps=["positive_cutouts", "negative_cutouts"],
        check_specs=[
            dg.AssetCheckSpec(
                "counts_match_cutouts",
                asset="training_manifest",
                blocking=True,
                description="One manifest row per kept cutout, less the ones left out on "
                "purpose (positives failing the quality gates).",
            ),
            dg.AssetCheckSpec(
                "both_labels_in_each_split",
                asset="training_manifest",
                description="Each split (train / val / test) holds lenses and non-lenses "
                "(warning).",
            ),
            dg.AssetCheckSpec(
                "unique_objects",
                asset="training_manifest",
                blocking=True,
                description="No object appears twice in the manifest.",
            ),
        ],
    )
    def training_manifest_asset(storage: dg.ResourceParam[StorageResource]):
        """One row per usable cutout: label, tier (A/B/N1/N2), split, sample weight, the
        shard's storage key (``cutout_key``, relative to the storage root: the manifest does
        not depend on where the storage lives) and row, the object's catalog columns (type,
        ``mag_r``, ``shape_r``, ``psfdepth_g/r/z``) and ``psfsize_g/r/z`` from its cutout; plus
        the parity manifest training and evaluation read (train / val / test kept apart), a
        70/30 train/val view of it (val and test together, the original layout's) and the
        split metadata JSON. Losses (cutout rejections and
        positives failing the quality gates) are reported per tier in the metadata.

        Positives get the negatives' sky-cell split (``configs/negatives.yaml``), so a sky
        region is in one split only; weights per tier from ``configs/cutouts.yaml``.
        """
        store = storage.object_store()
        indexes, kept = [], 0
        for prefix in CUTOUT_SHARD_PREFIXES.values():
            for partition in partitions:
                shard_set = read_shard_set(store, prefix, partition)
                index = read_index(store, shard_set)
                keys = {i: r.key for i, r in enumerate(shard_set.shards)}
                index["cutout_key"] = index["shard"].map(keys).fillna("")
                index["cutout_row"] = index["shard_row"]
                indexes.append(index)
                kept += shard_set.rows
        manifest, losses = training_manifest(
            indexes,
            lambda ra, dec: assign_split(ra, dec, split_config),
            config.tier_weights,
            exclude_gated=config.exclude_gated_positives,
            guard_of=lambda ra, dec: split_guard_mask(ra, dec, split_config),
        )
        left_out = sum(  # cut but not usable: gate failures, split guard
            n for reasons in losses.values() for r, n in reasons.items() if not r.startswith("cut")
        )
        parity = parity_manifest(manifest, config.parity_splits)
        version = config.manifest_version
        splits_uri, splits_sha = storage.write_value(
            PARITY_SPLITS_KEY.format(version=version).removesuffix(".parquet"), manifest
        )
        parity_uri, parity_sha = storage.write_value(
            PARITY_KEY.format(version=version).removesuffix(".parquet"), parity
        )
        config_sha = sha256_json(config.model_dump(mode="json"))
        metadata = {
            "version": version,
            "counts": split_counts(manifest),
            "parity_counts": split_counts(parity),
            "tier_weights": config.tier_weights,
            "parity_splits": config.parity_splits,
            "config_sha256": config_sha,
            "selection_version": split_config.selection_version,
            "parity_manifest_sha256": parity_sha,
            "parity_splits_manifest_sha256": splits_sha,
            "exclude_gated_positives": config.exclude_gated_positives,
            "losses_by_tier": losses,
            "split_nside": split_config.split_nside,
            "parity_val_fraction": _val_fractions(parity),
            "r_mag_auc_positives_vs_n1": _finite_or_none(magnitude_auc(manifest, "N1")),
            "positives": positive_summary(manifest),
        }
        meta_uri, _ = storage.write_value(
            PARITY_META_KEY.format(version=version).removesuffix(".json"), metadata
        )
        yield dg.Output(
            manifest,
            metadata=ui_metadata(
                {
                    "counts": metadata["counts"],
                    "parity_counts": metadata["parity_counts"],
                    "losses_by_tier": losses,
                    "parity_val_fraction": metadata["parity_val_fraction"],
                    "r_mag_auc_positives_vs_n1": metadata["r_mag_auc_positives_vs_n1"],
                    "positives": metadata["positives"],
                    "parity_manifest": dg.MetadataValue.path(splits_uri),
                    "parity_manifest_70_30": dg.MetadataValue.path(parity_uri),
                    "parity_metadata": dg.MetadataValue.path(meta_uri),
                }
            ),
        )
        yield dg.AssetCheckResult(
            check_name="counts_match_cutouts",
            passed=len(manifest) == kept - left_out,
            metadata=ui_metadata(
                {
                    "manifest_rows": len(manifest),
                    "cutouts_kept": kept,
                    "kept_cutouts_left_out": left_out,
                }
            ),
        )
        labels_per_split = manifest.groupby("split")["label"].nunique()
        yield dg.AssetCheckResult(
            check_name="both_labels_in_each_split",
            passed=bool(len(labels_per_split)) and bool((labels_per_split == 2).all()),
            metadata=ui_metadata(
                {"labels_per_split": {str(k): int(v) for k, v in labels_per_split.items()}}
            ),
            severity=dg.AssetCheckSeverity.WARN,
        )
        duplicated = int(manifest["object_id"].duplicated().sum())
        yield dg.AssetCheckResult(
            check_name="unique_objects",
            passed=duplicated == 0,
            metadata=ui_metadata({"duplicates": duplicated}),
        )

    return training_manifest_asset
