"""``stronglens sync --from DIR`` against the moto server: verification, layout, skipping."""

from __future__ import annotations

import shutil
from pathlib import Path

import boto3
import numpy as np
import pytest
import torch
from astropy.io import fits

from stronglens_assets.cli import main
from stronglens_assets.mock_survey.vac import write_mock_desi_vac
from stronglens_assets.science.catalogs.lenscat import lenscat_csv_path
from stronglens_assets.settings import Settings

BRICK = "0366m037"
COADD = f"legacysurvey-{BRICK}-image-g.fits.fz"


class _Pickled:
    """Not a tensor: ``torch.load(weights_only=True)`` must refuse it."""


def _inputs(root: Path) -> Path:
    """A local directory in the seeds' layout, with one bad file of each verified kind."""
    vac = root / "data/external/desi_dr1/desi-sl-vac-v1.fits"
    vac.parent.mkdir(parents=True)
    write_mock_desi_vac(vac, [36.6, 16.1], [-3.7, -0.5], [0.5, 0.6], seed=3)
    positives = root / "data/positives"
    positives.mkdir(parents=True)
    shutil.copyfile(lenscat_csv_path(), positives / "desi_candidates.csv")
    coadds = root / "coadd_cache" / BRICK
    coadds.mkdir(parents=True)
    image = np.arange(64 * 64, dtype=np.float32).reshape(64, 64)
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(image)]).writeto(coadds / COADD)
    (coadds / f"legacysurvey-{BRICK}-image-r.fits.fz").write_bytes(b"SIMPLE  = not fits")
    checkpoints = root / "checkpoints/resnet18_baseline"
    checkpoints.mkdir(parents=True)
    torch.save(torch.nn.Linear(4, 1).state_dict(), checkpoints / "best.pt")
    torch.save({"weight": _Pickled()}, checkpoints / "last.pt")
    # wrapped as training scripts save it: accepted, as model_checkpoint's pretrained import does
    wrapped = {"epoch": 3, "model_state_dict": torch.nn.Linear(4, 1).state_dict()}
    torch.save(wrapped, checkpoints / "wrapped.pt")
    (root / "notes.txt").write_text("not an input")
    return root


def _objects(client, bucket: str) -> dict[str, str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {o["Key"]: o["ETag"] for page in pages for o in page.get("Contents", [])}


def test_sync_verifies_uploads_and_skips_unchanged(
    s3_settings: Settings,
    s3_bucket: str,
    s3_server: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = _inputs(tmp_path / "inputs")
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-2")

    assert main(["sync", "--from", str(source)]) == 1  # two files fail verification
    out = capsys.readouterr().out
    assert "[" + "#" * 30 + "] 7/7" in out  # the progress bar reaches the end
    assert "uploaded 5 file(s)" in out and "rejected 2" in out and "not recognised 1" in out
    assert f"rejected coadd_cache/{BRICK}/legacysurvey-{BRICK}-image-r.fits.fz" in out
    assert "rejected checkpoints/resnet18_baseline/last.pt: CheckpointError" in out
    assert "weights_only=True" in out
    expected = {
        "stronglens_calibration/data/external/desi_dr1/desi-sl-vac-v1.fits",
        "stronglens_calibration/data/positives/desi_candidates.csv",
        f"dr10/coadd_cache/{BRICK}/{COADD}",
        "stronglens_calibration/pretrained/resnet18_baseline/best.pt",
        "stronglens_calibration/pretrained/resnet18_baseline/wrapped.pt",
    }
    first = _objects(client, s3_bucket)
    assert set(first) == expected
    body = client.get_object(Bucket=s3_bucket, Key=f"dr10/coadd_cache/{BRICK}/{COADD}")["Body"]
    assert body.read() == (source / "coadd_cache" / BRICK / COADD).read_bytes()

    (source / "coadd_cache" / BRICK / f"legacysurvey-{BRICK}-image-r.fits.fz").unlink()
    (source / "checkpoints/resnet18_baseline/last.pt").unlink()
    assert main(["sync", "--from", str(source)]) == 0
    out = capsys.readouterr().out
    assert "uploaded 0 file(s)" in out and "unchanged 5" in out and "rejected 0" in out
    assert _objects(client, s3_bucket) == first

    torch.save(torch.nn.Linear(4, 2).state_dict(), source / "checkpoints/resnet18_baseline/best.pt")
    assert main(["sync", "--from", str(source)]) == 0
    out = capsys.readouterr().out
    assert "uploaded 1 file(s)" in out and "unchanged 4" in out
    after = _objects(client, s3_bucket)
    changed = {k for k in after if after[k] != first[k]}
    assert changed == {"stronglens_calibration/pretrained/resnet18_baseline/best.pt"}


def test_sync_needs_the_s3_environment(tmp_path: Path, capsys) -> None:
    assert main(["sync", "--from", str(tmp_path)]) == 2
    assert "set STRONGLENS_ENV=s3" in capsys.readouterr().err


def test_sync_to_a_missing_bucket_is_a_clear_error(
    s3_settings: Settings, s3_server: str, tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("STRONGLENS_S3_BUCKET", "no-such-bucket")
    monkeypatch.delenv("STRONGLENS_DR10_BUCKET", raising=False)
    positives = tmp_path / "inputs/data/positives"
    positives.mkdir(parents=True)
    shutil.copyfile(lenscat_csv_path(), positives / "desi_candidates.csv")
    assert main(["sync", "--from", str(tmp_path / "inputs")]) == 2
    assert "bucket 'no-such-bucket' does not exist" in capsys.readouterr().err
