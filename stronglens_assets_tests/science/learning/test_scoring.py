"""Scoring raw cutouts, embeddings and the frozen model of a config."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stronglens_assets.config import ConfigError
from stronglens_assets.science.imaging.preprocess import CropRobust, RawRobust, preprocess
from stronglens_assets.science.learning.model_config import ModelConfig
from stronglens_assets.science.learning.models import build_model
from stronglens_assets.science.learning.scoring import embed_cutouts, score_cutouts


@pytest.fixture
def cutouts() -> np.ndarray:
    return np.random.default_rng(3).normal(0, 0.01, (7, 3, 101, 101)).astype(np.float32)


def _model(architecture: str = "resnet18", **preprocessing):
    torch.manual_seed(0)
    extra = {"embedding_dim": 6} if architecture == "bottlenecked_resnet" else {}
    config = ModelConfig(name="t", architecture=architecture, width=4, **extra, **preprocessing)
    return build_model(config).eval()


def test_scores_are_sigmoid_of_logits_of_preprocessed_cutouts(cutouts):
    model = _model()
    scores = score_cutouts(model, cutouts, batch_size=3)
    with torch.no_grad():
        x = torch.from_numpy(preprocess(cutouts, CropRobust()))
        expected = torch.sigmoid(model(x)).numpy()
    assert scores.shape == (7,) and scores.dtype == np.float32
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(score_cutouts(model, cutouts, batch_size=7), scores, atol=1e-6)


def test_embeddings_shape_and_mode_restored(cutouts):
    model = _model("bottlenecked_resnet").train()
    features = embed_cutouts(model, cutouts, batch_size=4)
    assert features.shape == (7, 6) and features.dtype == np.float32
    assert model.training
    assert embed_cutouts(model, cutouts[:0]).shape[0] == 0


def test_scoring_uses_the_model_preprocessing_and_overrides_only_on_purpose(cutouts):
    cutouts = cutouts.copy()
    cutouts[:, :, 45:56, 45:56] += 1.0  # a bright core: the clip range matters
    model = _model(preprocessing=RawRobust())
    assert model.preprocessing == RawRobust()
    scores = score_cutouts(model, cutouts)
    with torch.no_grad():
        raw = torch.sigmoid(model(torch.from_numpy(preprocess(cutouts, RawRobust()))))
        clip20 = preprocess(cutouts, RawRobust(clip=20))
        expected20 = torch.sigmoid(model(torch.from_numpy(clip20)))
    np.testing.assert_allclose(scores, raw.numpy(), rtol=1e-5, atol=1e-6)
    overridden = score_cutouts(model, cutouts, preprocessing_override={"clip": 20})
    np.testing.assert_allclose(overridden, expected20.numpy(), rtol=1e-5, atol=1e-6)
    assert not np.allclose(overridden, scores)
    assert model.preprocessing == RawRobust()  # the override does not stick
    with pytest.raises(ConfigError, match="cannot change the method"):
        score_cutouts(model, cutouts, preprocessing_override={"method": "crop_robust"})
    del model.preprocessing
    with pytest.raises(ValueError, match="records no preprocessing"):
        score_cutouts(model, cutouts)
