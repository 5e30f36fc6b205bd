"""Wiring shared by the asset modules: the frozen model of a config (model_checkpoint's
best.pt), loaded by evaluation and D06."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from stronglens_assets import storage_keys as keys
from stronglens_assets.assets.shared import load_frozen_model
from stronglens_assets.resources.object_store import LocalObjectStore, ObjectNotFoundError
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
    store.write_bytes(keys.CHECKPOINT_KEY.format(name="paperIV_bottlenecked_resnet"), data)
    model, sha = load_frozen_model(store, "paperIV_bottlenecked_resnet", config_dir, profile="demo")
    assert sha == hashlib.sha256(data).hexdigest()
    assert not model.training
    np.testing.assert_array_equal(score_cutouts(model, cutouts), score_cutouts(trained, cutouts))


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


def test_a_checkpoint_that_differs_from_its_record_is_refused_before_loading(tmp_path, cutouts):
    """Issue 23 item 2 (loading): 4 flipped bytes in best.pt still load as a state dict (and
    score differently); against the recorded sha256 the load fails naming the file."""
    config_dir = _config_dir(tmp_path)
    name = "paperIV_bottlenecked_resnet"
    torch.manual_seed(5)
    trained = build_model(load_model_config(config_dir, name, "demo")).eval()
    data = state_dict_bytes(trained)
    recorded = hashlib.sha256(data).hexdigest()
    store = LocalObjectStore(tmp_path / "storage")
    key = keys.CHECKPOINT_KEY.format(name=name)
    flipped = bytearray(data)
    for offset in (len(data) // 2 + k for k in range(4)):  # inside the tensor data
        flipped[offset] ^= 0xFF
    store.write_bytes(key, bytes(flipped))
    corrupted, _ = load_frozen_model(store, name, config_dir, profile="demo")  # still loads
    assert not np.array_equal(score_cutouts(corrupted, cutouts), score_cutouts(trained, cutouts))
    with pytest.raises(
        CheckpointError, match=rf"best\.pt: sha256 .* does not match the {recorded}"
    ):
        load_frozen_model(store, name, config_dir, profile="demo", expected_sha256=recorded)
    store.write_bytes(key, data)
    _, sha = load_frozen_model(store, name, config_dir, profile="demo", expected_sha256=recorded)
    assert sha == recorded
