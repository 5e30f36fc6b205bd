"""Scoring raw cutouts, embeddings and the frozen model of a config."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from stronglens_assets.resources.object_store import LocalObjectStore, ObjectNotFoundError
from stronglens_assets.science.imaging.preprocess import preprocess
from stronglens_assets.science.learning.model_config import ModelConfig, load_model_config
from stronglens_assets.science.learning.models import CheckpointError, build_model, state_dict_bytes
from stronglens_assets.science.learning.scoring import (
    embed_cutouts,
    load_frozen_model,
    score_cutouts,
)
from stronglens_assets.settings import PROJECT_ROOT


@pytest.fixture
def cutouts() -> np.ndarray:
    return np.random.default_rng(3).normal(0, 0.01, (7, 3, 101, 101)).astype(np.float32)


def _model(architecture: str = "resnet18"):
    torch.manual_seed(0)
    extra = {"embedding_dim": 6} if architecture == "bottlenecked_resnet" else {}
    config = ModelConfig(name="t", architecture=architecture, width=4, **extra)
    return build_model(config).eval()


def test_scores_are_sigmoid_of_logits_of_preprocessed_cutouts(cutouts):
    model = _model()
    scores = score_cutouts(model, cutouts, batch_size=3)
    with torch.no_grad():
        expected = torch.sigmoid(model(torch.from_numpy(preprocess(cutouts)))).numpy()
    assert scores.shape == (7,) and scores.dtype == np.float32
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(score_cutouts(model, cutouts, batch_size=7), scores, atol=1e-6)


def test_embeddings_shape_and_mode_restored(cutouts):
    model = _model("bottlenecked_resnet").train()
    features = embed_cutouts(model, cutouts, batch_size=4)
    assert features.shape == (7, 6) and features.dtype == np.float32
    assert model.training
    assert embed_cutouts(model, cutouts[:0]).shape[0] == 0


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
    store.write_bytes("checkpoints/paperIV_bottlenecked_resnet/best.pt", data)
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
    store.write_bytes("checkpoints/resnet18_baseline_v1/best.pt", state_dict_bytes(full))
    with pytest.raises(CheckpointError, match="shape mismatch"):
        load_frozen_model(store, "resnet18_baseline_v1", config_dir, profile="demo")
