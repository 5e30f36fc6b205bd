"""End to end: what the demo's training and evaluation assets wrote (shared ``demo_run``)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from stronglens_assets.science.learning.model_config import model_config_names
from stronglens_assets.settings import PROJECT_ROOT

CONFIGS = model_config_names(PROJECT_ROOT / "configs")
# The seeds' two configs. The paper's EfficientNetV2-S at its demo size (width and depth x0.25,
# from scratch, ~400 training rows) does not learn the embedded default (val AUC ~0.6): the
# demo trains and evaluates it (every output below is checked) without a learning claim.
SEEDS_CONFIGS = ("paperIV_bottlenecked_resnet", "resnet18_baseline_v1")


def check_training_outputs(storage: Path) -> None:
    manifest = pd.read_parquet(storage / "training_manifest.parquet")
    counts = manifest["label"].value_counts()
    assert counts[0] >= 10 * counts[1], counts.to_dict()  # issue 18: >= 1:10 toward the paper's
    assert manifest["object_id"].is_unique  # no object in two splits
    for name in CONFIGS:
        state = torch.load(
            io.BytesIO((storage / "checkpoints" / name / "best.pt").read_bytes()),
            weights_only=True,
        )
        stem, head = (  # torchvision's EfficientNetV2-S or ResNet layout
            ("features.0.0.weight", "classifier.1.weight")
            if "features.0.0.weight" in state
            else ("conv1.weight", "fc.weight")
        )
        assert state[stem].shape[1] == 3 and state[head].shape[0] == 1
        history = json.loads((storage / "checkpoints" / name / "history.json").read_text())
        assert 0.0 <= history["best_val_auc"] <= 1.0
        if name in SEEDS_CONFIGS:  # the seeds' demo models learn the embedded default
            assert history["best_val_auc"] > 0.7, (name, history["best_val_auc"])  # chance 0.5
        value = json.loads((storage / "model_checkpoint" / f"{name}.json").read_text())
        assert value["checkpoint_key"] == f"checkpoints/{name}/best.pt"

        scores = pd.read_parquet(storage / "validation_scores" / f"{name}.parquet")
        assert scores["score"].between(0, 1).all() and set(scores["label"]) == {0, 1}
        assert (scores["checkpoint_sha256"] == value["sha256"]).all()
        assert set(scores["split"]) == {"val", "test"}
        report = json.loads((storage / "calibration_report" / f"{name}.json").read_text())
        assert report["split"] == "test" and report["n"] == int((scores["split"] == "test").sum())
        assert 0 <= report["ece"] <= 1 and 0 <= report["ece_deployment"] <= 1
        thresholds = json.loads((storage / "evaluation" / name / "thresholds.json").read_text())
        assert thresholds["split"] == "val" and thresholds["checkpoint_sha256"] == value["sha256"]
        assert {"tier", "pool_class", "type", "psfsize_r", "psfdepth_r"} <= set(
            report["by_stratum"]
        )
        spec = json.loads((storage / "spectroscopic_validation" / f"{name}.json").read_text())
        assert spec["n"] <= spec["n_tier"] and spec["checkpoint_sha256"] == value["sha256"]
        assert spec["split"] == "test" and spec["n"] >= 5  # issue 18 item 7: real Tier-A
        assert len(spec["by_threshold"]) >= 3
        ablation = json.loads((storage / "annulus_core_ablation" / f"{name}.json").read_text())
        assert set(ablation["auc"]) == {"full", "annulus_only", "core_only"}


@pytest.mark.slow
def test_demo_trains_both_configs_and_evaluates(demo_run):
    assert demo_run.returncode == 0, demo_run.stderr[-4000:]
    check_training_outputs(demo_run.storage)
