"""Scoring raw cutouts with a trained model: p(lens) and embeddings.

Used by the evaluation assets and by the D06 experiments (injection-recovery grids, bright
arcs, linear probe, Tier-A scoring). Both functions take raw DR10 cutouts
``(N, 3, 101, 101)`` float nanomaggies (NumPy or CuPy) and call
:func:`~.preprocess.preprocess` batch by batch, so injections are seen exactly as training
cutouts.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from stronglens_assets.science.imaging.preprocess import preprocess


def _device(model: torch.nn.Module, device: Any) -> torch.device:
    if device is None:
        return next(model.parameters()).device
    return torch.device(device)


def _batches(
    cutouts: Any,
    model: torch.nn.Module,
    batch_size: int,
    device: torch.device,
    clip: float | None = None,
):
    if cutouts.ndim != 4:
        raise ValueError(f"expected (N, 3, H, W) cutouts, got shape {tuple(cutouts.shape)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    crop = int(getattr(model, "crop", 64))
    for start in range(0, len(cutouts), batch_size):
        batch = cutouts[start : start + batch_size]
        images = preprocess(batch, crop) if clip is None else preprocess(batch, crop, clip=clip)
        if isinstance(images, np.ndarray):
            yield torch.from_numpy(images).to(device)
        else:  # CuPy: hand the device buffer to torch without a host copy
            yield torch.as_tensor(images, device=device)


def _run(model, cutouts, batch_size, device, fn, clip: float | None = None) -> np.ndarray:
    device = _device(model, device)
    model = model.to(device)
    was_training = model.training
    model.eval()
    out = []
    try:
        with torch.no_grad():
            for x in _batches(cutouts, model, batch_size, device, clip):
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
    clip: float | None = None,
) -> np.ndarray:
    """p(lens) = sigmoid(logit) of raw cutouts, ``(N,)`` float32 in [0, 1].

    ``device``: torch device (default: the model's). ``clip``: override of the
    preprocessing clip range (D06's ``clip20``; None = the model's). The model is used in
    eval mode and restored to its previous mode.
    """
    scores = _run(
        model, cutouts, batch_size, device, lambda m, x: torch.sigmoid(m(x).float()), clip
    )
    return scores.astype(np.float32).reshape(-1)


def embed_cutouts(
    model: torch.nn.Module, cutouts: Any, *, batch_size: int = 256, device: Any = None
) -> np.ndarray:
    """``model.embed`` features of raw cutouts, ``(N, D)`` float32."""
    features = _run(model, cutouts, batch_size, device, lambda m, x: m.embed(x))
    if features.ndim == 1:  # no cutouts
        return features.reshape(0, 0)
    return features.astype(np.float32)
