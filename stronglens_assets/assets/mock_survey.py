"""The embedded default as assets: the mock DR10 survey is built through Dagster.

Only in the ``local`` environment. ``mock_survey_bricks`` writes each HEALPix partition's
bricks (coadd FITS, sweep-like Parquet, truth tables) under ``$STRONGLENS_HOME/mock_survey``
with two processes, skipping bricks already complete for the same config and lenscat input;
``mock_desi_vac`` writes the demo's DESI VAC. The survey readers (``dr10_sweep``,
``desi_dr1_vac``, cutouts) read those files exactly as they read real DR10 products.
"""

import dagster as dg
import pandas as pd

from stronglens_assets.assets.metadata import ui_metadata
from stronglens_assets.mock_survey.config import config_checksum, load_demo_sky
from stronglens_assets.mock_survey.vac import demo_vac_rows, write_demo_vac
from stronglens_assets.mock_survey.writer import build_survey
from stronglens_assets.project import Project
from stronglens_assets.resources.survey import MockSurveySource
from stronglens_assets.science.core.hashing import sha256_file, sha256_json

MOCK_SURVEY_GROUP = "mock_survey"


def build_assets(project: Project) -> list:
    if not project.uses_mock_survey:
        return []
    sky_config = load_demo_sky(project.settings.config_dir / "demo_sky.yaml")
    root = project.settings.mock_survey_root

    @dg.asset(
        group_name=MOCK_SURVEY_GROUP,
        partitions_def=project.healpix_partitions,
        kinds={"fits", "parquet"},
    )
    def mock_survey_bricks(
        context: dg.AssetExecutionContext, lenscat_positives: pd.DataFrame
    ) -> dg.MaterializeResult:
        """DR10-format products of this partition's bricks, written by the mock survey.

        Simulated (mock) lenses rendered at the lenscat DESI positions inside the bricks (SIE +
        shear, Sersic sources with star-forming knots) plus extra planted lenses flagged
        ``source = "mock"``: every image here is the embedded default (mock DR10).
        """
        bricks = project.bricks_in_partition(context.partition_key)
        positions = lenscat_positives[["name", "ra", "dec", "grading"]]
        results = build_survey(sky_config, root, positions, bricks=bricks)
        files = {path: digest for r in results for path, digest in sorted(r.files.items())}
        version = sha256_json(files)
        lenses_lenscat = sum(r.n_lenses_lenscat for r in results)
        visible_lenscat = sum(r.n_visible_lenscat for r in results)
        return dg.MaterializeResult(
            data_version=dg.DataVersion(version),
            metadata=ui_metadata(
                {
                    "root": dg.MetadataValue.path(str(root)),
                    "bricks": len(results),
                    "bricks_built": sum(not r.skipped for r in results),
                    "bricks_skipped_complete": sum(r.skipped for r in results),
                    "objects": sum(r.n_objects for r in results),
                    "lenses_lenscat": lenses_lenscat,
                    "lenses_mock": sum(r.n_lenses_mock for r in results),
                    "lenscat_arcs_visible": visible_lenscat,
                    "mock_arcs_visible": sum(r.n_visible_mock for r in results),
                    "files": len(files),
                    "config_sha256": config_checksum(sky_config),
                    "seconds": round(sum(r.seconds for r in results), 1),
                }
            ),
        )

    @dg.asset(
        group_name=MOCK_SURVEY_GROUP,
        kinds={"fits"},
        deps=[mock_survey_bricks],
    )
    def mock_desi_vac(lenscat_positives: pd.DataFrame) -> dg.MaterializeResult:
        """Mock DESI DR1 VAC (real schema) for the lenscat candidates the demo sky renders."""
        lenses = MockSurveySource(root).planted_lenses(list(project.footprint.bricks))
        zlens = lenscat_positives.set_index("name")["zlens"]
        rows = demo_vac_rows(lenses, zlens, sky_config.seed)
        path = write_demo_vac(root, rows, sky_config.seed)
        return dg.MaterializeResult(
            data_version=dg.DataVersion(sha256_file(path)),
            metadata=ui_metadata({"path": dg.MetadataValue.path(str(path)), "rows": len(rows)}),
        )

    return [mock_survey_bricks, mock_desi_vac]
