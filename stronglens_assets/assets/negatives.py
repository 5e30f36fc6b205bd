"""Negative samples: the quality-gated N1/N2 pool per HEALPix cell and the stratified manifest."""

import dagster as dg
import numpy as np
import pandas as pd

from stronglens_assets.assets.metadata import ui_metadata
from stronglens_assets.project import Project
from stronglens_assets.resources.survey import SurveyResource
from stronglens_assets.science.catalogs import lenscat
from stronglens_assets.science.catalogs.crossmatch import within_radius
from stronglens_assets.science.samples.manifest import (
    plan_negative_manifest,
    sample_negative_manifest,
)
from stronglens_assets.science.samples.negative_config import (
    NEGATIVES_CONFIG_FILENAME,
    load_negative_selection_config,
)
from stronglens_assets.science.samples.pool import build_negative_pool

NEGATIVES_GROUP = "negatives"

#: What each check of the pool and the manifest verifies (the UI shows these).
CHECK_DESCRIPTIONS = {
    "n1_n2_fraction": "The manifest's N2 (hard confuser) fraction is within `ratio_tolerance` "
    "of `n2_fraction` (configs/negatives.yaml).",
    "split_disjoint_by_cell": "Each split cell (coarse HEALPix cell) holds galaxies of one "
    "split only, so no sky region is in both training and test.",
    "known_lens_exclusion": "No negative lies within `exclusion_radius_arcsec` of a known lens "
    "(every lenscat system and the planted mock lenses).",
    "unique_sources": "No DR10 source (BRICKNAME, OBJID) appears twice.",
}


def _check_spec(name: str, asset: str, blocking: bool = True) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        name, asset=asset, blocking=blocking, description=CHECK_DESCRIPTIONS[name]
    )


def _split_disjointness(frame: pd.DataFrame) -> dg.AssetCheckResult:
    splits_per_cell = frame.groupby("split_cell", observed=True)["split"].nunique()
    shared = splits_per_cell[splits_per_cell > 1]
    return dg.AssetCheckResult(
        check_name="split_disjoint_by_cell",
        passed=shared.empty,
        metadata=ui_metadata(
            {"cells": int(splits_per_cell.size), "cells_in_several_splits": len(shared)}
        ),
    )


def _exclusion_check(
    frame: pd.DataFrame, lens_ra: np.ndarray, lens_dec: np.ndarray, radius_arcsec: float
) -> dg.AssetCheckResult:
    near = within_radius(
        frame["RA"].to_numpy(), frame["DEC"].to_numpy(), lens_ra, lens_dec, radius_arcsec
    )
    return dg.AssetCheckResult(
        check_name="known_lens_exclusion",
        passed=not near.any(),
        metadata=ui_metadata(
            {"radius_arcsec": radius_arcsec, "negatives_near_known_lens": int(near.sum())}
        ),
    )


def build_assets(project: Project) -> list:
    config = load_negative_selection_config(
        project.settings.config_dir / NEGATIVES_CONFIG_FILENAME, project.settings.profile
    )

    def known_lenses(
        lenscat_catalog: pd.DataFrame, survey: SurveyResource, bricks: list[str]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Every lenscat system plus, in the embedded default, the lenses the mock planted."""
        ra, dec = lenscat.all_known_lens_positions(lenscat_catalog)
        planted = survey.source().planted_lenses(bricks)
        return (
            np.concatenate([ra, planted["ra"].to_numpy(dtype=np.float64)]),
            np.concatenate([dec, planted["dec"].to_numpy(dtype=np.float64)]),
        )

    @dg.asset(
        group_name=NEGATIVES_GROUP,
        partitions_def=project.healpix_partitions,
        kinds={"pandas", "parquet"},
        check_specs=[
            _check_spec("split_disjoint_by_cell", "negative_pool"),
            _check_spec("known_lens_exclusion", "negative_pool"),
            _check_spec("unique_sources", "negative_pool"),
        ],
    )
    def negative_pool(
        context: dg.AssetExecutionContext,
        dr10_sweep: pd.DataFrame,
        lenscat_catalog: pd.DataFrame,
        survey: dg.ResourceParam[SurveyResource],
    ):
        """Quality-gated non-lens galaxies of one HEALPix cell, classed N1 / N2, with split.

        Rules in ``configs/negatives.yaml``: positive fluxes, NOBS >= 1 per band, MASKBITS
        BRIGHT/GALAXY/CLUSTER excluded, z < 20; nothing within ``exclusion_radius_arcsec`` of
        any known lens; N1 = DESI LRG-like cuts, N2 = hard confusers (extended, high Sersic,
        blue extended); split by a coarse HEALPix cell (``split_nside``), so no sky region is
        in two splits, and galaxies whose cutout box may reach a cell of another split are
        dropped. Known lenses: every lenscat system and the lenses planted in this cell's
        bricks (the planted lenses of the other cells are excluded by ``negative_manifest``:
        a partition does not wait for the others' mock bricks).
        """
        bricks = project.bricks_in_partition(context.partition_key)
        lens_ra, lens_dec = known_lenses(lenscat_catalog, survey, bricks)
        pool = build_negative_pool(dr10_sweep, lens_ra, lens_dec, config, context.partition_key)
        stats = dict(pool.attrs.get("pool_stats", {}))
        pool.attrs = {}
        yield dg.Output(pool, metadata=ui_metadata({**stats, "known_lenses": len(lens_ra)}))
        yield _split_disjointness(pool)
        yield _exclusion_check(pool, lens_ra, lens_dec, config.exclusion_radius_arcsec)
        duplicated = int(pool.duplicated(["BRICKNAME", "OBJID"]).sum())
        yield dg.AssetCheckResult(
            check_name="unique_sources",
            passed=duplicated == 0,
            metadata=ui_metadata({"duplicates": duplicated}),
        )

    @dg.asset(
        group_name=NEGATIVES_GROUP,
        kinds={"pandas", "parquet"},
        ins={"negative_pool": dg.AssetIn(partition_mapping=dg.AllPartitionMapping())},
        check_specs=[
            _check_spec("n1_n2_fraction", "negative_manifest", blocking=False),
            _check_spec("split_disjoint_by_cell", "negative_manifest"),
            _check_spec("known_lens_exclusion", "negative_manifest"),
            _check_spec("unique_sources", "negative_manifest"),
        ],
    )
    def negative_manifest(
        negative_pool: dict[str, pd.DataFrame],
        lenscat_catalog: pd.DataFrame,
        survey: dg.ResourceParam[SurveyResource],
    ):
        """Stratified sample of the pool (all partitions) to the configured size and N1:N2.

        Pool rows near a lens planted anywhere in the footprint are dropped first. Sampled
        per (class, split) stratum by a hash of (sampling_seed, BRICKNAME, OBJID), so
        the manifest depends only on the pool's content. Provenance columns:
        ``source_partition``, ``selection_version``.
        """
        frames = [negative_pool[key] for key in sorted(negative_pool)]
        pool = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        # the lenses planted anywhere in the footprint: a galaxy of one cell can lie next to a
        # lens planted in a neighbouring cell's brick, which its own partition did not know
        bricks = list(project.footprint.bricks)
        lens_ra, lens_dec = known_lenses(lenscat_catalog, survey, bricks)
        near = (
            within_radius(
                pool["RA"].to_numpy(),
                pool["DEC"].to_numpy(),
                lens_ra,
                lens_dec,
                config.exclusion_radius_arcsec,
            )
            if len(pool)
            else np.zeros(0, dtype=bool)
        )
        pool = pool[~near].reset_index(drop=True)
        for column in ("pool_class", "pool_rule", "split", "source_partition", "selection_version"):
            pool[column] = pool[column].astype(str)
        manifest = sample_negative_manifest(pool, config)
        plan = manifest.attrs.get("manifest_plan") or plan_negative_manifest({}, config).as_dict()
        manifest.attrs = {}
        counts = manifest.groupby(["pool_class", "split"]).size()
        yield dg.Output(
            manifest,
            metadata=ui_metadata(
                {
                    "pool_rows": len(pool),
                    "pool_rows_excluded_near_lenses_of_other_cells": int(near.sum()),
                    "manifest_rows": len(manifest),
                    "per_stratum": {f"{c}/{s}": int(n) for (c, s), n in counts.items()},
                    "plan": plan,
                }
            ),
        )
        n2_fraction = float((manifest["pool_class"] == "N2").mean()) if len(manifest) else 0.0
        yield dg.AssetCheckResult(
            check_name="n1_n2_fraction",
            passed=bool(len(manifest))
            and abs(n2_fraction - config.n2_fraction) <= config.ratio_tolerance,
            metadata=ui_metadata(
                {
                    "n2_fraction": n2_fraction,
                    "target": config.n2_fraction,
                    "tolerance": config.ratio_tolerance,
                }
            ),
        )
        yield _split_disjointness(manifest)
        yield _exclusion_check(manifest, lens_ra, lens_dec, config.exclusion_radius_arcsec)
        duplicated = int(manifest.duplicated(["BRICKNAME", "OBJID"]).sum())
        yield dg.AssetCheckResult(
            check_name="unique_sources",
            passed=duplicated == 0,
            metadata=ui_metadata({"duplicates": duplicated}),
        )

    return [negative_pool, negative_manifest]
