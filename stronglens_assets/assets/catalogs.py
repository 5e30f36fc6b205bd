"""Catalog assets: lenscat, DESI DR1 VAC, DR10 sweep rows per HEALPix cell, crossmatch."""

import warnings

import dagster as dg
import numpy as np
import pandas as pd
from pydantic import Field

from stronglens_assets.assets.metadata import ui_metadata
from stronglens_assets.config import StrictModel, load_config
from stronglens_assets.project import Project
from stronglens_assets.resources.survey import SurveyResource
from stronglens_assets.science.catalogs import lenscat
from stronglens_assets.science.catalogs.crossmatch import crossmatch_positives, match_counts_by_tier
from stronglens_assets.science.catalogs.desi_vac import DESI_VAC_COLUMNS, read_desi_vac
from stronglens_assets.science.catalogs.sweeps import SWEEP_COLUMNS
from stronglens_assets.science.core.columns import missing_columns
from stronglens_assets.science.samples.negative_config import (
    NEGATIVES_CONFIG_FILENAME,
    load_negative_selection_config,
)
from stronglens_assets.science.samples.quality import quality_reasons

CATALOGS_GROUP = "catalogs"


class CatalogsConfig(StrictModel):
    """``configs/catalogs.yaml``."""

    lenscat_csv: str | None = None
    expected_desi_counts: dict[str, int] = Field(default_factory=dict)
    crossmatch_radius_arcsec: float = Field(default=1.0, gt=0, le=60)


def load_catalogs_config(project: Project) -> CatalogsConfig:
    return load_config(project.settings.config_dir / "catalogs.yaml", CatalogsConfig)


def _columns_check(frame: pd.DataFrame, required: tuple[str, ...]) -> dg.AssetCheckResult:
    missing = missing_columns(frame.columns, required)
    return dg.AssetCheckResult(
        check_name="schema", passed=not missing, metadata=ui_metadata({"missing_columns": missing})
    )


def build_assets(project: Project) -> list:
    config = load_catalogs_config(project)
    gates = load_negative_selection_config(
        project.settings.config_dir / NEGATIVES_CONFIG_FILENAME, project.settings.profile
    )
    sky = project.healpix_partitions
    survey_deps = project.survey_upstream

    @dg.asset(
        group_name=CATALOGS_GROUP,
        kinds={"pandas", "parquet"},
        check_specs=[
            dg.AssetCheckSpec(
                "schema",
                asset="lenscat_catalog",
                blocking=True,
                description="The lenscat CSV has every column the catalogs read; a new lenscat "
                "format stops the graph here.",
            ),
        ],
    )
    def lenscat_catalog(context: dg.AssetExecutionContext):
        """Every lenscat system (all searches): the exclusion set for negatives.

        Raw lenscat columns (``RA [deg]``/``DEC [deg]`` float64 deg, the rest strings). The
        SHA-256 of the CSV is the data version, so a new lenscat release is detected.
        """
        path = config.lenscat_csv or lenscat.lenscat_csv_path()
        raw = lenscat.read_lenscat_csv(path)
        checksum = lenscat.catalog_checksum(path)
        with warnings.catch_warnings():  # Output(data_version=...) is a Dagster beta API
            warnings.simplefilter("ignore", dg.BetaWarning)
            output = dg.Output(
                raw,
                data_version=dg.DataVersion(checksum),
                metadata=ui_metadata({"csv": str(path), "sha256": checksum, "systems": len(raw)}),
            )
        yield output
        yield _columns_check(raw, lenscat.LENSCAT_COLUMNS)

    @dg.asset(
        group_name=CATALOGS_GROUP,
        kinds={"pandas", "parquet"},
        check_specs=[
            dg.AssetCheckSpec(
                "schema",
                asset="lenscat_positives",
                blocking=True,
                description="The candidates carry name, ra, dec, tier, grading, zlens, ref and "
                "lens_type.",
            ),
            dg.AssetCheckSpec(
                "tier_counts",
                asset="lenscat_positives",
                description="The number of DESI candidates per tier equals "
                "`expected_desi_counts` of configs/catalogs.yaml (when set), so a lenscat "
                "release that changes the lens sample is noticed.",
            ),
            dg.AssetCheckSpec(
                "unique_names",
                asset="lenscat_positives",
                blocking=True,
                description="No candidate name appears twice.",
            ),
        ],
    )
    def lenscat_positives(lenscat_catalog: pd.DataFrame):
        """lenscat DESI candidates (name contains ``DESI-``): Tier-A = confident, B = probable.

        Columns: name, ra, dec (deg), tier, grading, zlens (nullable float), ref, lens_type,
        source (= "lenscat": real candidates only, never mixed with mock lenses).
        """
        positives = lenscat.desi_candidates(lenscat_catalog)
        positives["source"] = "lenscat"
        counts = {
            "total": len(positives),
            **{t: int(n) for t, n in positives["tier"].value_counts().sort_index().items()},
        }
        yield dg.Output(positives, metadata=ui_metadata({"counts": counts}))
        yield _columns_check(
            positives, ("name", "ra", "dec", "tier", "grading", "zlens", "ref", "lens_type")
        )
        expected = config.expected_desi_counts
        yield dg.AssetCheckResult(
            check_name="tier_counts",
            passed=not expected or counts == expected,
            metadata=ui_metadata({"counts": counts, "expected": expected}),
        )
        duplicated = positives["name"][positives["name"].duplicated()].tolist()
        yield dg.AssetCheckResult(
            check_name="unique_names",
            passed=not duplicated,
            metadata=ui_metadata({"duplicates": duplicated[:20]}),
        )

    @dg.asset(
        group_name=CATALOGS_GROUP,
        kinds={"pandas", "parquet"},
        deps=survey_deps.get("desi_dr1_vac", []),
        check_specs=[
            dg.AssetCheckSpec(
                "schema",
                asset="desi_dr1_vac",
                blocking=True,
                description="The VAC has every column the graph reads (positions, HEALPix, "
                "grades, the COEFF columns).",
            )
        ],
    )
    def desi_dr1_vac(survey: dg.ResourceParam[SurveyResource]):
        """DESI DR1 strong-lensing VAC (``desi-sl-vac-v1.fits``, HDU ``DESI_SL_CATALOG``).

        TARGET_RA/TARGET_DEC in deg, HEALPIX nside 64 NEST, COEFF split into COEFF_0..9.
        In the embedded default the mock survey writes a VAC of the same schema.
        """
        source = survey.source()
        path = source.desi_vac_path()
        vac = read_desi_vac(path)
        yield dg.Output(vac, metadata=ui_metadata({"path": str(path), "source": source.describe()}))
        required = tuple(c for c in DESI_VAC_COLUMNS if c != "COEFF")
        yield _columns_check(vac, required)

    @dg.asset(
        group_name=CATALOGS_GROUP,
        partitions_def=sky,
        kinds={"pandas", "parquet"},
        deps=survey_deps.get("dr10_sweep", []),
        check_specs=[
            dg.AssetCheckSpec(
                "schema",
                asset="dr10_sweep",
                blocking=True,
                description="The sweep rows carry every sweep 10.1 column the negatives and "
                "the crossmatch read.",
            )
        ],
    )
    def dr10_sweep(context: dg.AssetExecutionContext, survey: dg.ResourceParam[SurveyResource]):
        """DR10 sweep rows (BRICK_PRIMARY) of the bricks in this HEALPix partition.

        Sweep 10.1 column names; fluxes in nanomaggies, RA/DEC in deg, SHAPE_R in arcsec.
        """
        bricks = project.bricks_in_partition(context.partition_key)
        source = survey.source()
        sweep = source.read_sweeps(bricks)
        yield dg.Output(
            sweep,
            metadata=ui_metadata(
                {
                    "bricks": len(bricks),
                    "sources": len(sweep),
                    "types": {k: int(v) for k, v in sweep["TYPE"].value_counts().items()},
                    "source": source.describe(),
                }
            ),
        )
        yield _columns_check(sweep, SWEEP_COLUMNS)

    @dg.asset(
        group_name=CATALOGS_GROUP,
        kinds={"pandas", "parquet"},
        ins={"dr10_sweep": dg.AssetIn(partition_mapping=dg.AllPartitionMapping())},
        check_specs=[
            dg.AssetCheckSpec(
                "unique_matches",
                asset="positives_dr10_crossmatch",
                description="No DR10 source is the nearest match of two lenscat positives "
                "(warning: close pairs of candidates can share one).",
            )
        ],
    )
    def positives_dr10_crossmatch(
        lenscat_positives: pd.DataFrame, dr10_sweep: dict[str, pd.DataFrame]
    ):
        """lenscat positives inside the footprint matched to their nearest DR10 source.

        One row per positive whose position lies in a footprint brick, with ``matched``,
        ``sep_arcsec`` and the source's ``BRICKNAME``, ``OBJID``, ``TYPE``, fluxes, ``NOBS_*``,
        ``MASKBITS``, ``PSFSIZE_*``, ``PSFDEPTH_*``; ``gate_reason``: empty when the matched
        source passes the negatives' quality gates (``configs/negatives.yaml``), else the first
        failing gate (``unmatched`` for no match). Metadata: counts per tier (on the full DR10:
        4,788 matched, 389 of them Tier-A) and gate failures per tier and reason.
        """
        sources = pd.concat(dr10_sweep.values(), ignore_index=True)
        in_footprint = project.in_footprint(lenscat_positives["ra"], lenscat_positives["dec"])
        candidates = lenscat_positives[in_footprint].reset_index(drop=True)
        matched = crossmatch_positives(candidates, sources, config.crossmatch_radius_arcsec)
        reasons = np.full(len(matched), "unmatched", dtype=object)
        found = matched["matched"].to_numpy(dtype=bool)
        if found.any():
            reasons[found] = quality_reasons(matched[found], gates)
        matched["gate_reason"] = reasons.astype(str)
        counts = match_counts_by_tier(matched)
        failing = matched[found & (matched["gate_reason"] != "").to_numpy()]
        gate_failures = {
            f"{tier}/{reason}": int(n)
            for (tier, reason), n in failing.groupby(["tier", "gate_reason"]).size().items()
        }
        yield dg.Output(
            matched,
            metadata=ui_metadata(
                {
                    "radius_arcsec": config.crossmatch_radius_arcsec,
                    "positives_in_footprint": len(candidates),
                    "matched": int(matched["matched"].sum()),
                    "matched_passing_gates": int((found & (reasons == "")).sum()),
                    "gate_failures": gate_failures,
                    "counts_by_tier": dg.MetadataValue.md(counts.to_markdown()),
                }
            ),
        )
        pairs = matched.loc[matched["matched"], ["BRICKNAME", "OBJID"]]
        duplicated = int(pairs.duplicated().sum())
        yield dg.AssetCheckResult(
            check_name="unique_matches",
            passed=duplicated == 0,
            metadata=ui_metadata({"sources_matched_twice": duplicated}),
            severity=dg.AssetCheckSeverity.WARN,
        )

    return [lenscat_catalog, lenscat_positives, desi_dr1_vac, dr10_sweep, positives_dr10_crossmatch]
