"""Scoring raw cutouts, embeddings and the frozen model of a config."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stronglens_assets.science.imaging.preprocess import preprocess
from stronglens_assets.science.learning.model_config import ModelConfig
from stronglens_assets.science.learning.models import build_model
from stronglens_assets.science.learning.scoring import embed_cutouts, score_cutouts


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
