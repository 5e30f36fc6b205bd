"""Scoring raw cutouts with a trained model: p(lens) and embeddings.

Used by the evaluation assets and by the D06 experiments (injection-recovery grids, bright
arcs, linear probe, Tier-A scoring). Both functions take raw DR10 cutouts
``(N, 3, 101, 101)`` float nanomaggies (NumPy or CuPy) and call
:func:`~.preprocess.preprocess` batch by batch with the model's own preprocessing
(``model.preprocessing``, set by ``build_model`` from its config and checked against the
checkpoint's record when a frozen model is loaded), so injections are seen exactly as
training cutouts. Other settings only on purpose: ``preprocessing_override`` (e.g.
``{"clip": 20}``, the paper's clip20 experiment) replaces those fields, and the outputs
should say so.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from stronglens_assets.science.imaging.preprocess import (
    CropRobust,
    RawRobust,
    preprocess,
    preprocessing_with,
)


def _device(model: torch.nn.Module, device: Any) -> torch.device:
    if device is None:
        return next(model.parameters()).device
    return torch.device(device)


def model_preprocessing(
    model: torch.nn.Module, override: Mapping[str, Any] | None = None
) -> CropRobust | RawRobust:
    """The preprocessing scoring applies: ``model.preprocessing`` with ``override``'s fields
    replaced (on purpose only). ``ValueError`` when the model records none."""
    settings = getattr(model, "preprocessing", None)
    if not isinstance(settings, CropRobust | RawRobust):
        raise ValueError(
            f"{type(model).__name__} records no preprocessing (build it with build_model(config))"
        )
    if override:
        settings = preprocessing_with(settings, override, "preprocessing_override")
    return settings


def _batches(cutouts: Any, settings: Any, batch_size: int, device: torch.device):
    if cutouts.ndim != 4:
        raise ValueError(f"expected (N, 3, H, W) cutouts, got shape {tuple(cutouts.shape)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    for start in range(0, len(cutouts), batch_size):
        images = preprocess(cutouts[start : start + batch_size], settings)
        if isinstance(images, np.ndarray):
            yield torch.from_numpy(images).to(device)
        else:  # CuPy: hand the device buffer to torch without a host copy
            yield torch.as_tensor(images, device=device)


def _run(model, cutouts, batch_size, device, fn, override) -> np.ndarray:
    settings = model_preprocessing(model, override)
    device = _device(model, device)
    model = model.to(device)
    was_training = model.training
    model.eval()
    out = []
    try:
        with torch.no_grad():
            for x in _batches(cutouts, settings, batch_size, device):
                with torch.autocast(device.type, enabled=device.type == "cuda"):
                    out.append(fn(model, x).float().cpu().numpy())
    finally:
        model.train(was_training)
    return np.concatenate(out) if out else np.zeros((0,), np.float32)


def score_cutouts(
    model: torch.nn.Module,
    cutouts: Any,
    *,
    batch_size: int = 256,
    device: Any = None,
    preprocessing_override: Mapping[str, Any] | None = None,
) -> np.ndarray:
    """p(lens) = sigmoid(logit) of raw cutouts, ``(N,)`` float32 in [0, 1].

    ``device``: torch device (default: the model's). The model is used in eval mode and
    restored to its previous mode. ``preprocessing_override``: module docstring.
    """
    scores = _run(
        model,
        cutouts,
        batch_size,
        device,
        lambda m, x: torch.sigmoid(m(x).float()),
        preprocessing_override,
    )
    return scores.astype(np.float32).reshape(-1)


def embed_cutouts(
    model: torch.nn.Module,
    cutouts: Any,
    *,
    batch_size: int = 256,
    device: Any = None,
    preprocessing_override: Mapping[str, Any] | None = None,
) -> np.ndarray:
    """``model.embed`` features of raw cutouts, ``(N, D)`` float32 (options as
    :func:`score_cutouts`)."""
    features = _run(
        model, cutouts, batch_size, device, lambda m, x: m.embed(x), preprocessing_override
    )
    if features.ndim == 1:  # no cutouts
        return features.reshape(0, 0)
    return features.astype(np.float32)
