"""EfficientNetV2-S with torchvision's state-dict layout (the paper's model), one logit.

torchvision does not import beside the CPU torch build, so the network is written here from
the EfficientNetV2 paper's Table 4 (Tan & Le 2021) as torchvision builds it
(``torchvision.models.efficientnet_v2_s``), with **exactly** its parameter and buffer names:
``features.0`` (stem conv/BN/SiLU), ``features.1..6`` (the stages below, block ``j`` of stage
``i`` is ``features.i.j.block.*``), ``features.7`` (1x1 conv to 1280, BN, SiLU), ``avgpool``,
``classifier.0`` (dropout) and ``classifier.1`` (the linear head, here one output). A
``best.pt`` saved from ``torchvision.models.efficientnet_v2_s(num_classes=1)`` therefore loads
with ``load_state_dict(strict=True)``.

Stages ``(block, expand ratio, kernel, stride, in, out, layers)``::

    fused  1 3 1  24  24  2      fused  4 3 2  24  48  4      fused  4 3 2  48  64  4
    mbconv 4 3 2  64 128  6      mbconv 6 3 1 128 160  9      mbconv 6 3 2 160 256 15

FusedMBConv: a ``kernel`` conv expanding to ``in * ratio`` channels (BN, SiLU) then a 1x1
projection (BN), or one ``kernel`` conv when the ratio is 1. MBConv: 1x1 expansion, depthwise
``kernel`` conv, squeeze-and-excitation (``fc1``/``fc2`` 1x1 convs, ``max(1, in // 4)``
squeezed channels, SiLU then sigmoid), 1x1 projection. A block adds its input when its
stride is 1 and ``in == out``, after stochastic depth (row mode) with probability
``stochastic_depth_prob * k / n_blocks`` for the ``k``-th block (from 0). BatchNorm
``eps = 1e-3``; convolutions have no bias; initialisation as torchvision's (Kaiming-normal
fan-out convs, unit BN, uniform ``+/- 1/sqrt(out)`` linear weights, zero biases).

``width_multiplier`` and ``depth_multiplier`` (1.0 = the paper's model) scale channels
(rounded to multiples of 8, as torchvision's ``_make_divisible``, the 1280-d head included)
and layers per stage (``ceil``); a demo profile shrinks them, the code path never changes.

``embed(x)`` is the ``avgpool`` output, ``(N, 1280)`` at full width (the linear probe's
features); ``forward(x)`` the logit ``(N,)``. Inputs ``(N, 3, H, W)`` float32 preprocessed
stamps (the paper: the full 101 x 101). An optional radial input mask (the annulus/core
ablation) is a non-persistent buffer, so it never changes the state-dict layout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from stronglens_assets.science.imaging.preprocess import radial_mask

__all__ = [
    "EFFICIENTNET_V2_S_HEAD_CHANNELS",
    "EFFICIENTNET_V2_S_STAGES",
    "EfficientNetV2S",
    "StageSpec",
    "make_divisible",
]

#: BatchNorm epsilon of torchvision's EfficientNetV2 models.
BATCHNORM_EPS = 1e-3


@dataclass(frozen=True)
class StageSpec:
    """One stage: block type, expansion ratio, kernel (px), stride of its first block,
    input/output channels and number of blocks (full width and depth)."""

    block: Literal["fused", "mbconv"]
    expand_ratio: int
    kernel: int
    stride: int
    in_channels: int
    out_channels: int
    layers: int


EFFICIENTNET_V2_S_STAGES: tuple[StageSpec, ...] = (
    StageSpec("fused", 1, 3, 1, 24, 24, 2),
    StageSpec("fused", 4, 3, 2, 24, 48, 4),
    StageSpec("fused", 4, 3, 2, 48, 64, 4),
    StageSpec("mbconv", 4, 3, 2, 64, 128, 6),
    StageSpec("mbconv", 6, 3, 1, 128, 160, 9),
    StageSpec("mbconv", 6, 3, 2, 160, 256, 15),
)
EFFICIENTNET_V2_S_HEAD_CHANNELS = 1280


def make_divisible(value: float, divisor: int = 8) -> int:
    """``value`` rounded to the nearest multiple of ``divisor`` (at least ``divisor``), and
    never more than 10% below ``value`` (torchvision's channel rounding)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


class ConvBNAct(nn.Sequential):
    """``0``: conv (no bias, 'same' padding), ``1``: BatchNorm, ``2``: SiLU (if ``act``)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int,
        stride: int = 1,
        groups: int = 1,
        act: bool = True,
    ) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(
                in_channels,
                out_channels,
                kernel,
                stride=stride,
                padding=(kernel - 1) // 2,
                groups=groups,
                bias=False,
            ),
            nn.BatchNorm2d(out_channels, eps=BATCHNORM_EPS),
        ]
        if act:
            layers.append(nn.SiLU(inplace=True))
        super().__init__(*layers)


class SqueezeExcitation(nn.Module):
    """Channel attention: ``x * sigmoid(fc2(silu(fc1(mean_hw(x)))))``, 1x1 convs with bias."""

    def __init__(self, channels: int, squeezed: int) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeezed, 1)
        self.fc2 = nn.Conv2d(squeezed, channels, 1)
        self.activation = nn.SiLU(inplace=True)
        self.scale_activation = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.fc2(self.activation(self.fc1(self.avgpool(x))))
        return x * self.scale_activation(scale)


class StochasticDepth(nn.Module):
    """Drop the residual branch of a whole sample with probability ``p`` while training,
    scaling kept samples by ``1 / (1 - p)`` (Huang et al. 2016, "row" mode)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        keep = torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(survival)
        if survival > 0.0:
            keep.div_(survival)
        return x * keep


class InvertedResidual(nn.Module):
    """A FusedMBConv or MBConv block (see the module docstring); layers in ``block``."""

    def __init__(
        self,
        kind: Literal["fused", "mbconv"],
        in_channels: int,
        out_channels: int,
        expand_ratio: int,
        kernel: int,
        stride: int,
        drop_prob: float,
    ) -> None:
        super().__init__()
        expanded = make_divisible(in_channels * expand_ratio)
        layers: list[nn.Module] = []
        if kind == "fused":
            if expanded != in_channels:
                layers.append(ConvBNAct(in_channels, expanded, kernel, stride))
                layers.append(ConvBNAct(expanded, out_channels, 1, act=False))
            else:
                layers.append(ConvBNAct(in_channels, out_channels, kernel, stride))
        else:
            if expanded != in_channels:
                layers.append(ConvBNAct(in_channels, expanded, 1))
            layers.append(ConvBNAct(expanded, expanded, kernel, stride, groups=expanded))
            layers.append(SqueezeExcitation(expanded, max(1, in_channels // 4)))
            layers.append(ConvBNAct(expanded, out_channels, 1, act=False))
        self.block = nn.Sequential(*layers)
        self.stochastic_depth = StochasticDepth(drop_prob)
        self.use_residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        if self.use_residual:
            out = self.stochastic_depth(out) + x
        return out


class EfficientNetV2S(nn.Module):
    """EfficientNetV2-S (torchvision layout), ``in_channels`` bands, one logit.

    Args:
        in_channels: input bands (3 for grz).
        width_multiplier, depth_multiplier: channel and depth scaling (1.0: the paper's model).
        dropout: dropout before the head (``classifier.0``; torchvision's default 0.2).
        stochastic_depth_prob: the largest per-block drop probability (torchvision's 0.2).
        mask_radii: optional ``(inner, outer)`` px radii; pixels outside are zeroed before the
            stem (``outer=None``: no outer limit).
        crop: input size in pixels (needed for the mask; recorded for scoring).
    """

    def __init__(
        self,
        in_channels: int = 3,
        width_multiplier: float = 1.0,
        depth_multiplier: float = 1.0,
        dropout: float = 0.2,
        stochastic_depth_prob: float = 0.2,
        mask_radii: tuple[float, float | None] | None = None,
        crop: int = 101,
    ) -> None:
        super().__init__()
        self.crop = crop

        def channels(n: int) -> int:
            return make_divisible(n * width_multiplier)

        stages = [
            (
                spec,
                channels(spec.in_channels),
                channels(spec.out_channels),
                math.ceil(spec.layers * depth_multiplier),
            )
            for spec in EFFICIENTNET_V2_S_STAGES
        ]
        n_blocks = sum(layers for *_, layers in stages)
        features: list[nn.Module] = [ConvBNAct(in_channels, stages[0][1], 3, stride=2)]
        block_id = 0
        for spec, first_in, out, layers in stages:
            blocks = []
            for j in range(layers):
                blocks.append(
                    InvertedResidual(
                        spec.block,
                        first_in if j == 0 else out,
                        out,
                        spec.expand_ratio,
                        spec.kernel,
                        spec.stride if j == 0 else 1,
                        stochastic_depth_prob * block_id / n_blocks,
                    )
                )
                block_id += 1
            features.append(nn.Sequential(*blocks))
        self.feature_dim = channels(EFFICIENTNET_V2_S_HEAD_CHANNELS)
        features.append(ConvBNAct(stages[-1][2], self.feature_dim, 1))
        self.features = nn.Sequential(*features)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(self.feature_dim, 1))
        mask = None
        if mask_radii is not None:
            mask = torch.from_numpy(radial_mask(crop, mask_radii[0], mask_radii[1]))
        self.register_buffer("input_mask", mask, persistent=False)
        self._init_weights()

    def _init_weights(self) -> None:
        # torchvision's initialisation.
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                bound = 1.0 / math.sqrt(module.out_features)
                nn.init.uniform_(module.weight, -bound, bound)
                nn.init.zeros_(module.bias)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The ``avgpool`` output, ``(N, feature_dim)`` (1280 at full width)."""
        if self.input_mask is not None:
            x = x * self.input_mask
        return torch.flatten(self.avgpool(self.features(x)), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logit of p(lens), ``(N,)``."""
        return self.classifier(self.embed(x)).squeeze(1)
