"""Scoring raw cutouts with a trained model: p(lens) and embeddings.

Used by the evaluation assets and by the D06 experiments (injection-recovery grids, bright
arcs, linear probe, Tier-A scoring). Both functions take raw DR10 cutouts
``(N, 3, 101, 101)`` float nanomaggies (NumPy or CuPy) and call
:func:`~.preprocess.preprocess` batch by batch with the model's own preprocessing
(``model.preprocessing``, set by ``build_model`` from its config and checked against the
checkpoint's record when a frozen model is loaded), so injections are seen exactly as
training cutouts. Other settings only on purpose: ``preprocessing_override`` (e.g.
``{"clip": 20}``, the paper's clip20 experiment) replaces those fields, and the outputs
should say so. Float16 autocast applies on CUDA only, and only when the model's config asked
for mixed precision (the ``mixed_precision`` attribute ``build_model`` sets; False when absent).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from stronglens_assets.science.imaging.preprocess import (
    CropRobust,
    RawRobust,
    preprocess,
    preprocessing_with,
)
from stronglens_assets.science.learning.training import autocast


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
    mixed_precision = bool(getattr(model, "mixed_precision", False))
    out = []
    try:
        with torch.no_grad():
            for x in _batches(cutouts, settings, batch_size, device):
                with autocast(device, mixed_precision):
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


def block_features(
    model: torch.nn.Module,
    cutouts: Any,
    blocks: Sequence[str],
    *,
    batch_size: int = 256,
    device: Any = None,
) -> dict[str, np.ndarray]:
    """Globally average-pooled outputs of the named submodules (``model.get_submodule``, e.g.
    ``layer1`` .. ``layer4`` of the ResNets, ``features.0`` .. of EfficientNetV2-S) for raw
    cutouts: ``{block: (N, C_block)}`` float32 (the D06 per-block Fréchet distances)."""
    modules = {}
    for name in blocks:
        try:
            modules[name] = model.get_submodule(name)
        except AttributeError as exc:
            raise ValueError(f"{type(model).__name__} has no submodule {name!r}") from exc
    captured: dict[str, torch.Tensor] = {}

    def hook(name: str):
        def store(_module, _inputs, output):
            out = output.float()
            captured[name] = out.mean(dim=(2, 3)) if out.ndim == 4 else out.flatten(1)

        return store

    handles = [module.register_forward_hook(hook(name)) for name, module in modules.items()]
    widths: dict[str, int] = {}

    def run(m: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        m(x)
        for name in blocks:
            widths[name] = captured[name].shape[1]
        return torch.cat([captured[name] for name in blocks], dim=1)

    try:
        joined = _run(model, cutouts, batch_size, device, run, None)
    finally:
        for handle in handles:
            handle.remove()
    out, start = {}, 0
    for name in blocks:
        width = widths.get(name, 0)
        out[name] = joined.reshape(len(joined), -1)[:, start : start + width].astype(np.float32)
        start += width
    return out
