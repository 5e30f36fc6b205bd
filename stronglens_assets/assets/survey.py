"""Survey footprint: the bricks in use and the HEALPix cells (partitions) they cover."""

import dagster as dg
import pandas as pd

from stronglens_assets.assets.metadata import ui_metadata
from stronglens_assets.project import Project
from stronglens_assets.science.catalogs.bricks import brick_area_deg2, bricks_table
from stronglens_assets.science.catalogs.healpix import pixel_area_deg2

SURVEY_GROUP = "survey"


def build_assets(project: Project) -> list[dg.AssetsDefinition | dg.AssetChecksDefinition]:
    nside = project.footprint.partition_nside

    @dg.asset(group_name=SURVEY_GROUP, kinds={"pandas", "parquet"})
    def survey_footprint(context: dg.AssetExecutionContext) -> pd.DataFrame:
        """One row per brick of the configured footprint, with its HEALPix partition.

        Columns: ``brickname, brickid, ra, dec, ra1, ra2, dec1, dec2`` (deg, brick centre and
        edges as DR10 defines them), ``area_deg2``, ``healpix_nside``, ``healpix_pixel``
        (NEST pixel of the brick centre) and ``partition_key``. Sky-partitioned assets loop
        over the bricks of their partition.
        """
        table = bricks_table(list(project.footprint.bricks))
        table["area_deg2"] = brick_area_deg2(table)
        table["healpix_nside"] = nside
        table["healpix_pixel"] = table["brickname"].map(project.brick_pixels).astype("int64")
        table["partition_key"] = [project.healpix_key(p) for p in table["healpix_pixel"]]
        table = table.sort_values(["partition_key", "brickname"], ignore_index=True)
        context.add_output_metadata(
            ui_metadata(
                {
                    "bricks": len(table),
                    "partitions": table["partition_key"].nunique(),
                    "area_deg2": round(float(table["area_deg2"].sum()), 4),
                    "cell_area_deg2": round(pixel_area_deg2(nside), 4),
                }
            )
        )
        return table

    @dg.asset_check(asset=survey_footprint, blocking=True)
    def footprint_matches_partitions(survey_footprint: pd.DataFrame) -> dg.AssetCheckResult:
        """Every configured brick appears, and the cells equal the HEALPix partition set."""
        partition_keys = set(project.healpix_partitions.get_partition_keys())
        table_keys = set(survey_footprint["partition_key"])
        missing_bricks = set(project.footprint.bricks) - set(survey_footprint["brickname"])
        return dg.AssetCheckResult(
            passed=not missing_bricks and table_keys == partition_keys,
            metadata=ui_metadata(
                {
                    "missing_bricks": sorted(missing_bricks),
                    "cells_not_in_partitions": sorted(table_keys - partition_keys),
                    "partitions_without_bricks": sorted(partition_keys - table_keys),
                }
            ),
        )

    return [survey_footprint, footprint_matches_partitions]
