"""realism_controls: truth lookup on the mock sky, skipped (and saying so) on real data, and
the demo's controls.json (plumbing only: the numbers are the demo's, not tested values)."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from stronglens_assets.assets import realism_controls as rc
from stronglens_assets.config import Footprint
from stronglens_assets.mock_survey.writer import brick_paths
from stronglens_assets.project import Project
from stronglens_assets.resources import LocalStorageResource
from stronglens_assets.resources.compute import ComputeResource
from stronglens_assets.science.core.npz import decode_npz
from stronglens_assets.settings import load_settings
from stronglens_assets_tests.harness import TEST_BRICKS, BuiltSky, local_resources


def _manifest(built_sky: BuiltSky) -> pd.DataFrame:
    frames = []
    for brick in TEST_BRICKS:
        truth = pd.read_parquet(brick_paths(built_sky.root, brick).truth_lenses)
        frames.append(
            pd.DataFrame(
                {
                    "object_id": truth["name"],
                    "ra": truth["ra"],
                    "dec": truth["dec"],
                    "brickname": brick,
                    "label": 1,
                    "source": truth["source"],
                    "split": np.where(np.arange(len(truth)) % 2 == 0, "val", "train"),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def test_lenses_with_truth_finds_each_lens_and_its_arc(built_sky: BuiltSky) -> None:
    manifest = _manifest(built_sky)
    extra = manifest.iloc[:1].assign(object_id="NOT-A-LENS", split="val")
    table, arcs, kernels, skipped = rc.lenses_with_truth(
        pd.concat([manifest, extra], ignore_index=True), ["val"], built_sky.root
    )
    val = manifest[manifest["split"] == "val"]
    assert sorted(table["object_id"]) == sorted(val["object_id"])
    assert skipped == {"no_truth": 1, "stamp_not_centred": 0}
    for brick in TEST_BRICKS:
        truth = decode_npz(brick_paths(built_sky.root, brick).truth_arcs.read_bytes())
        names = list(truth["name"])
        for i in np.flatnonzero((table["brickname"] == brick).to_numpy()):
            np.testing.assert_array_equal(arcs[i], truth["arcs"][names.index(table["name"][i])])
        assert kernels[f"{brick}/r"].sum() == pytest.approx(1.0)
    assert (table["object_id"] == table["name"]).all()


def test_missing_truth_is_a_clear_error(built_sky: BuiltSky, tmp_path: Path) -> None:
    with pytest.raises(rc.RealismControlsError, match=r"truth of brick .* is missing"):
        rc.lenses_with_truth(_manifest(built_sky), ["val"], tmp_path)


def test_skipped_on_real_data_and_says_so(tmp_path: Path) -> None:
    """STRONGLENS_ENV=s3 (real DR10): no truth, so nothing is faked or written."""
    settings = load_settings(
        {"STRONGLENS_ENV": "s3", "STRONGLENS_S3_BUCKET": "bucket", "STRONGLENS_HOME": str(tmp_path)}
    )
    project = Project(
        settings=settings, footprint=Footprint(partition_nside=16, bricks=TEST_BRICKS)
    )
    (asset,) = rc.build_assets(project)

    @dg.asset
    def training_manifest() -> pd.DataFrame:
        return pd.DataFrame({"object_id": ["x"], "label": [1]})

    storage = LocalStorageResource(root=str(tmp_path / "storage"))
    result = dg.materialize(
        [training_manifest, asset],
        resources={**local_resources(storage), "compute": ComputeResource()},
    )
    assert result.success
    (mat,) = [m for m in result.asset_materializations_for_node("realism_controls")]
    assert "no lens has a known noiseless arc" in mat.metadata["skipped"].value
    assert not (tmp_path / "storage" / rc.CONTROLS_KEY).exists()


@pytest.mark.slow
def test_demo_writes_the_controls(demo_run) -> None:
    """Plumbing on the shared demo run: the issue's schema, one row per structure fraction,
    null bands around the null mean, the data label."""
    doc = json.loads((demo_run.storage / rc.CONTROLS_KEY).read_text())
    for name in ("negative", "positive"):
        assert {"probe_auc", "null_band", "detection_ratio"} <= set(doc[name])
        lo, hi = doc[name]["null_band"]
        assert lo <= doc[name]["probe"]["null_mean"] <= hi
    fractions = [row["structure_fraction"] for row in doc["dose_response"]]
    assert fractions == [0.0, 0.15, 0.3, 0.6]
    assert all({"probe_auc", "detection_ratio"} <= set(row) for row in doc["dose_response"])
    assert doc["data"] == "embedded default (mock DR10)"
    assert (demo_run.storage / rc.CONTROLS_FIGURE_KEY).is_file()
