"""model_checkpoint and the evaluation assets on a hand-built parity manifest.

A private config dir holds a tiny model config (width 4, 2 epochs); shards and the parity
manifest are written by hand (``cutout_key``/``cutout_row``). One Dagster instance per test,
so the freeze check sees ``model_checkpoint``'s materializations.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import torch

from stronglens_assets.assets import evaluation, training
from stronglens_assets.assets.shared import load_model_thresholds, preprocessing_record
from stronglens_assets.config import ConfigError, Footprint
from stronglens_assets.project import Project
from stronglens_assets.resources import LocalStorageResource
from stronglens_assets.resources.compute import GPU_POOL, ComputeResource, gpu_op_tags
from stronglens_assets.science.learning.model_config import ModelConfig, load_model_config
from stronglens_assets.science.learning.models import build_model, read_state_dict, state_dict_bytes
from stronglens_assets.settings import PROJECT_ROOT, load_settings
from stronglens_assets.storage_keys import (
    CHECKPOINT_KEY,
    EVALUATION_THRESHOLDS_KEY,
    PREPROCESSING_KEY,
)
from stronglens_assets.storage_keys import PARITY_SPLITS_KEY as PARITY_KEY_TEMPLATE
from stronglens_assets.testing.cutouts import synthetic_manifest
from stronglens_assets_tests.assets.test_metadata import assert_readable
from stronglens_assets_tests.harness import AssetHarness, local_resources

NAME = "tiny_resnet"
TINY = f"""name: {NAME}
architecture: resnet18
width: 4
preprocessing: {{method: crop_robust, crop: 32}}
epochs: 2
early_stopping_patience: 2
batch_size: 16
learning_rate: 3.0e-3
evaluation: {{calibration_bins: 10, stratum_quantile_bins: 2, batch_size: 32,
  fpr_targets: [0.2, 1.0e-3], deployment_prevalence: 0.01}}
ablation: {{core_radius_px: 4.0, annulus_outer_px: 12.0, epochs: 1, bootstrap_samples: 20}}
"""
PARITY_KEY = PARITY_KEY_TEMPLATE.format(version="v1")


class Graph:
    def __init__(self, tmp_path: Path, model_yaml: str = TINY):
        self.config_dir = tmp_path / "configs"
        (self.config_dir / "models").mkdir(parents=True)
        for name in ("cutouts.yaml", "compute.yaml"):
            shutil.copy(PROJECT_ROOT / "configs" / name, self.config_dir / name)
        self.set_model_yaml(model_yaml)
        settings = load_settings(
            {
                "STRONGLENS_HOME": str(tmp_path / "home"),
                "STRONGLENS_CONFIG_DIR": str(self.config_dir),
            }
        )
        self.project = Project(settings, Footprint(partition_nside=16, bricks=("0366m037",)))
        self.storage = LocalStorageResource(root=str(tmp_path / "storage"))
        self.store = self.storage.object_store()
        self.manifest = synthetic_manifest(self.store, n=64, shard_size=32, test_fraction=0.3)
        self.storage.write_value(PARITY_KEY.removesuffix(".parquet"), self.manifest)
        tier_a = self.manifest[self.manifest["tier"] == "A"]
        # VAC lenses in val and in test: only the test ones may count
        vac = pd.concat([tier_a[tier_a["split"] == s].iloc[:2] for s in ("val", "test")])
        self.vac = pd.DataFrame({"TARGET_RA": vac["ra"], "TARGET_DEC": vac["dec"]})
        self.instance = dg.DagsterInstance.ephemeral()
        self.resources = local_resources(self.storage, compute=ComputeResource(device="cpu"))

    def set_model_yaml(self, text: str) -> None:
        (self.config_dir / "models" / f"{NAME}.yaml").write_text(text)

    def assets(self) -> list:
        vac = self.vac

        @dg.asset(name="desi_dr1_vac")
        def desi_dr1_vac() -> pd.DataFrame:
            return vac

        @dg.asset(name="training_manifest")
        def training_manifest() -> None:
            return None

        return [
            desi_dr1_vac,
            training_manifest,
            *training.build_assets(self.project),
            *evaluation.build_assets(self.project),
        ]

    def run(self, selection: list[str]) -> dg.ExecuteInProcessResult:
        """Materialize ``selection`` of the current assets (the model YAML may have changed)."""
        return AssetHarness(self.assets(), self.resources, self.instance).run(selection, NAME)

    def checkpoint(self) -> bytes:
        return self.store.read_bytes(CHECKPOINT_KEY.format(name=NAME))


EVALUATION = [
    "validation_scores",
    "evaluation_thresholds",
    "calibration_report",
    "spectroscopic_validation",
    "annulus_core_ablation",
]


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {
        f"{e.asset_key.to_user_string()}:{e.check_name}": e.passed
        for e in result.get_asset_check_evaluations()
    }


def _error(result: dg.ExecuteInProcessResult) -> str:
    return "\n".join(
        str(event.step_failure_data.error) for event in result.get_step_failure_events()
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Iterator[tuple[Graph, dg.ExecuteInProcessResult]]:
    graph = Graph(tmp_path_factory.mktemp("graph"))
    result = graph.run(["desi_dr1_vac", "model_checkpoint", *EVALUATION])
    yield graph, result
    graph.instance.dispose()


@pytest.fixture
def make_graph(tmp_path: Path) -> Iterator[Callable[[], Graph]]:
    """``Graph(tmp_path)``, its Dagster instance disposed after the test."""
    graphs: list[Graph] = []

    def make() -> Graph:
        graphs.append(Graph(tmp_path))
        return graphs[-1]

    yield make
    for graph in graphs:
        graph.instance.dispose()


def test_graph_trains_and_evaluates(trained):
    graph, result = trained
    assert result.success, _error(result)
    checks = _checks(result)
    assert checks == {f"{name}:model_frozen": True for name in EVALUATION}
    value = result.output_for_node("model_checkpoint")
    data = graph.checkpoint()
    assert value["checkpoint_key"] == f"checkpoints/{NAME}/best.pt"
    assert value["sha256"] == hashlib.sha256(data).hexdigest()
    state = torch.load(io.BytesIO(data), weights_only=True)
    assert len(state) == 122
    history = graph.storage.read_value(f"checkpoints/{NAME}/history.json")
    assert [h["epoch"] for h in history["epochs"]] == [1, 2]
    (materialization,) = [
        e.materialization
        for e in result.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey("model_checkpoint")
    ]
    md = materialization.metadata["training_curve"].value
    assert md.startswith("![") and "data:image/png;base64," in md
    assert materialization.metadata["checkpoint_sha256"].value == value["sha256"]
    # the checkpoint records the preprocessing it was trained with
    record = json.loads(graph.store.read_bytes(PREPROCESSING_KEY.format(name=NAME)))
    assert record["checkpoint_sha256"] == value["sha256"]
    assert record["preprocessing"] == {
        "method": "crop_robust",
        "crop": 32,
        "stat_radius_px": 20.0,
        "clip": 50.0,
    }
    assert value["preprocessing"] == history["preprocessing"] == record["preprocessing"]


def test_metadata_reads_in_the_ui(trained):
    """Floats shown rounded, the per-epoch record a table (full precision in history.json)."""
    graph, result = trained
    for event in result.get_asset_materialization_events():
        assert_readable(event.materialization.metadata, event.asset_key.to_user_string())
    for evaluation_ in result.get_asset_check_evaluations():
        assert_readable(evaluation_.metadata, evaluation_.check_name)
    (materialization,) = [
        e.materialization
        for e in result.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey("model_checkpoint")
    ]
    epochs = materialization.metadata["epochs"]
    assert isinstance(epochs, dg.TableMetadataValue)
    assert [r.data["epoch"] for r in epochs.records] == [1, 2]
    history = graph.storage.read_value(f"checkpoints/{NAME}/history.json")
    assert [r.data["loss"] for r in epochs.records] == [
        pytest.approx(h["loss"], rel=1e-3) for h in history["epochs"]
    ]


def test_evaluation_outputs(trained):
    graph, result = trained
    scores = result.output_for_node("validation_scores")
    held_out = graph.manifest[graph.manifest["split"].isin(["val", "test"])]
    assert len(scores) == len(held_out)
    assert set(scores["object_id"]) == set(held_out["object_id"])
    assert scores["score"].between(0, 1).all()
    for column in (
        "label",
        "tier",
        "source",
        "pool_class",
        "type",
        "psfsize_r",
        "psfdepth_z",
        "split",
    ):
        assert column in scores
    report = result.output_for_node("calibration_report")
    assert {"ece", "mce", "n_bins", "convention", "by_stratum", "ece_deployment"} <= set(report)
    assert report["n_bins"] == 10 and 0 <= report["ece"] <= report["mce"] + 1e-9
    assert {"tier", "pool_class", "type", "psfsize_r", "psfdepth_r"} <= set(report["by_stratum"])
    assert sum(s["n"] for s in report["by_stratum"]["tier"].values()) == report["n"]
    # strata of one class (tier A: lenses only) are summarised, not reported as calibration
    assert report["by_stratum"]["tier"]["A"]["ece"] is None
    assert report["by_stratum"]["tier"]["A"]["calibration"] == "not reported: one class only"
    ablation = result.output_for_node("annulus_core_ablation")
    assert set(ablation["auc"]) == {"full", "annulus_only", "core_only"}
    assert graph.store.exists(f"checkpoints/{NAME}/ablation_core_only.pt")


def test_reported_metrics_come_from_the_split_they_name(trained):
    """Val picks the thresholds; calibration, spectroscopic recall and the ablation are test
    numbers, recomputed here from the test rows alone (torchmetrics, scikit-learn)."""
    from sklearn.metrics import roc_auc_score
    from torchmetrics.classification import BinaryCalibrationError

    graph, result = trained
    scores = result.output_for_node("validation_scores")
    test = scores[scores["split"] == "test"]
    assert set(test["object_id"]) == set(
        graph.manifest.loc[graph.manifest["split"] == "test", "object_id"]
    )
    report = result.output_for_node("calibration_report")
    assert report["split"] == "test" and report["n"] == len(test)
    expected = BinaryCalibrationError(n_bins=10, norm="l1")(
        torch.tensor(test["score"].to_numpy(), dtype=torch.float32),
        torch.tensor(test["label"].to_numpy(), dtype=torch.int64),
    )
    assert report["ece"] == pytest.approx(float(expected), abs=1e-6)
    assert report["sample_prevalence"] == pytest.approx(test["label"].mean())
    spec = result.output_for_node("spectroscopic_validation")
    in_test = set(graph.manifest.loc[graph.vac.index, "object_id"]) & set(test["object_id"])
    assert spec["split"] == "test" and spec["object_ids"] == sorted(in_test)
    assert spec["n"] == len(in_test) == 2  # the two val lenses in the VAC do not count
    ablation = result.output_for_node("annulus_core_ablation")
    assert ablation["split"] == "test" and ablation["n_test"] == len(test)
    assert ablation["auc"]["full"]["auc"] == pytest.approx(
        roc_auc_score(test["label"], test["score"])
    )


def test_thresholds_rest_on_val_negatives_and_every_consumer_uses_them(trained):
    graph, result = trained
    scores = result.output_for_node("validation_scores")
    negatives = np.sort(scores.loc[(scores["split"] == "val") & (scores["label"] == 0), "score"])
    document = json.loads(graph.store.read_bytes(EVALUATION_THRESHOLDS_KEY.format(name=NAME)))
    assert document == result.output_for_node("evaluation_thresholds")
    assert document["model"] == NAME and document["split"] == "val"
    assert document["n_negatives"] == len(negatives)
    entries = {e["label"]: e for e in document["thresholds"]}
    assert list(entries) == ["p>0.3", "p>0.5", "p>0.7", "FPR=2e-1", "FPR=1e-3"]
    assert entries["p>0.5"] == {
        "label": "p>0.5",
        "value": 0.5,
        "fpr_target": None,
        "n_negatives": None,
        "resolved": True,
    }
    # FPR 0.2 of n negatives allows floor(0.2 n) above: the next-highest score is t
    allowed = int(np.floor(0.2 * len(negatives) + 1e-9))
    assert entries["FPR=2e-1"]["value"] == pytest.approx(negatives[::-1][allowed])
    assert entries["FPR=2e-1"]["n_negatives"] == len(negatives)
    assert entries["FPR=1e-3"]["resolved"] is False and entries["FPR=1e-3"]["value"] is None
    assert "1000 negatives" in entries["FPR=1e-3"]["reason"]
    specs, unresolved = load_model_thresholds(graph.storage, NAME)
    assert [s.label for s in specs] == ["p>0.3", "p>0.5", "p>0.7", "FPR=2e-1"]
    assert [u["label"] for u in unresolved] == ["FPR=1e-3"]
    report = result.output_for_node("calibration_report")
    assert [t["label"] for t in report["thresholds"]] == [s.label for s in specs]
    assert [u["label"] for u in report["unresolved_thresholds"]] == ["FPR=1e-3"]
    spec = result.output_for_node("spectroscopic_validation")
    by_threshold = spec["by_threshold"]
    assert [t["label"] for t in by_threshold] == [s.label for s in specs]
    test = scores[scores["split"] == "test"].set_index("object_id")
    for row, threshold in zip(by_threshold, specs, strict=True):
        lens_scores = test.loc[spec["object_ids"], "score"]
        assert row["k"] == int((lens_scores > threshold.value).sum()) and row["n"] == 2
        assert {m["name"] for m in row["missed"]} == set(
            lens_scores[lens_scores <= threshold.value].index
        )
        assert all({"name", "deflector_mag_r", "score"} <= set(m) for m in row["missed"])
        assert row["confidence"] == 0.95


def test_unresolvable_fpr_target_required_is_an_error_and_keeps_the_thresholds(trained):
    graph, _ = trained
    key = EVALUATION_THRESHOLDS_KEY.format(name=NAME)
    before = graph.store.read_bytes(key)
    graph.set_model_yaml(
        TINY.replace(
            "deployment_prevalence: 0.01",
            "deployment_prevalence: 0.01, require_fpr_thresholds: true",
        )
    )
    try:
        result = graph.run(["evaluation_thresholds"])
        assert not result.success
        assert "fpr_target 0.001 needs at least 1000 negatives" in _error(result)
        assert graph.store.read_bytes(key) == before
    finally:
        graph.set_model_yaml(TINY)


def test_gpu_tags_and_pool(make_graph):
    graph = make_graph()
    (checkpoint,) = training.build_assets(graph.project)
    spec = checkpoint.get_asset_spec(dg.AssetKey("model_checkpoint"))
    assert checkpoint.op.pool == GPU_POOL
    tag = checkpoint.op.tags["dagster-k8s/config"]  # Dagster stores op tags as JSON
    assert json.loads(tag) == gpu_op_tags(graph.config_dir)["dagster-k8s/config"]
    assert checkpoint.partitions_def.get_partition_keys() == [NAME]
    assert spec.partitions_def is not None


def test_a_changed_checkpoint_fails_before_scoring_and_keeps_previous_outputs(trained, tmp_path):
    """Issue 23 item 2: another best.pt (here with a matching preprocessing record, so only
    the sha256 model_checkpoint recorded can tell) fails validation_scores before it scores
    or writes anything; the previous scores stay byte-identical."""
    graph, _ = trained
    good = graph.checkpoint()
    record_key = PREPROCESSING_KEY.format(name=NAME)
    good_record = graph.store.read_bytes(record_key)
    scores_key = f"validation_scores/{NAME}.parquet"
    scores_before = graph.store.read_bytes(scores_key)
    config = load_model_config(graph.config_dir, NAME, "full")
    other = state_dict_bytes(build_model(config))
    graph.store.write_bytes(f"checkpoints/{NAME}/best.pt", other)
    sha = hashlib.sha256(other).hexdigest()
    graph.store.write_bytes(record_key, preprocessing_record(NAME, sha, config.preprocessing))
    try:
        result = graph.run(["validation_scores"])
        assert not result.success
        error = _error(result)
        assert "best.pt" in error and f"sha256 {sha} does not match" in error, error
        assert graph.store.read_bytes(scores_key) == scores_before
    finally:
        graph.store.write_bytes(f"checkpoints/{NAME}/best.pt", good)
        graph.store.write_bytes(record_key, good_record)


def test_missing_shard_fails_and_keeps_previous_outputs(trained):
    graph, _ = trained
    before = {k: graph.store.read_bytes(k) for k in graph.store.list_keys("checkpoints")}
    broken = graph.manifest.copy()
    broken.loc[7, "cutout_key"] = "cutouts/test/v1/shard-00042.npz"
    graph.storage.write_value(PARITY_KEY.removesuffix(".parquet"), broken)
    try:
        result = graph.run(["model_checkpoint"])
        assert not result.success
        assert "obj0007" in _error(result) and "shard-00042.npz" in _error(result)
        assert {
            k: graph.store.read_bytes(k) for k in graph.store.list_keys("checkpoints")
        } == before
    finally:
        graph.storage.write_value(PARITY_KEY.removesuffix(".parquet"), graph.manifest)


def _save(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def test_pretrained_import_wrapped_and_mismatched(make_graph, tmp_path):
    graph = make_graph()
    config = load_model_config(graph.config_dir, NAME, "full")
    torch.manual_seed(11)
    source = build_model(config)
    (tmp_path / "published.pt").write_bytes(
        _save({"model_state_dict": source.state_dict(), "epoch": 16})
    )
    graph.set_model_yaml(TINY + f"pretrained: {tmp_path / 'published.pt'}\n")
    result = graph.run(["model_checkpoint"])
    assert result.success, _error(result)
    assert graph.checkpoint() == state_dict_bytes(source)
    good = graph.checkpoint()
    state = dict(source.state_dict())
    state.pop("fc.bias")
    state["classifier.weight"] = torch.zeros(1)
    (tmp_path / "bad.pt").write_bytes(_save(state))
    graph.set_model_yaml(TINY + f"pretrained: {tmp_path / 'bad.pt'}\n")
    result = graph.run(["model_checkpoint"])
    assert not result.success
    message = _error(result)
    assert "bad.pt" in message and "fc.bias" in message and "classifier.weight" in message
    (tmp_path / "bad.pt").write_bytes(_save({"epoch": 3}))
    result = graph.run(["model_checkpoint"])
    assert "not a state dict" in _error(result)
    assert graph.checkpoint() == good


def test_pretrained_locations_s3_and_relative_path(tmp_path, s3_server, s3_bucket):
    import boto3

    source = build_model(ModelConfig(name="m", architecture="resnet18", width=4))
    payload = _save({"state_dict": source.state_dict()})
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-2")
    client.put_object(Bucket=s3_bucket, Key="checkpoints/m/best.pt", Body=payload)
    fetched = training.fetch_pretrained(
        f"s3://{s3_bucket}/checkpoints/m/best.pt", tmp_path, s3_server
    )
    assert fetched == payload
    assert list(read_state_dict(fetched, "s3")) == list(source.state_dict())
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "best.pt").write_bytes(payload)
    assert training.fetch_pretrained("weights/best.pt", tmp_path) == payload
    with pytest.raises(ConfigError, match="cannot be read"):
        training.fetch_pretrained("weights/missing.pt", tmp_path)
    missing = f"s3://{s3_bucket}/pretrained/m/none.pt"
    with pytest.raises(ConfigError, match=f"pretrained checkpoint {missing} cannot be fetched"):
        training.fetch_pretrained(missing, tmp_path, s3_server)


def test_validation_scores_stream_shard_groups_in_manifest_order(tmp_path, monkeypatch) -> None:
    """Scored a few shards at a time (bounded memory), each row gets its own cutout's score:
    the same as scoring every val cutout in one call."""
    from stronglens_assets.science.learning.datasets import load_cutouts
    from stronglens_assets.science.learning.scoring import score_cutouts

    storage = LocalStorageResource(root=str(tmp_path / "storage"))
    manifest = synthetic_manifest(storage.object_store(), n=80, shard_size=8)
    manifest = manifest.sample(frac=1.0, random_state=1).reset_index(drop=True)  # shards mixed
    torch.manual_seed(0)
    model = build_model(ModelConfig(name="m", architecture="resnet18", width=4)).eval()
    val = manifest[manifest["split"] == "val"].reset_index(drop=True)
    everything = score_cutouts(
        model, load_cutouts(storage.object_store().read_bytes, val), batch_size=16
    )
    monkeypatch.setattr(evaluation, "SCORING_CHUNK_CUTOUTS", 5)  # ~1 shard per chunk
    table = evaluation.score_validation(model, manifest, storage, torch.device("cpu"), 16)
    assert list(table["object_id"]) == list(val["object_id"])
    assert table["score"].to_numpy() == pytest.approx(everything.astype(float), abs=1e-6)


def test_a_manifest_without_a_test_split_is_a_clear_error(make_graph):
    """The 70/30 view (val + test as val) is not what evaluation reads: with no test rows the
    scores fail naming the manifest and the missing split, and nothing is written."""
    graph = make_graph()
    assert graph.run(["model_checkpoint"]).success
    seventy_thirty = graph.manifest.assign(split=graph.manifest["split"].replace("test", "val"))
    graph.storage.write_value(PARITY_KEY.removesuffix(".parquet"), seventy_thirty)
    result = graph.run(["validation_scores"])
    assert not result.success
    message = _error(result)
    assert "no 'test' rows" in message and "training_parity_splits_v1.parquet" in message
    assert not graph.store.exists(f"validation_scores/{NAME}.parquet")
