"""Wiring shared by the asset modules: the frozen model of a config (model_checkpoint's
best.pt), loaded by evaluation and D06."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from stronglens_assets import storage_keys as keys
from stronglens_assets.assets.shared import (
    PreprocessingMismatchError,
    load_frozen_model,
    preprocessing_record,
)
from stronglens_assets.resources.object_store import LocalObjectStore, ObjectNotFoundError
from stronglens_assets.science.imaging.preprocess import CropRobust
from stronglens_assets.science.learning.model_config import load_model_config
from stronglens_assets.science.learning.models import CheckpointError, build_model, state_dict_bytes
from stronglens_assets.science.learning.scoring import score_cutouts
from stronglens_assets.settings import PROJECT_ROOT


@pytest.fixture
def cutouts() -> np.ndarray:
    return np.random.default_rng(3).normal(0, 0.01, (7, 3, 101, 101)).astype(np.float32)


def _config_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "configs"
    shutil.copytree(PROJECT_ROOT / "configs" / "models", directory / "models")
    return directory


def test_load_frozen_model_round_trip(tmp_path, cutouts):
    config_dir = _config_dir(tmp_path)
    config = load_model_config(config_dir, "paperIV_bottlenecked_resnet", "demo")
    torch.manual_seed(5)
    trained = build_model(config).eval()
    data = state_dict_bytes(trained)
    store = LocalObjectStore(tmp_path / "storage")
    name = "paperIV_bottlenecked_resnet"
    store.write_bytes(keys.CHECKPOINT_KEY.format(name=name), data)
    sha = hashlib.sha256(data).hexdigest()
    record_key = keys.PREPROCESSING_KEY.format(name=name)
    store.write_bytes(record_key, preprocessing_record(name, sha, config.preprocessing))
    model, got = load_frozen_model(store, name, config_dir, profile="demo")
    assert got == sha and model.preprocessing == config.preprocessing
    assert not model.training
    np.testing.assert_array_equal(score_cutouts(model, cutouts), score_cutouts(trained, cutouts))


def test_checkpoint_preprocessing_must_match_the_config(tmp_path):
    config_dir = _config_dir(tmp_path)
    name = "paperIV_bottlenecked_resnet"
    config = load_model_config(config_dir, name, "demo")
    data = state_dict_bytes(build_model(config))
    store = LocalObjectStore(tmp_path / "storage")
    store.write_bytes(keys.CHECKPOINT_KEY.format(name=name), data)
    sha = hashlib.sha256(data).hexdigest()
    record_key = keys.PREPROCESSING_KEY.format(name=name)
    with pytest.raises(PreprocessingMismatchError, match="records no preprocessing"):
        load_frozen_model(store, name, config_dir, profile="demo")
    # trained with the seeds' crops, the config now says raw_robust: an error naming both
    store.write_bytes(record_key, preprocessing_record(name, sha, CropRobust()))
    with pytest.raises(PreprocessingMismatchError) as info:
        load_frozen_model(store, name, config_dir, profile="demo")
    assert "crop_robust" in str(info.value) and "raw_robust" in str(info.value)
    assert "best.pt" in str(info.value)
    # a record written for other weights is stale
    store.write_bytes(record_key, preprocessing_record(name, "0" * 64, config.preprocessing))
    with pytest.raises(PreprocessingMismatchError, match=r"not the current best\.pt"):
        load_frozen_model(store, name, config_dir, profile="demo")


def test_load_frozen_model_errors(tmp_path):
    config_dir = _config_dir(tmp_path)
    store = LocalObjectStore(tmp_path / "storage")
    with pytest.raises(ObjectNotFoundError):
        load_frozen_model(store, "resnet18_baseline_v1", config_dir, profile="demo")
    # a full-width checkpoint does not fit the demo-width model: shapes are named
    full = build_model(load_model_config(config_dir, "resnet18_baseline_v1", "full"))
    store.write_bytes(
        keys.CHECKPOINT_KEY.format(name="resnet18_baseline_v1"), state_dict_bytes(full)
    )
    with pytest.raises(CheckpointError, match="shape mismatch"):
        load_frozen_model(store, "resnet18_baseline_v1", config_dir, profile="demo")


def test_model_thresholds_round_trip_and_bad_files(tmp_path):
    from stronglens_assets.assets.shared import load_model_thresholds, model_thresholds_document
    from stronglens_assets.science.stats.thresholds import ThresholdsFormatError

    store = LocalObjectStore(tmp_path / "storage")
    key = keys.EVALUATION_THRESHOLDS_KEY.format(name="m")
    with pytest.raises(ThresholdsFormatError, match=r"evaluation/m/thresholds\.json.*materialize"):
        load_model_thresholds(store, "m")
    document = model_thresholds_document(
        "m", "ab" * 32, np.arange(2_000) / 2_000, (0.3, 0.5, 0.7), (1e-3, 1e-4)
    )
    assert document["split"] == "val" and document["n_negatives"] == 2_000
    store.write_bytes(key, json.dumps(document).encode())
    specs, unresolved = load_model_thresholds(store, "m")
    assert [s.label for s in specs] == ["p>0.3", "p>0.5", "p>0.7", "FPR=1e-3"]
    assert specs[-1].value == pytest.approx(1_997 / 2_000) and specs[-1].n_negatives == 2_000
    assert unresolved[0]["label"] == "FPR=1e-4" and "10000 negatives" in unresolved[0]["reason"]
    for bad, message in (
        (b"{not json", "not valid JSON"),
        (json.dumps({"model": "m"}).encode(), "'thresholds' list"),
        (json.dumps({**document, "model": "other"}).encode(), "written for model 'other'"),
    ):
        store.write_bytes(key, bad)
        with pytest.raises(ThresholdsFormatError, match=message) as info:
            load_model_thresholds(store, "m")
        assert key in str(info.value)
