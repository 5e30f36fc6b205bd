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


def _download(urls: list[str], root: Path, sky: BuiltSky) -> Path:
    """What ``wget -x -nH --cut-dirs=4 -P root -i URLS`` leaves, with the mock sky's products
    (in the real DR10 formats) standing in for the portal's files."""
    from stronglens_assets.resources.coadds import DR10_SOUTH_URL

    sweeps = pd.concat(
        [pd.read_parquet(p) for p in sorted((sky.root / "sweep").rglob("*.parquet"))],
        ignore_index=True,
    )
    for url in urls:
        assert url.startswith(DR10_SOUTH_URL + "/"), url
        relative = url.removeprefix(DR10_SOUTH_URL + "/")
        target = root / "dr10/south" / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if relative.startswith("sweep/10.1/"):
            bricks = [b for b in TEST_BRICKS if sweep_files_for_bricks([b]) == [target.name]]
            rows = sweeps[sweeps["BRICKNAME"].isin(bricks)]
            Table.from_pandas(rows).write(target, format="fits")
        else:
            _, _, brick, name = relative.split("/")
            target.write_bytes((sky.root / "coadd" / brick[:3] / brick / name).read_bytes())
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
    survey = tmp_path / "survey-bricks-dr10-south.fits.gz"
    write_survey_bricks(survey, {b: (2, 2, 0, 2) for b in TEST_BRICKS})
    footprint = tmp_path / "first_cell.yaml"
    urls = tmp_path / "first_cell_urls.txt"

    # 1. the footprint of one HEALPix cell and the URLs of what it needs
    args = ["footprint", "--survey-bricks", str(survey), "--cells", CELL]
    assert main([*args, "--out", str(footprint), "--urls", str(urls)]) == 0
    listed = urls.read_text().split()
    assert len(listed) == 1 + 9  # one sweep box, 3 products x 3 bands of the cell's one brick
    # 2. the downloads (as wget lays them out), checked offline, 3. uploaded
    downloads = _download(listed, tmp_path / "dr10_inputs", built_sky)
    assert main(["sync", "--check", "--from", str(downloads)]) == 0
    out = capsys.readouterr().out
    assert "rejected 0" in out and "kinds found: coadd, sweep" in out
    assert main(["sync", "--from", str(downloads)]) == 0
    out = capsys.readouterr().out
    assert "rejected 0" in out
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-2")
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket).get("Contents", [])}
    (box,) = sweep_files_for_bricks([TEST_BRICKS[0]])
    assert f"dr10/sweep/10.1/{box}" in keys  # where dr10_sweep reads them
    assert (
        f"dr10/coadd_cache/{TEST_BRICKS[0]}/legacysurvey-{TEST_BRICKS[0]}-image-g.fits.fz" in keys
    )
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
