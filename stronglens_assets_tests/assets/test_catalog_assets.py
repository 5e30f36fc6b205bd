"""Catalog and negative assets end to end on a small DR10-format survey, and their bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from stronglens_assets.assets import catalogs, negatives, survey
from stronglens_assets.partitions import PartitionKeyError
from stronglens_assets.project import Project
from stronglens_assets.resources.survey import mock_sweep_path
from stronglens_assets.settings import PROJECT_ROOT, load_settings
from stronglens_assets_tests.harness import AssetHarness, SmallSurvey, failure_message

CELLS = ("hpx-nest16-1105", "hpx-nest16-1126")


def _assets(project: Project) -> list:
    return (
        survey.build_assets(project)
        + catalogs.build_assets(project)
        + negatives.build_assets(project)
    )


def _run_all(small: SmallSurvey, assets: list) -> dict[str, bool]:
    harness = AssetHarness(assets, small.resources)
    assert harness.run(["lenscat_catalog", "lenscat_positives"]).success
    for cell in CELLS:
        assert harness.run(["dr10_sweep", "negative_pool"], cell).success, cell
    result = harness.run(["desi_dr1_vac", "positives_dr10_crossmatch", "negative_manifest"])
    assert result.success
    return harness.checks


def test_catalogs_and_negatives_end_to_end(small_survey: SmallSurvey) -> None:
    assert small_survey.project.healpix_partitions.get_partition_keys() == list(CELLS)
    checks = _run_all(small_survey, _assets(small_survey.project))
    assert checks and all(checks.values()), checks
    storage = small_survey.storage

    positives = storage.read_value("lenscat_positives.parquet")
    assert len(positives) == 5104
    assert positives["tier"].value_counts().to_dict() == {"B": 4669, "A": 435}
    assert set(positives["source"]) == {"lenscat"}
    assert str(positives["zlens"].dtype) == "Float64"

    matched = storage.read_value("positives_dr10_crossmatch.parquet")
    assert len(matched) == len(small_survey.candidates) > 0
    assert matched["matched"].all()
    assert (matched["OBJID"] >= 1_000_000).all()  # the planted counterparts, not neighbours

    vac = storage.read_value("desi_dr1_vac.parquet")
    assert len(vac) == len(small_survey.candidates)
    assert "COEFF_9" in vac.columns

    manifest = storage.read_value("negative_manifest.parquet")
    assert set(manifest["pool_class"]) == {"N1", "N2"}
    assert abs((manifest["pool_class"] == "N2").mean() - 0.25) <= 0.02
    assert set(manifest["source_partition"]) <= set(CELLS)
    assert (manifest["selection_version"] == "neg-v1").all()
    cells_per_split = manifest.groupby("split_cell")["split"].nunique()
    assert (cells_per_split == 1).all()


def test_missing_lenscat_column_fails_and_keeps_outputs(
    small_survey: SmallSurvey, tmp_path: Path
) -> None:
    harness = AssetHarness(_assets(small_survey.project), small_survey.resources)
    assert harness.run("lenscat_catalog").success
    before = small_survey.storage.read_bytes("lenscat_catalog.parquet")

    config_dir = tmp_path / "configs"
    shutil.copytree(PROJECT_ROOT / "configs", config_dir)
    bad_csv = tmp_path / "catalog.csv"
    pd.DataFrame({"name": ["DESI-1"], "RA [deg]": [1.0], "DEC [deg]": [2.0]}).to_csv(bad_csv)
    (config_dir / "catalogs.yaml").write_text(f"lenscat_csv: {bad_csv}\n")
    settings = load_settings(
        {"STRONGLENS_HOME": str(tmp_path / "home"), "STRONGLENS_CONFIG_DIR": str(config_dir)}
    )
    project = Project(settings=settings, footprint=small_survey.project.footprint)
    result = AssetHarness(_assets(project), small_survey.resources).run("lenscat_catalog")
    assert not result.success
    message = failure_message(result)
    assert str(bad_csv) in message
    assert "zlens" in message and "grading" in message
    assert small_survey.storage.read_bytes("lenscat_catalog.parquet") == before


def test_sweep_with_nan_coordinates_fails_naming_file(small_survey: SmallSurvey) -> None:
    harness = AssetHarness(_assets(small_survey.project), small_survey.resources)
    assert harness.run("dr10_sweep", CELLS[0]).success
    before = small_survey.storage.read_bytes(f"dr10_sweep/{CELLS[0]}.parquet")

    path = mock_sweep_path(small_survey.root, "0366m037")
    sweep = pd.read_parquet(path)
    sweep.loc[[3, 7], "DEC"] = np.nan
    sweep.to_parquet(path, index=False)
    result = harness.run("dr10_sweep", CELLS[0])
    assert not result.success
    message = failure_message(result)
    assert str(path) in message and "DEC" in message and "2 non-finite" in message
    assert small_survey.storage.read_bytes(f"dr10_sweep/{CELLS[0]}.parquet") == before
    assert harness.run("dr10_sweep", CELLS[1]).success


def test_unknown_healpix_key_is_a_clear_error(small_survey: SmallSurvey) -> None:
    with pytest.raises(PartitionKeyError, match="'hpx-nest16-7' is not one of the 2 HEALPix"):
        small_survey.project.bricks_in_partition("hpx-nest16-7")
    with pytest.raises(PartitionKeyError, match="not a HEALPix key"):
        small_survey.project.bricks_in_partition("1105")
    with pytest.raises(dg.DagsterUnknownPartitionError):
        dg.materialize(
            _assets(small_survey.project),
            resources=small_survey.resources,
            selection=["dr10_sweep"],
            partition_key="hpx-nest16-7",
        )
