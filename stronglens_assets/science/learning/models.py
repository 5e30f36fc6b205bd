"""Networks: ResNet18 with torchvision's state-dict layout, and the bottlenecked ResNet.

torchvision does not import beside the CPU torch build, so ResNet18 is written here with
**exactly** torchvision's ``resnet18`` parameter and buffer names and shapes (``conv1``,
``bn1``, ``layer{1..4}.{0,1}.{conv1,bn1,conv2,bn2}``, ``layer{2,3,4}.0.downsample.{0,1}``,
``fc``: 122 state-dict entries) for a 3-band input and one logit, so checkpoints made the usual
way (``torchvision.models.resnet18(num_classes=1)``) load. ``width`` scales every stage
(64 is torchvision's; the demo profile shrinks it); the names never change.

The bottlenecked ResNet is the same trunk with a narrow embedding layer
(``bottleneck.0``: ``Linear(8 * width, embedding_dim)`` + ReLU, then dropout) before the head
``fc: Linear(embedding_dim, 1)``.

Both expose ``forward(x) -> (N,)`` logits and ``embed(x) -> (N, D)`` features (ResNet18: the
``8 * width`` globally pooled trunk features; bottlenecked: the ``embedding_dim`` activations),
the features the D06 linear probe uses. Inputs are :func:`~.preprocess.preprocess` outputs,
``(N, 3, P, P)`` float32 (``P``: the preprocessing's output size). An optional radial input
mask (annulus/core ablation) is a non-persistent buffer, so it never changes the state-dict
layout.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from stronglens_assets.errors import StronglensError
from stronglens_assets.science.imaging.preprocess import DEFAULT_PREPROCESSING, radial_mask
from stronglens_assets.science.learning.model_config import ModelConfig

ARCHITECTURES: tuple[str, ...] = ("resnet18", "bottlenecked_resnet")
#: Keys under which checkpoints commonly wrap the state dict.
WRAPPER_KEYS: tuple[str, ...] = ("model_state_dict", "state_dict", "model")


class CheckpointError(StronglensError, ValueError):
    """A checkpoint cannot be used: not a state dict, or keys/shapes differ from the model."""


class BasicBlock(nn.Module):
    """torchvision's ``BasicBlock``: two 3x3 convs with BatchNorm and an identity shortcut."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18(nn.Module):
    """ResNet18 (torchvision layout), ``in_channels`` bands, one logit.

    Args:
        in_channels: input bands (3 for grz).
        width: channels of the first stage (64 in torchvision); stages use
            ``width, 2 width, 4 width, 8 width``.
        mask_radii: optional ``(inner, outer)`` px radii; pixels outside are zeroed before the
            first conv (``outer=None``: no outer limit).
        crop: input size in pixels (needed for the mask; recorded for scoring).
    """

    def __init__(
        self,
        in_channels: int = 3,
        width: int = 64,
        mask_radii: tuple[float, float | None] | None = None,
        crop: int = 64,
    ) -> None:
        super().__init__()
        self.crop = crop
        self.width = width
        self.conv1 = nn.Conv2d(in_channels, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        widths = (width, 2 * width, 4 * width, 8 * width)
        in_planes = width
        for number, planes in enumerate(widths, start=1):
            stride = 1 if number == 1 else 2
            layer = nn.Sequential(BasicBlock(in_planes, planes, stride), BasicBlock(planes, planes))
            setattr(self, f"layer{number}", layer)
            in_planes = planes
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = 8 * width
        self.fc = self._head()
        mask = None
        if mask_radii is not None:
            mask = torch.from_numpy(radial_mask(crop, mask_radii[0], mask_radii[1]))
        self.register_buffer("input_mask", mask, persistent=False)
        self._init_weights()

    def _head(self) -> nn.Module:
        return nn.Linear(8 * self.width, 1)

    def _init_weights(self) -> None:
        # torchvision's initialisation.
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """Globally average-pooled trunk features, ``(N, 8 * width)``."""
        if self.input_mask is not None:
            x = x * self.input_mask
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Features before the head, ``(N, D)``."""
        return self.trunk(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logit of p(lens), ``(N,)``."""
        return self.fc(self.embed(x)).squeeze(1)


class BottleneckedResNet(ResNet18):
    """The ResNet18 trunk, a narrow embedding ``bottleneck.0`` (Linear + ReLU), dropout, head.

    Args:
        embedding_dim: width of the embedding layer (the linear probe's features).
        dropout: dropout probability between the embedding and the head (training only).
    """

    def __init__(
        self,
        in_channels: int = 3,
        width: int = 64,
        embedding_dim: int = 32,
        dropout: float = 0.0,
        mask_radii: tuple[float, float | None] | None = None,
        crop: int = 64,
    ) -> None:
        self.embedding_dim = embedding_dim
        self.dropout_p = dropout
        super().__init__(in_channels, width, mask_radii, crop)
        self.bottleneck = nn.Sequential(nn.Linear(8 * width, embedding_dim), nn.ReLU(inplace=True))
        self.dropout = nn.Dropout(dropout)

    def _head(self) -> nn.Module:
        return nn.Linear(self.embedding_dim, 1)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.bottleneck(self.trunk(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.embed(x))).squeeze(1)


def build_model(architecture_or_config: str | ModelConfig) -> ResNet18:
    """A fresh model from an architecture name or a model config.

    The model carries its preprocessing as ``model.preprocessing`` (the config's; the default
    ``crop_robust`` 64 px for an architecture name), which scoring applies to raw cutouts.

    Args:
        architecture_or_config: ``"resnet18"`` / ``"bottlenecked_resnet"`` (default widths: 64,
            and a 32-wide embedding) or a :class:`~.model_config.ModelConfig` (load one with
            :func:`~.model_config.load_model_config`).
    """
    if isinstance(architecture_or_config, str):
        if architecture_or_config == "resnet18":
            model = ResNet18()
        elif architecture_or_config == "bottlenecked_resnet":
            model = BottleneckedResNet()
        else:
            raise ValueError(
                f"unknown architecture {architecture_or_config!r}; known: {ARCHITECTURES} (for "
                "a model config name, pass load_model_config(config_dir, name, profile))"
            )
        model.preprocessing = DEFAULT_PREPROCESSING
        return model
    config = architecture_or_config
    mask = None
    if config.input_mask is not None:
        mask = (config.input_mask.inner_px, config.input_mask.outer_px)
    if config.architecture == "resnet18":
        model = ResNet18(width=config.width, mask_radii=mask, crop=config.input_px)
    elif config.architecture == "bottlenecked_resnet":
        model = BottleneckedResNet(
            width=config.width,
            embedding_dim=int(config.embedding_dim),
            dropout=config.dropout,
            mask_radii=mask,
            crop=config.input_px,
        )
    else:
        raise ValueError(f"unknown architecture {config.architecture!r}; known: {ARCHITECTURES}")
    model.preprocessing = config.preprocessing
    return model


# --- checkpoints -------------------------------------------------------------------------


def state_dict_bytes(model_or_state: nn.Module | Mapping[str, torch.Tensor]) -> bytes:
    """``torch.save`` bytes of a state dict (tensors moved to CPU, contiguous, key order kept).

    Same weights -> same bytes: the encoding has no timestamps or random ids.
    """
    state = model_or_state.state_dict() if isinstance(model_or_state, nn.Module) else model_or_state
    cpu = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
    buffer = io.BytesIO()
    torch.save(cpu, buffer)
    return buffer.getvalue()


def read_state_dict(data: bytes, source: str) -> dict[str, torch.Tensor]:
    """Load checkpoint bytes with ``weights_only=True`` and unwrap the state dict.

    Accepts a bare state dict or one wrapped under ``model_state_dict``, ``state_dict`` or
    ``model`` (other entries such as ``epoch`` or ``optimizer`` are ignored). A DataParallel
    ``module.`` prefix is removed. :class:`CheckpointError` names ``source`` otherwise.
    """
    try:
        loaded = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"{source}: cannot be loaded as a PyTorch checkpoint with weights_only=True: {exc}"
        ) from exc
    state: Any = loaded
    if isinstance(loaded, Mapping) and not _is_tensor_mapping(loaded):
        for key in WRAPPER_KEYS:
            if key in loaded and isinstance(loaded[key], Mapping):
                state = loaded[key]
                break
    if not isinstance(state, Mapping) or not state or not _is_tensor_mapping(state):
        kind = type(loaded).__name__
        keys = list(loaded)[:5] if isinstance(loaded, Mapping) else []
        raise CheckpointError(
            f"{source}: not a state dict (a {kind}{f' with keys {keys}' if keys else ''}); "
            f"expected a mapping of parameter names to tensors, bare or under one of "
            f"{list(WRAPPER_KEYS)}"
        )
    if all(k.startswith("module.") for k in state):
        state = {k.removeprefix("module."): v for k, v in state.items()}
    return dict(state)


def _is_tensor_mapping(obj: Mapping[Any, Any]) -> bool:
    return all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def load_checked_state_dict(
    model: nn.Module, state: Mapping[str, torch.Tensor], source: str
) -> None:
    """Load ``state`` into ``model`` strictly; :class:`CheckpointError` names the first
    missing and unexpected keys and shape mismatches, and ``source``."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s), first {missing[:5]}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s), first {unexpected[:5]}")
        if shapes:
            parts.append(f"{len(shapes)} shape mismatch(es), first {shapes[:3]}")
        raise CheckpointError(f"{source}: state dict does not match the model: " + "; ".join(parts))
    model.load_state_dict(state, strict=True)


def model_from_checkpoint(config: ModelConfig, data: bytes, source: str) -> ResNet18:
    """A model of ``config`` with the weights of checkpoint bytes ``data``, in eval mode."""
    model = build_model(config)
    load_checked_state_dict(model, read_state_dict(data, source), source)
    return model.eval()


def count_parameters(model: nn.Module) -> int:
    return int(sum(np.prod(p.shape) for p in model.parameters()))
