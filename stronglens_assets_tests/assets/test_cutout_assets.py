"""Cutout and training-manifest assets on the two-brick mock sky, and their bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from stronglens_assets.assets import catalogs, cutouts, negatives, survey
from stronglens_assets.config import Footprint
from stronglens_assets.project import Project
from stronglens_assets.resources import (
    ArtifactIOManager,
    CoaddSourceResource,
    LocalStorageResource,
    MockSurveyResource,
)
from stronglens_assets.resources.shards import read_index, read_shard, read_shard_set
from stronglens_assets.settings import load_settings
from stronglens_assets_tests.assets.test_catalog_assets import _checks_passed, _failure_message
from stronglens_assets_tests.conftest import TEST_BRICKS, BuiltSky

CELLS = ("hpx-nest16-1105", "hpx-nest16-1126")
UPSTREAM = [
    ["lenscat_catalog", "lenscat_positives"],
    ["dr10_sweep", "negative_pool"],
    ["positives_dr10_crossmatch", "negative_manifest"],
]


class Pipeline:
    """The catalog -> negatives -> cutouts chain on a private copy of the mock sky."""

    def __init__(self, built_sky: BuiltSky, tmp_path: Path):
        self.root = tmp_path / "sky"
        shutil.copytree(built_sky.root, self.root)
        settings = load_settings({"STRONGLENS_HOME": str(tmp_path / "home")})
        footprint = Footprint(partition_nside=16, bricks=TEST_BRICKS)
        self.project = Project(settings=settings, footprint=footprint)
        self.storage = LocalStorageResource(root=str(tmp_path / "storage"))
        self.resources = {
            "io_manager": ArtifactIOManager(storage=self.storage),
            "storage": self.storage,
            "survey": MockSurveyResource(root=str(self.root)),
            "coadds": CoaddSourceResource(kind="local", root=str(self.root)),
        }
        self.assets = [
            *survey.build_assets(self.project),
            *catalogs.build_assets(self.project),
            *negatives.build_assets(self.project),
            *cutouts.build_assets(self.project),
        ]
        self.checks: dict[str, bool] = {}

    def run(self, selection: list[str], partition: str | None = None) -> dg.ExecuteInProcessResult:
        result = dg.materialize(
            self.assets,
            resources=self.resources,
            selection=selection,
            partition_key=partition,
            raise_on_error=False,
        )
        self.checks.update(_checks_passed(result))
        return result

    def upstream(self) -> None:
        for selection in UPSTREAM:
            for partition in CELLS if selection[0] == "dr10_sweep" else (None,):
                assert self.run(selection, partition).success, selection


@pytest.fixture
def pipeline(built_sky: BuiltSky, tmp_path: Path) -> Pipeline:
    chain = Pipeline(built_sky, tmp_path)
    chain.upstream()
    return chain


def test_cutouts_and_training_manifest(pipeline: Pipeline) -> None:
    for cell in CELLS:
        assert pipeline.run(["positive_cutouts", "negative_cutouts"], cell).success
    assert pipeline.run(["training_manifest"]).success
    assert pipeline.checks and all(pipeline.checks.values()), pipeline.checks

    store = pipeline.storage.object_store()
    shard_set = read_shard_set(store, "cutouts/positives", CELLS[0])
    index = read_index(store, shard_set)
    assert set(index["source"]) == {"lenscat", "mock"}
    assert set(index["status"]) <= {"ok", "edge", "nonfinite", "zero_invvar", "outside_brick"}
    shard = read_shard(store, shard_set.shards[0])
    assert shard["cutout"].shape[1:] == (3, 101, 101) and shard["cutout"].dtype == np.float32

    # cutout values are the brick's pixels, centred on the object's pixel (no resampling)
    row = index[index["status"] == "ok"].iloc[0]
    brick = row["brickname"]
    path = pipeline.root / "coadd" / brick[:3] / brick / f"legacysurvey-{brick}-image-r.fits.fz"
    with fits.open(path) as hdul:
        expected = hdul[1].section[row["y"] - 50 : row["y"] + 51, row["x"] - 50 : row["x"] + 51]
    np.testing.assert_array_equal(shard["cutout"][row["shard_row"], 1], expected)
    assert shard["objid"][row["shard_row"]] == row["object_id"]

    manifest = pipeline.storage.read_value("training_manifest.parquet")
    assert set(manifest["tier"]) == {"A", "B", "N1", "N2"}
    assert set(manifest["source"]) == {"lenscat", "mock", "dr10"}
    assert (manifest.groupby("label")["sample_weight"].min() > 0).all()
    assert manifest["split"].isin(["train", "val", "test"]).all()
    parity = pipeline.storage.read_value("manifests/training_parity_70_30_v1.parquet")
    assert set(parity["split"]) <= {"train", "val"} and len(parity) == len(manifest)
    meta = pipeline.storage.read_value("manifests/training_parity_v1.json")
    assert sum(sum(t.values()) for t in meta["counts"].values()) == len(manifest)
    assert len(meta["config_sha256"]) == 64


def test_rerun_writes_same_bytes(pipeline: Pipeline) -> None:
    store = pipeline.storage.object_store()
    versions = []
    for _ in range(2):
        assert pipeline.run(["negative_cutouts"], CELLS[1]).success
        versions.append(store.read_bytes("cutouts/negatives/hpx-nest16-1126.json"))
    assert versions[0] == versions[1]
    files = store.list_keys("cutouts/negatives/hpx-nest16-1126")
    assert len({key.split("/")[3] for key in files}) == 1  # old versions are cleaned up


def test_corrupt_coadd_fails_partition_and_keeps_outputs(pipeline: Pipeline) -> None:
    for cell in CELLS:
        assert pipeline.run(["negative_cutouts"], cell).success
    store = pipeline.storage.object_store()
    before = {cell: store.read_bytes(f"cutouts/negatives/{cell}.json") for cell in CELLS}
    files_before = store.list_keys("cutouts/negatives")

    brick = TEST_BRICKS[0]  # in CELLS[0]
    path = pipeline.root / "coadd" / brick[:3] / brick / f"legacysurvey-{brick}-invvar-z.fits.fz"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    result = pipeline.run(["negative_cutouts"], CELLS[0])
    assert not result.success
    assert str(path) in _failure_message(result)
    assert store.list_keys("cutouts/negatives") == files_before
    assert {cell: store.read_bytes(f"cutouts/negatives/{cell}.json") for cell in CELLS} == before


def test_missing_band_names_brick_product_band(pipeline: Pipeline) -> None:
    brick = TEST_BRICKS[1]
    (pipeline.root / "coadd" / brick[:3] / brick / f"legacysurvey-{brick}-image-g.fits.fz").unlink()
    result = pipeline.run(["positive_cutouts"], CELLS[1])
    assert not result.success
    message = _failure_message(result)
    assert f"brick {brick}: image coadd for band 'g' is missing" in message


def test_training_manifest_needs_every_partition(pipeline: Pipeline) -> None:
    assert pipeline.run(["positive_cutouts", "negative_cutouts"], CELLS[0]).success
    result = pipeline.run(["training_manifest"])
    assert not result.success
    assert "cutouts/positives/hpx-nest16-1126.json" in _failure_message(result)


def test_objects_tables_flag_mock_lenses() -> None:
    from stronglens_assets.science.training_sets import negative_objects, positive_objects

    crossmatch = pd.DataFrame(
        {
            "name": ["DESI-1", "DESI-2"],
            "ra": [1.0, 2.0],
            "dec": [0.0, 0.1],
            "tier": ["A", "B"],
            "matched": [True, False],
            "BRICKNAME": ["0011p000", "0021p000"],
        }
    )
    planted = pd.DataFrame(
        {
            "brickname": ["0011p000", "0011p000", "0011p000"],
            "name": ["DESI-1", "MOCK-0011p000-000", "MOCK-0011p000-001"],
            "source": ["lenscat", "mock", "mock"],
            "ra": [1.0, 1.01, 1.02],
            "dec": [0.0, 0.01, 0.02],
            "arc_snr_max": [50.0, 45.0, 12.0],
        }
    )
    objects = positive_objects(crossmatch, planted, ["0011p000"], mock_tier_a_min_arc_snr=30)
    assert objects["object_id"].tolist() == ["DESI-1", "MOCK-0011p000-000", "MOCK-0011p000-001"]
    assert objects["source"].tolist() == ["lenscat", "mock", "mock"]
    assert objects["tier"].tolist() == ["A", "A", "B"]
    manifest = pd.DataFrame(
        {
            "BRICKNAME": ["0011p000", "0021p000"],
            "OBJID": [7, 8],
            "RA": [1.1, 2.1],
            "DEC": [0.0, 0.0],
            "pool_class": ["N2", "N1"],
            "split": ["val", "train"],
        }
    )
    negatives = negative_objects(manifest, ["0011p000"])
    assert negatives[["object_id", "tier", "split", "label"]].values.tolist() == [
        ["0011p000-7", "N2", "val", 0]
    ]
