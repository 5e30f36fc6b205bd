"""The same graph in the ``s3`` environment: DR10-layout inputs and all outputs on a real S3
server (moto on 127.0.0.1), read through the real-DR10 code paths (sweep 10.1 FITS boxes,
the S3 coadd cache, the VAC key)."""

from __future__ import annotations

from pathlib import Path

import boto3
import dagster as dg
import pandas as pd
import pytest
from astropy.table import Table

from stronglens_assets.definitions import build_definitions
from stronglens_assets.resources.survey import sweep_files_for_bricks
from stronglens_assets.settings import load_settings
from stronglens_assets_tests.conftest import TEST_BRICKS, BuiltSky


def _upload_dr10_layout(client, bucket: str, sky: BuiltSky, tmp_path: Path) -> None:
    """Mock products in the real DR10 S3 layout: sweep FITS boxes, coadd cache, VAC."""
    sweeps = pd.concat(
        [pd.read_parquet(p) for p in sorted((sky.root / "sweep").rglob("*.parquet"))],
        ignore_index=True,
    )
    for brick in TEST_BRICKS:
        (box,) = sweep_files_for_bricks([brick])
        path = tmp_path / box
        Table.from_pandas(sweeps[sweeps["BRICKNAME"] == brick]).write(path, format="fits")
        client.upload_file(str(path), bucket, f"dr10/sweep/10.1/{box}")
        for fits_file in sorted((sky.root / "coadd" / brick[:3] / brick).glob("*.fits.fz")):
            client.upload_file(str(fits_file), bucket, f"dr10/coadd_cache/{brick}/{fits_file.name}")
    from stronglens_assets.science.desi_vac import write_mock_desi_vac

    vac = tmp_path / "desi-sl-vac-v1.fits"
    lenses = pd.concat(
        [pd.read_parquet(p) for p in sorted((sky.root / "truth").rglob("lenses-*.parquet"))]
    )
    real = lenses[lenses["source"] == "lenscat"]
    write_mock_desi_vac(vac, real["ra"], real["dec"], [0.5] * len(real), seed=3)
    key = "stronglens_calibration/data/external/desi_dr1/desi-sl-vac-v1.fits"
    client.upload_file(str(vac), bucket, key)


@pytest.mark.slow
def test_graph_runs_on_s3(
    built_sky: BuiltSky, tmp_path: Path, s3_server: str, s3_bucket: str, monkeypatch
) -> None:
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-2")
    _upload_dr10_layout(client, s3_bucket, built_sky, tmp_path)
    footprint = tmp_path / "footprint.yaml"
    footprint.write_text(f"partition_nside: 16\nbricks: [{', '.join(TEST_BRICKS)}]\n")
    environ = {
        "STRONGLENS_ENV": "s3",
        "STRONGLENS_S3_BUCKET": s3_bucket,
        "STRONGLENS_S3_ENDPOINT_URL": s3_server,
        "STRONGLENS_S3_REGION": "us-east-2",
        "STRONGLENS_HOME": str(tmp_path / "home"),
        "STRONGLENS_FOOTPRINT": str(footprint),
    }
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    defs = build_definitions(load_settings())
    graph = defs.resolve_asset_graph()
    assert not any(k.to_user_string().startswith("mock_") for k in graph.get_all_asset_keys())

    from stronglens_assets.runner import plan_stages, run_stages

    with dg.instance_for_test() as instance:
        records = run_stages(defs, plan_stages(defs), instance, report=lambda _: None)
    assert records and all(r.success for r in records), [r.failed_steps for r in records]

    keys = {
        o["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=s3_bucket, Prefix="stronglens_calibration/"
        )
        for o in page.get("Contents", [])
    }
    for expected in (
        "stronglens_calibration/lenscat_positives.parquet",
        "stronglens_calibration/dr10_sweep/hpx-nest16-1105.parquet",
        "stronglens_calibration/negative_manifest.parquet",
        "stronglens_calibration/cutouts/positives/hpx-nest16-1105.json",
        "stronglens_calibration/training_manifest.parquet",
        "stronglens_calibration/manifests/training_parity_70_30_v1.parquet",
    ):
        assert expected in keys
    storage = defs.resources["storage"]
    manifest = storage.read_value("training_manifest.parquet")
    assert set(manifest["source"]) == {"lenscat", "dr10"}  # no mock lenses outside the demo
    assert manifest["cutout_uri"].str.startswith(f"s3://{s3_bucket}/").all()
    matched = storage.read_value("positives_dr10_crossmatch.parquet")
    truth = pd.concat(
        [pd.read_parquet(p) for p in (built_sky.root / "truth").rglob("lenses-*.parquet")]
    )
    assert matched["matched"].all()
    assert sorted(matched["name"]) == sorted(truth.loc[truth["source"] == "lenscat", "name"])
