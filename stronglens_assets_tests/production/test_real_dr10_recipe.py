"""README's recipe from the demo to a first real DR10 partition on S3, on the moto server:
`stronglens footprint` from a survey-bricks summary, `stronglens sync --check` offline,
`stronglens sync` (sweeps, coadds, the VAC), then `stronglens demo --select ... --partition`.
The DR10 products are the mock survey's, written in the real DR10 layout (no network here)."""

from __future__ import annotations

from pathlib import Path

import boto3
import dagster as dg
import numpy as np
import pandas as pd
import pytest
from astropy.table import Table

from stronglens_assets.cli import main
from stronglens_assets.mock_survey.vac import write_mock_desi_vac
from stronglens_assets.resources.survey import sweep_files_for_bricks
from stronglens_assets.science.catalogs.bricks import brick_name, bricks_table
from stronglens_assets.science.catalogs.footprint import (
    bricks_with_coverage,
    read_survey_bricks,
)
from stronglens_assets.settings import Settings, load_settings
from stronglens_assets_tests.harness import TEST_BRICKS, BuiltSky

#: The HEALPix partition (nside 16) of TEST_BRICKS[0], 0366m037.
CELL = "hpx-nest16-1105"

#: The assets of a first real partition: sweep rows, the negative pool and both cutout sets.
FIRST_PARTITION = (
    "survey_footprint",
    "lenscat_catalog",
    "lenscat_positives",
    "dr10_sweep",
    "negative_pool",
    "positives_dr10_crossmatch",
    "negative_manifest",
    "positive_cutouts",
    "negative_cutouts",
)


def write_survey_bricks(path: Path, rows: dict[str, tuple[int, int, int, int]]) -> None:
    """A ``survey-bricks-dr10-south`` summary: brickname, ra, dec, nexp_g/r/i/z (lower case,
    as published)."""
    geometry = bricks_table(list(rows))
    nexp = np.array(list(rows.values()), dtype=np.int16)
    table = Table(
        {
            "brickname": geometry["brickname"].to_numpy().astype("U8"),
            "ra": geometry["ra"].to_numpy(),
            "dec": geometry["dec"].to_numpy(),
            "nexp_g": nexp[:, 0],
            "nexp_r": nexp[:, 1],
            "nexp_i": nexp[:, 2],
            "nexp_z": nexp[:, 3],
        }
    )
    table.write(path, format="fits")


def test_footprint_selects_bricks_covered_in_g_r_and_z(tmp_path: Path) -> None:
    no_z = str(brick_name(36.9, -3.7))
    survey = tmp_path / "survey-bricks-dr10-south.fits.gz"
    write_survey_bricks(
        survey, {TEST_BRICKS[0]: (3, 2, 0, 4), TEST_BRICKS[1]: (1, 1, 1, 1), no_z: (2, 2, 2, 0)}
    )
    table = read_survey_bricks(survey)
    assert bricks_with_coverage(table) == sorted(TEST_BRICKS)
    assert bricks_with_coverage(table, min_exposures=2) == [TEST_BRICKS[0]]

    out = tmp_path / "footprint.yaml"
    assert main(["footprint", "--survey-bricks", str(survey), "--out", str(out)]) == 0
    from stronglens_assets.config import load_footprint

    assert set(load_footprint(tmp_path, out).bricks) == set(TEST_BRICKS)
    assert (
        main(["footprint", "--survey-bricks", str(survey), "--cells", CELL, "--out", str(out)]) == 0
    )
    footprint = load_footprint(tmp_path, out)
    assert footprint.bricks == (TEST_BRICKS[0],) and footprint.partition_nside == 16


def test_footprint_names_a_wrong_file_and_a_wrong_cell(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bricks.fits"
    Table({"brickname": ["0366m037"], "ra": [36.6]}).write(bad, format="fits")
    assert main(["footprint", "--survey-bricks", str(bad), "--out", str(tmp_path / "f")]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "'DEC'" in err and "NEXP_G" in err
    survey = tmp_path / "survey.fits"
    write_survey_bricks(survey, {TEST_BRICKS[0]: (1, 1, 1, 1)})
    args = ["footprint", "--survey-bricks", str(survey), "--cells", "hpx-nest16-1150"]
    assert main([*args, "--out", str(tmp_path / "f")]) == 2
    assert "did you mean hpx-nest16-1105" in capsys.readouterr().err
    assert not (tmp_path / "f").exists()


def _dr10_directory(root: Path, sky: BuiltSky) -> Path:
    """The mock sky's products in the layout a DR10 download has: sweep 10.1 boxes, the coadd
    cache per brick, the DESI VAC."""
    sweeps = pd.concat(
        [pd.read_parquet(p) for p in sorted((sky.root / "sweep").rglob("*.parquet"))],
        ignore_index=True,
    )
    (root / "sweep/10.1").mkdir(parents=True)
    boxes: dict[str, list[str]] = {}
    for brick in TEST_BRICKS:
        (box,) = sweep_files_for_bricks([brick])
        boxes.setdefault(box, []).append(brick)
    for box, bricks in boxes.items():
        rows = sweeps[sweeps["BRICKNAME"].isin(bricks)]
        Table.from_pandas(rows).write(root / "sweep/10.1" / box, format="fits")
    for brick in TEST_BRICKS:
        target = root / "coadd_cache" / brick
        target.mkdir(parents=True)
        for fits_file in sorted((sky.root / "coadd" / brick[:3] / brick).glob("*.fits.fz")):
            (target / fits_file.name).write_bytes(fits_file.read_bytes())
    lenses = pd.concat(
        [pd.read_parquet(p) for p in sorted((sky.root / "truth").rglob("lenses-*.parquet"))]
    )
    real = lenses[lenses["source"] == "lenscat"]
    vac = root / "data/external/desi_dr1/desi-sl-vac-v1.fits"
    vac.parent.mkdir(parents=True)
    write_mock_desi_vac(vac, real["ra"], real["dec"], [0.5] * len(real), seed=3)
    return root


def test_sync_check_is_offline_and_an_empty_directory_fails(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["sync", "--check", "--from", str(empty)]) == 2
    assert "nothing to sync" in capsys.readouterr().err
    (empty / "notes.txt").write_text("a wrong directory")
    monkeypatch.setenv("STRONGLENS_ENV", "s3")
    monkeypatch.setenv("STRONGLENS_S3_BUCKET", "darkhaloscope")
    assert main(["sync", "--from", str(empty)]) == 2  # before any bucket is contacted
    assert "nothing to sync" in capsys.readouterr().err

    box = tmp_path / "inputs/sweep/10.1/sweep-035m005-040p000.fits"
    box.parent.mkdir(parents=True)
    Table({"RA": [36.6], "DEC": [-3.7]}).write(box, format="fits")  # columns missing
    # no endpoint, no credentials, no bucket: --check never connects
    monkeypatch.setenv("STRONGLENS_S3_ENDPOINT_URL", "http://127.0.0.1:9")
    assert main(["sync", "--check", "--from", str(tmp_path / "inputs")]) == 1
    out = capsys.readouterr().out
    assert "REJECTED  sweep/10.1/sweep-035m005-040p000.fits" in out
    assert "s3://darkhaloscope/dr10/sweep/10.1/sweep-035m005-040p000.fits" in out
    assert "BRICKNAME" in out and "offline check: nothing uploaded" in out


@pytest.mark.slow
def test_from_the_demo_to_a_first_real_partition_on_s3(
    built_sky: BuiltSky,
    s3_settings: Settings,
    s3_bucket: str,
    s3_server: str,
    tmp_path: Path,
    capsys,
    monkeypatch,
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "unused"))  # restored after the test
    downloads = _dr10_directory(tmp_path / "dr10", built_sky)
    survey = tmp_path / "survey-bricks-dr10-south.fits.gz"
    write_survey_bricks(survey, {b: (2, 2, 0, 2) for b in TEST_BRICKS})
    footprint = tmp_path / "first_cell.yaml"

    # 1. the footprint of one HEALPix cell
    args = ["footprint", "--survey-bricks", str(survey), "--cells", CELL, "--out", str(footprint)]
    assert main(args) == 0
    # 2. check the downloads offline, 3. upload them
    assert main(["sync", "--check", "--from", str(downloads)]) == 0
    out = capsys.readouterr().out
    assert "rejected 0" in out and "kinds found: coadd, sweep, vac" in out
    assert main(["sync", "--from", str(downloads)]) == 0
    out = capsys.readouterr().out
    assert "rejected 0" in out
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-2")
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket).get("Contents", [])}
    for box in sweep_files_for_bricks(list(TEST_BRICKS)):
        assert f"dr10/sweep/10.1/{box}" in keys  # where dr10_sweep reads them
    # 4. the first real partition
    monkeypatch.setenv("STRONGLENS_FOOTPRINT", str(footprint))
    code = main(["demo", "--select", *FIRST_PARTITION, "--partition", CELL])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "0 failed" in out
    settings = load_settings()
    assert settings.dagster_home.is_relative_to(settings.home / "dagster_home_s3")
    with dg.DagsterInstance.from_config(str(settings.dagster_home)) as instance:
        for name in ("dr10_sweep", "negative_pool", "positive_cutouts", "negative_cutouts"):
            status = instance.get_status_by_partition(
                dg.AssetKey(name), [CELL], dg.StaticPartitionsDefinition([CELL])
            )
            assert status == {CELL: dg.AssetPartitionStatus.MATERIALIZED}, name
    keys = {
        o["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=s3_bucket)
        for o in page.get("Contents", [])
    }
    assert f"stronglens_calibration/dr10_sweep/{CELL}.parquet" in keys
    assert f"stronglens_calibration/cutouts/negatives/{CELL}.json" in keys
    # and again: everything is up to date
    assert main(["demo", "--select", *FIRST_PARTITION, "--partition", CELL]) == 0
    assert "0 succeeded, 0 failed" in capsys.readouterr().out
