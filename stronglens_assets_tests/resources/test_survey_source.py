"""Survey sources: DR10 sweep file naming, the S3 DR10 source on a moto server, the mock."""

from __future__ import annotations

from pathlib import Path

import boto3
import numpy as np
import pytest
from astropy.table import Table

from stronglens_assets.resources.object_store import LocalObjectStore, S3ObjectStore
from stronglens_assets.resources.survey import (
    DR10SurveySource,
    MockSurveySource,
    SurveyInputError,
    sweep_filename,
    sweep_files_for_bricks,
)
from stronglens_assets.science.catalogs.lenscat import CatalogValueError
from stronglens_assets.testing.sweeps import synthetic_sweep


def test_sweep_file_names_follow_dr10() -> None:
    assert sweep_filename(0, -10) == "sweep-000m010-005m005.fits"
    assert sweep_filename(35, -5) == "sweep-035m005-040p000.fits"
    assert sweep_filename(355, 85) == "sweep-355p085-360p090.fits"
    assert sweep_files_for_bricks(["0366m037"]) == ["sweep-035m005-040p000.fits"]
    # a brick straddling Dec = 0 needs two boxes
    assert sweep_files_for_bricks(["0163p000"]) == [
        "sweep-015m005-020p000.fits",
        "sweep-015p000-020p005.fits",
    ]


def _sweep_fits(path: Path, brick_ra: tuple[float, float], brick_dec: tuple[float, float]) -> None:
    frame = synthetic_sweep(3000, seed=3, ra_range=brick_ra, dec_range=brick_dec)
    table = Table.from_pandas(frame)
    table["BRICK_PRIMARY"] = np.arange(len(table)) % 10 != 0
    table.write(path, format="fits")


def test_dr10_source_reads_sweeps_from_s3(tmp_path: Path, s3_server: str, s3_bucket: str) -> None:
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-2")
    local = tmp_path / "sweep.fits"
    _sweep_fits(local, (36.5, 36.8), (-3.9, -3.6))
    client.upload_file(str(local), s3_bucket, "dr10/sweep/10.1/sweep-035m005-040p000.fits")
    source = DR10SurveySource(S3ObjectStore(client, s3_bucket), tmp_path / "cache")
    rows = source.read_sweeps(["0366m037"])
    assert len(rows) > 0
    assert set(rows["BRICKNAME"]) == {"0366m037"}
    cached = tmp_path / "cache" / "dr10/sweep/10.1/sweep-035m005-040p000.fits"
    assert cached.is_file()
    with pytest.raises(
        SurveyInputError,
        match=r"brick\(s\) have no sweep rows: 0161m005; missing sweep files: s3://.*"
        r"sweep-015m005-020p000.fits",
    ):
        source.read_sweeps(["0161m005"])
    with pytest.raises(SurveyInputError, match=r"desi-sl-vac-v1.fits does not exist"):
        source.desi_vac_path()


def test_dr10_source_fails_on_a_sync_gap_instead_of_dropping_bricks(tmp_path: Path) -> None:
    """A requested brick whose sweep box is missing is an error naming the brick and key, even
    when other bricks of the same request are found (no silent 10 x 5 deg gap)."""
    store = LocalObjectStore(tmp_path / "bucket")
    local = tmp_path / "sweep.fits"
    _sweep_fits(local, (36.5, 36.8), (-3.9, -3.6))
    store.write_bytes("dr10/sweep/10.1/sweep-035m005-040p000.fits", local.read_bytes())
    source = DR10SurveySource(store, tmp_path / "cache")
    assert set(source.read_sweeps(["0366m037"])["BRICKNAME"]) == {"0366m037"}
    with pytest.raises(SurveyInputError) as error:
        source.read_sweeps(["0366m037", "0161m005"])
    message = str(error.value)
    assert "1 requested brick(s) have no sweep rows: 0161m005" in message
    assert "dr10/sweep/10.1/sweep-015m005-020p000.fits" in message
    assert "0366m037" not in message.split("missing")[0].split(":", 1)[1]
    # a brick inside a present file but without rows is named too
    with pytest.raises(
        SurveyInputError, match=r"no sweep rows: 0371m037; missing sweep files: none"
    ):
        source.read_sweeps(["0366m037", "0371m037"])


def test_mock_source_names_missing_and_bad_files(tmp_path: Path) -> None:
    source = MockSurveySource(tmp_path)
    with pytest.raises(SurveyInputError, match=r"sweep-0366m037.parquet of brick 0366m037"):
        source.read_sweeps(["0366m037"])
    with pytest.raises(SurveyInputError, match=r"lenses-0366m037.parquet"):
        source.planted_lenses(["0366m037"])
    path = tmp_path / "sweep" / "036" / "sweep-0366m037.parquet"
    path.parent.mkdir(parents=True)
    frame = synthetic_sweep(100, seed=1, ra_range=(36.5, 36.7), dec_range=(-3.8, -3.6))
    frame.loc[0, "RA"] = np.inf
    frame.to_parquet(path)
    with pytest.raises(CatalogValueError, match=r"sweep-0366m037.parquet: column 'RA'"):
        source.read_sweeps(["0366m037"])
