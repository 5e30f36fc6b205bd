"""Cutout and training-manifest assets on the two-brick mock sky, and their bad input."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from stronglens_assets.assets import catalogs, cutouts, negatives, survey
from stronglens_assets.resources import (
    CoaddSourceResource,
    LocalStorageResource,
    MockSurveyResource,
)
from stronglens_assets.resources.shards import (
    read_index,
    read_npz_key,
    read_shard,
    read_shard_set,
)
from stronglens_assets.science.samples.splits import assign_split
from stronglens_assets.science.samples.training_sets import MANIFEST_COLUMNS
from stronglens_assets_tests.assets.test_metadata import metadata_values
from stronglens_assets_tests.harness import (
    TEST_BRICKS,
    AssetHarness,
    BuiltSky,
    failure_message,
    local_resources,
    make_project,
)

CELLS = ("hpx-nest16-1105", "hpx-nest16-1126")
UPSTREAM = [
    ["lenscat_catalog", "lenscat_positives"],
    ["dr10_sweep", "negative_pool"],
    ["positives_dr10_crossmatch", "negative_manifest"],
]


class Pipeline(AssetHarness):
    """The catalog -> negatives -> cutouts chain on a private copy of the mock sky."""

    def __init__(self, built_sky: BuiltSky, tmp_path: Path):
        self.root = tmp_path / "sky"
        shutil.copytree(built_sky.root, self.root)
        self.project = make_project(tmp_path / "home")
        self.storage = LocalStorageResource(root=str(tmp_path / "storage"))
        resources = local_resources(
            self.storage,
            survey=MockSurveyResource(root=str(self.root)),
            coadds=CoaddSourceResource(kind="local", root=str(self.root)),
        )
        assets = [
            *survey.build_assets(self.project),
            *catalogs.build_assets(self.project),
            *negatives.build_assets(self.project),
            *cutouts.build_assets(self.project),
        ]
        super().__init__(assets, resources)

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
    assert tuple(manifest.columns) == MANIFEST_COLUMNS
    assert not manifest["cutout_key"].str.contains("://").any()
    assert not manifest["cutout_key"].str.startswith("/").any()
    # every row resolves through the storage resource to its own cutout
    for _, entry in manifest.groupby("cutout_key").head(1).iterrows():
        arrays = read_npz_key(store, entry["cutout_key"])
        assert arrays["objid"][entry["cutout_row"]] == entry["object_id"]
        np.testing.assert_array_equal(
            arrays["psfsize"][entry["cutout_row"]],
            entry[["psfsize_g", "psfsize_r", "psfsize_z"]].to_numpy(np.float32),
        )
    # catalog columns come from the object's DR10 source (a negative: its sweep row)
    negative = manifest[manifest["label"] == 0].iloc[0]
    brick, objid = negative["object_id"].rsplit("-", 1)
    sweep = pipeline.storage.read_value(
        f"dr10_sweep/{CELLS[TEST_BRICKS.index(brick)]}.parquet"
    ).set_index(["BRICKNAME", "OBJID"])
    source = sweep.loc[(brick, int(objid))]
    assert negative["type"] == source["TYPE"]
    assert negative["mag_r"] == pytest.approx(
        22.5 - 2.5 * np.log10(source["FLUX_R"] / source["MW_TRANSMISSION_R"]), abs=1e-4
    )
    assert negative["shape_r"] == pytest.approx(source["SHAPE_R"])
    assert negative["psfdepth_r"] == pytest.approx(source["PSFDEPTH_R"])
    for column in ("mag_r", "shape_r", "psfdepth_g", "psfsize_z"):
        assert manifest[column].notna().all(), column
    assert set(manifest["tier"]) == {"A", "B", "N1", "N2"}
    assert set(manifest["source"]) == {"lenscat", "mock", "dr10"}
    assert (manifest.groupby("label")["sample_weight"].min() > 0).all()
    assert manifest["split"].isin(["train", "val", "test"]).all()
    parity = pipeline.storage.read_value("manifests/training_parity_70_30_v1.parquet")
    assert set(parity["split"]) <= {"train", "val"} and len(parity) == len(manifest)
    splits = pipeline.storage.read_value("manifests/training_parity_splits_v1.parquet")
    pd.testing.assert_frame_equal(splits, manifest)  # train / val / test kept apart
    assert splits.groupby("object_id")["split"].nunique().max() == 1
    meta = pipeline.storage.read_value("manifests/training_parity_v1.json")
    assert sum(sum(t.values()) for t in meta["counts"].values()) == len(manifest)
    assert len(meta["config_sha256"]) == 64


def _data_files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_two_homes_give_byte_identical_data(built_sky: BuiltSky, tmp_path: Path) -> None:
    """The same inputs in two different homes (storage roots) write the same bytes: every
    data output (tables, shards, pointers, manifests and the parity JSON with its sha256)."""
    outputs = []
    for home in ("home_a", "somewhere/else/home_b"):
        chain = Pipeline(built_sky, tmp_path / home)
        chain.upstream()
        for cell in CELLS:
            assert chain.run(["positive_cutouts", "negative_cutouts"], cell).success
        assert chain.run(["training_manifest"]).success
        outputs.append(_data_files(Path(chain.storage.root)))
    assert "training_manifest.parquet" in outputs[0]
    assert "manifests/training_parity_70_30_v1.parquet" in outputs[0]
    assert outputs[0].keys() == outputs[1].keys()
    differing = [key for key in outputs[0] if outputs[0][key] != outputs[1][key]]
    assert not differing


def test_rerun_writes_same_bytes(pipeline: Pipeline) -> None:
    store = pipeline.storage.object_store()
    versions = []
    for _ in range(2):
        assert pipeline.run(["negative_cutouts"], CELLS[1]).success
        versions.append(store.read_bytes("cutouts/negatives/hpx-nest16-1126.json"))
    assert versions[0] == versions[1]
    files = store.list_keys("cutouts/negatives/hpx-nest16-1126")
    assert len({key.split("/")[3] for key in files}) == 1  # old versions are cleaned up


def test_rerun_sweeps_old_orphaned_versions_only(pipeline: Pipeline) -> None:
    """Versions left by a writer that lost a race (or crashed before its pointer switch) are
    removed by the next run of the partition once older than an hour; young ones are kept."""
    assert pipeline.run(["negative_cutouts"], CELLS[1]).success
    store = pipeline.storage.object_store()
    partition = Path(pipeline.storage.root) / "cutouts" / "negatives" / CELLS[1]
    old, young = partition / "00000000000000aa", partition / "00000000000000bb"
    for orphan in (old, young):
        orphan.mkdir()
        (orphan / "shard-00000.npz").write_bytes(b"left behind")
    two_hours_ago = time.time() - 7200
    os.utime(old / "shard-00000.npz", (two_hours_ago, two_hours_ago))
    assert pipeline.run(["negative_cutouts"], CELLS[1]).success
    assert not (old / "shard-00000.npz").exists()
    assert (young / "shard-00000.npz").exists()
    assert read_shard_set(store, "cutouts/negatives", CELLS[1]).rows > 0


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
    assert str(path) in failure_message(result)
    assert store.list_keys("cutouts/negatives") == files_before
    assert {cell: store.read_bytes(f"cutouts/negatives/{cell}.json") for cell in CELLS} == before


def test_missing_band_names_brick_product_band(pipeline: Pipeline) -> None:
    brick = TEST_BRICKS[1]
    (pipeline.root / "coadd" / brick[:3] / brick / f"legacysurvey-{brick}-image-g.fits.fz").unlink()
    result = pipeline.run(["positive_cutouts"], CELLS[1])
    assert not result.success
    message = failure_message(result)
    assert f"brick {brick}: image coadd for band 'g' is missing" in message


def test_training_manifest_needs_every_partition(pipeline: Pipeline) -> None:
    assert pipeline.run(["positive_cutouts", "negative_cutouts"], CELLS[0]).success
    result = pipeline.run(["training_manifest"])
    assert not result.success
    assert "cutouts/positives/hpx-nest16-1126.json" in failure_message(result)


def _sweep_rows(**columns) -> pd.DataFrame:
    """Sweep rows (one per value) that pass every quality gate unless a column says otherwise."""
    n = len(next(iter(columns.values())))
    base = {
        "BRICKNAME": ["0011p000"] * n,
        "OBJID": list(range(n)),
        "TYPE": ["DEV"] * n,
        **{f"FLUX_{b}": [10.0] * n for b in "GRZ"},  # AB 20.0 in g and r
        **{f"MW_TRANSMISSION_{b}": [1.0] * n for b in "GRZ"},
        **{f"NOBS_{b}": [3] * n for b in "GRZ"},
        "MASKBITS": [0] * n,
        "SHAPE_R": [1.5] * n,
        **{f"PSFDEPTH_{b}": [100.0] * n for b in "GRZ"},
    }
    base["FLUX_Z"] = [15.85] * n  # z = 22.5 - 2.5 log10(15.85) = 19.5 < 20
    base.update(columns)
    return pd.DataFrame(base)


def test_objects_tables_flag_mock_lenses() -> None:
    from stronglens_assets.science.samples.negative_config import NegativeSelectionConfig
    from stronglens_assets.science.samples.training_sets import negative_objects, positive_objects

    gates = NegativeSelectionConfig(selection_version="test")
    crossmatch = pd.concat(
        [
            pd.DataFrame(
                {
                    "name": ["DESI-1", "DESI-2", "DESI-3"],
                    "ra": [1.0, 2.0, 1.005],
                    "dec": [0.0, 0.1, 0.0],
                    "tier": ["A", "B", "B"],
                    "matched": [True, False, True],
                }
            ),
            _sweep_rows(
                RA=[1.0, 2.0, 1.005],
                DEC=[0.0, 0.1, 0.0],
                BRICKNAME=["0011p000", "0021p000", "0011p000"],
                FLUX_Z=[15.85, 15.85, 6.3],  # DESI-3: z = 20.5, fails z < 20
            ),
        ],
        axis=1,
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
    sweep = _sweep_rows(
        RA=[1.01, 1.02], DEC=[0.01, 0.02], NOBS_G=[3, 0], TYPE=["SER", "DEV"], SHAPE_R=[0.7, 2.0]
    )
    objects = positive_objects(
        crossmatch, planted, ["0011p000"], sweep, gates, 30, mock_grade_column="arc_snr_max"
    )
    assert objects["object_id"].tolist() == [
        "DESI-1",
        "DESI-3",
        "MOCK-0011p000-000",
        "MOCK-0011p000-001",
    ]
    assert objects["source"].tolist() == ["lenscat", "lenscat", "mock", "mock"]
    assert objects["tier"].tolist() == ["A", "B", "A", "B"]
    # the negatives' gates, with the first failing one named; catalog columns of the match
    assert objects["gate_reason"].tolist() == ["", "mag_z", "", "nobs"]
    assert objects["type"].tolist() == ["DEV", "DEV", "SER", "DEV"]
    assert objects["shape_r"].tolist() == [1.5, 1.5, 0.7, 2.0]
    np.testing.assert_allclose(objects["mag_r"], 22.5 - 2.5 * np.log10(10.0))
    manifest = pd.DataFrame(
        {
            "BRICKNAME": ["0011p000", "0021p000"],
            "OBJID": [7, 8],
            "RA": [1.1, 2.1],
            "DEC": [0.0, 0.0],
            "pool_class": ["N2", "N1"],
            "split": ["val", "train"],
            "TYPE": ["EXP", "DEV"],
            "FLUX_R": [1.0, 2.0],
            "MW_TRANSMISSION_R": [0.5, 1.0],
            "SHAPE_R": [2.5, 1.0],
        }
    )
    negatives = negative_objects(manifest, ["0011p000"])
    assert negatives[["object_id", "tier", "split", "label", "type"]].values.tolist() == [
        ["0011p000-7", "N2", "val", 0, "EXP"]
    ]
    assert negatives["mag_r"].iloc[0] == pytest.approx(22.5 - 2.5 * np.log10(2.0))
    assert np.isnan(negatives["psfdepth_g"].iloc[0])  # absent from this pool: NaN, not made up


def _metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    events = [
        e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(asset)
    ]
    assert events, asset
    return metadata_values(events[-1].materialization.metadata)


def test_training_data_are_fair_on_the_mock_survey(pipeline: Pipeline) -> None:
    """Issue 8 on the two-brick mock sky: positives pass the negatives' gates, every cutout
    box lies in one split, losses are reported per tier in one place."""
    from stronglens_assets.science.samples.negative_config import load_negative_selection_config
    from stronglens_assets.science.samples.quality import quality_reasons
    from stronglens_assets.science.samples.splits import split_guard_mask

    metadata = {}
    for cell in CELLS:
        result = pipeline.run(["positive_cutouts", "negative_cutouts"], cell)
        assert result.success
        metadata[cell] = _metadata(result, "positive_cutouts")
    result = pipeline.run(["training_manifest"])
    assert result.success and all(pipeline.checks.values()), pipeline.checks
    meta = _metadata(result, "training_manifest")
    manifest = pipeline.storage.read_value("training_manifest.parquet")
    cfg = load_negative_selection_config(
        pipeline.project.settings.config_dir / "negatives.yaml", pipeline.project.settings.profile
    )
    assert cfg.split_nside == 1024  # the demo profile's finer split cells

    # item 1: the crossmatch keeps the reason; every positive's source passes the gates
    crossmatch = pipeline.storage.read_value("positives_dr10_crossmatch.parquet")
    matched = crossmatch[crossmatch["matched"]]
    np.testing.assert_array_equal(matched["gate_reason"], quality_reasons(matched, cfg))
    assert {"NOBS_G", "NOBS_R", "NOBS_Z", "PSFDEPTH_R"} <= set(crossmatch.columns)
    assert (manifest["gate_reason"] == "").all()
    sweep = pd.concat([pipeline.storage.read_value(f"dr10_sweep/{cell}.parquet") for cell in CELLS])
    store = pipeline.storage.object_store()
    indexes = [read_index(store, read_shard_set(store, "cutouts/positives", c)) for c in CELLS]
    index = pd.concat(indexes, ignore_index=True)
    mock = index[index["source"] == "mock"]
    deflectors = sweep.set_index(["RA", "DEC"]).loc[list(zip(mock["ra"], mock["dec"], strict=True))]
    np.testing.assert_array_equal(mock["gate_reason"], quality_reasons(deflectors, cfg))

    # item 4: splits by the demo's cells, and no cutout box reaches another split's cell
    np.testing.assert_array_equal(
        manifest["split"], assign_split(manifest["ra"], manifest["dec"], cfg)
    )
    assert not split_guard_mask(manifest["ra"], manifest["dec"], cfg).any()

    # item 9: cutout rejections and gate failures, per tier, in both metadata
    gated = index[(index["status"] == "ok") & (index["gate_reason"] != "")]
    rejected = index[index["status"] != "ok"]
    losses = meta["losses_by_tier"]
    for tier in ("A", "B"):
        gate_lost = sum(n for r, n in losses.get(tier, {}).items() if r.startswith("gate:"))
        cut_lost = sum(n for r, n in losses.get(tier, {}).items() if r.startswith("cutout:"))
        assert gate_lost == int((gated["tier"] == tier).sum())
        assert cut_lost == int((rejected["tier"] == tier).sum())
        per_cell = sum(
            n
            for cell in CELLS
            for r, n in metadata[cell]["losses_by_tier"].get(tier, {}).items()
            if r.startswith(("gate:", "cutout:"))
        )
        assert per_cell == gate_lost + cut_lost
    guarded = sum(reasons.get("split_guard", 0) for reasons in losses.values())
    positives_ok = int(((index["status"] == "ok") & (index["gate_reason"] == "")).sum())
    assert int((manifest["label"] == 1).sum()) == positives_ok - guarded
    assert 0.5 <= meta["r_mag_auc_positives_vs_n1"] <= 1.0
    assert set(meta["parity_val_fraction"]) == {"positives", "negatives"}


def test_planted_lenses_of_other_cells_are_excluded(pipeline: Pipeline) -> None:
    """Issue 8, item 7: a negative next to a lens planted in another partition's brick goes."""
    from stronglens_assets.resources.survey import mock_truth_lenses_path

    manifest = pipeline.storage.read_value("negative_manifest.parquet")
    victim = manifest[manifest["BRICKNAME"] == TEST_BRICKS[0]].iloc[0]  # cell 1105
    truth_path = mock_truth_lenses_path(pipeline.root, TEST_BRICKS[1])  # cell 1126's brick
    truth = pd.read_parquet(truth_path)
    fake = truth.iloc[[0]].copy()
    fake["ra"], fake["dec"] = victim["RA"] + 5.0 / 3600.0, victim["DEC"]  # 5" away (RA-ish)
    fake["name"], fake["source"] = "MOCK-NEIGHBOUR", "mock"
    pd.concat([truth, fake], ignore_index=True).to_parquet(truth_path, index=False)

    result = pipeline.run(["negative_manifest"])
    assert result.success and all(pipeline.checks.values()), pipeline.checks
    after = pipeline.storage.read_value("negative_manifest.parquet")
    keys = set(zip(after["BRICKNAME"], after["OBJID"], strict=True))
    assert (victim["BRICKNAME"], victim["OBJID"]) not in keys
    meta = _metadata(result, "negative_manifest")
    assert meta["pool_rows_excluded_near_lenses_of_other_cells"] >= 1


def test_training_manifest_switch_and_guard_on_hand_made_rows() -> None:
    """exclude_gated / guard_of of science.samples.training_sets.training_manifest, and the
    r-mag AUC."""
    from stronglens_assets.science.samples.training_sets import magnitude_auc, training_manifest

    def index(label: int, tiers: list[str], **extra) -> pd.DataFrame:
        n = len(tiers)
        frame = pd.DataFrame(
            {
                "object_id": [f"{label}-{i}" for i in range(n)],
                "ra": np.linspace(10.0, 11.0, n),
                "dec": 0.0,
                "brickname": "0100p000",
                "label": np.int8(label),
                "tier": tiers,
                "source": "mock" if label else "dr10",
                "split": "" if label else "train",
                "status": "ok",
                "gate_reason": "",
                "cutout_key": "cutouts/x/hpx-nest16-1/v/shard-00000.npz",
                "cutout_row": np.arange(n),
                "partition": "hpx-nest16-1",
                "type": "DEV",
                "mag_r": 20.0,
                "shape_r": 1.0,
                **{f"psf{k}_{b}": 1.0 for k in ("depth", "size") for b in "grz"},
            }
        )
        return frame.assign(**extra)

    positives = index(1, ["A", "B", "B", "A"])
    positives.loc[1, "gate_reason"] = "mag_z"
    positives.loc[2, "status"] = "edge"
    negatives = index(0, ["N1", "N2"])
    weights = {"A": 1.0, "B": 0.5, "N1": 1.0, "N2": 1.0}

    def split_of(ra, dec):
        return np.where(ra < 10.5, "train", "val")

    manifest, losses = training_manifest([positives, negatives], split_of, weights)
    assert sorted(manifest["object_id"]) == ["0-0", "0-1", "1-0", "1-3"]
    assert losses == {"A": {}, "B": {"cutout:edge": 1, "gate:mag_z": 1}, "N1": {}, "N2": {}}
    assert manifest.set_index("object_id").loc["1-3", "split"] == "val"
    assert manifest.set_index("object_id").loc["0-0", "split"] == "train"  # negatives keep theirs
    kept, losses = training_manifest([positives, negatives], split_of, weights, exclude_gated=False)
    assert "1-1" in set(kept["object_id"]) and "gate:mag_z" not in losses["B"]
    guarded, losses = training_manifest(
        [positives, negatives], split_of, weights, guard_of=lambda ra, dec: ra > 10.5
    )
    assert "1-3" not in set(guarded["object_id"]) and losses["A"] == {"split_guard": 1}

    # r magnitude alone: identical distributions -> 0.5; fully separated -> 1 (either sign)
    table = pd.DataFrame(
        {"label": [1, 1, 0, 0, 0], "tier": ["A", "B", "N1", "N1", "N2"], "mag_r": [1, 2, 1, 2, 0]}
    )
    assert magnitude_auc(table) == pytest.approx(0.5)
    table["mag_r"] = [3.0, 4.0, 1.0, 2.0, 9.0]
    assert magnitude_auc(table) == pytest.approx(1.0)
    table["mag_r"] = [1.0, 2.0, 3.0, 4.0, 0.0]
    assert magnitude_auc(table) == pytest.approx(1.0)


@pytest.mark.slow
def test_demo_training_data_acceptance(demo_run) -> None:
    """Issue 8's acceptance on the demo: usable splits per class, no brightness shortcut, a
    minority of mock Tier-A, >= 5 real Tier-A lenses rendered and in the mock DESI VAC."""
    import json

    from stronglens_assets.science.catalogs.crossmatch import nearest_match
    from stronglens_assets.science.catalogs.desi_vac import read_desi_vac

    assert demo_run.returncode == 0, demo_run.stderr[-3000:]
    meta = json.loads((demo_run.storage / "manifests" / "training_parity_v1.json").read_text())
    for name in ("positives", "negatives"):
        assert 0.25 <= meta["parity_val_fraction"][name]["val_fraction"] <= 0.35, name
    assert meta["r_mag_auc_positives_vs_n1"] <= 0.6
    assert 0 < meta["positives"]["mock_tier_a_fraction"] < 0.25
    manifest = pd.read_parquet(demo_run.storage / "training_manifest.parquet")
    assert not manifest["cutout_key"].str.contains("://").any()
    assert (manifest["gate_reason"] == "").all()

    root = demo_run.home / "mock_survey"
    truth = pd.concat(
        [pd.read_parquet(p) for p in sorted((root / "truth").glob("*/lenses-*.parquet"))]
    )
    confident = truth[(truth["source"] == "lenscat") & (truth["grading"] == "confident")]
    vac = read_desi_vac(root / "desi_dr1" / "desi-sl-vac-v1.fits")
    index, _ = nearest_match(
        confident["ra"], confident["dec"], vac["TARGET_RA"], vac["TARGET_DEC"], 0.1
    )
    assert int((index >= 0).sum()) >= 5
