"""Networks: torchvision's resnet18 state-dict layout, shapes, checkpoints, pretrained import."""

from __future__ import annotations

import io

import pytest
import torch

from stronglens_assets.science.learning.model_config import ModelConfig
from stronglens_assets.science.learning.models import (
    BottleneckedResNet,
    CheckpointError,
    ResNet18,
    build_model,
    load_checked_state_dict,
    model_from_checkpoint,
    read_state_dict,
    state_dict_bytes,
)

#: torchvision.models.resnet18(num_classes=1).state_dict(): names and shapes, in order
#: (conv1 has 3 input channels as in torchvision; one logit).
TORCHVISION_RESNET18: list[tuple[str, tuple[int, ...]]] = [
    ("conv1.weight", (64, 3, 7, 7)),
    ("bn1.weight", (64,)),
    ("bn1.bias", (64,)),
    ("bn1.running_mean", (64,)),
    ("bn1.running_var", (64,)),
    ("bn1.num_batches_tracked", ()),
    ("layer1.0.conv1.weight", (64, 64, 3, 3)),
    ("layer1.0.bn1.weight", (64,)),
    ("layer1.0.bn1.bias", (64,)),
    ("layer1.0.bn1.running_mean", (64,)),
    ("layer1.0.bn1.running_var", (64,)),
    ("layer1.0.bn1.num_batches_tracked", ()),
    ("layer1.0.conv2.weight", (64, 64, 3, 3)),
    ("layer1.0.bn2.weight", (64,)),
    ("layer1.0.bn2.bias", (64,)),
    ("layer1.0.bn2.running_mean", (64,)),
    ("layer1.0.bn2.running_var", (64,)),
    ("layer1.0.bn2.num_batches_tracked", ()),
    ("layer1.1.conv1.weight", (64, 64, 3, 3)),
    ("layer1.1.bn1.weight", (64,)),
    ("layer1.1.bn1.bias", (64,)),
    ("layer1.1.bn1.running_mean", (64,)),
    ("layer1.1.bn1.running_var", (64,)),
    ("layer1.1.bn1.num_batches_tracked", ()),
    ("layer1.1.conv2.weight", (64, 64, 3, 3)),
    ("layer1.1.bn2.weight", (64,)),
    ("layer1.1.bn2.bias", (64,)),
    ("layer1.1.bn2.running_mean", (64,)),
    ("layer1.1.bn2.running_var", (64,)),
    ("layer1.1.bn2.num_batches_tracked", ()),
    ("layer2.0.conv1.weight", (128, 64, 3, 3)),
    ("layer2.0.bn1.weight", (128,)),
    ("layer2.0.bn1.bias", (128,)),
    ("layer2.0.bn1.running_mean", (128,)),
    ("layer2.0.bn1.running_var", (128,)),
    ("layer2.0.bn1.num_batches_tracked", ()),
    ("layer2.0.conv2.weight", (128, 128, 3, 3)),
    ("layer2.0.bn2.weight", (128,)),
    ("layer2.0.bn2.bias", (128,)),
    ("layer2.0.bn2.running_mean", (128,)),
    ("layer2.0.bn2.running_var", (128,)),
    ("layer2.0.bn2.num_batches_tracked", ()),
    ("layer2.0.downsample.0.weight", (128, 64, 1, 1)),
    ("layer2.0.downsample.1.weight", (128,)),
    ("layer2.0.downsample.1.bias", (128,)),
    ("layer2.0.downsample.1.running_mean", (128,)),
    ("layer2.0.downsample.1.running_var", (128,)),
    ("layer2.0.downsample.1.num_batches_tracked", ()),
    ("layer2.1.conv1.weight", (128, 128, 3, 3)),
    ("layer2.1.bn1.weight", (128,)),
    ("layer2.1.bn1.bias", (128,)),
    ("layer2.1.bn1.running_mean", (128,)),
    ("layer2.1.bn1.running_var", (128,)),
    ("layer2.1.bn1.num_batches_tracked", ()),
    ("layer2.1.conv2.weight", (128, 128, 3, 3)),
    ("layer2.1.bn2.weight", (128,)),
    ("layer2.1.bn2.bias", (128,)),
    ("layer2.1.bn2.running_mean", (128,)),
    ("layer2.1.bn2.running_var", (128,)),
    ("layer2.1.bn2.num_batches_tracked", ()),
    ("layer3.0.conv1.weight", (256, 128, 3, 3)),
    ("layer3.0.bn1.weight", (256,)),
    ("layer3.0.bn1.bias", (256,)),
    ("layer3.0.bn1.running_mean", (256,)),
    ("layer3.0.bn1.running_var", (256,)),
    ("layer3.0.bn1.num_batches_tracked", ()),
    ("layer3.0.conv2.weight", (256, 256, 3, 3)),
    ("layer3.0.bn2.weight", (256,)),
    ("layer3.0.bn2.bias", (256,)),
    ("layer3.0.bn2.running_mean", (256,)),
    ("layer3.0.bn2.running_var", (256,)),
    ("layer3.0.bn2.num_batches_tracked", ()),
    ("layer3.0.downsample.0.weight", (256, 128, 1, 1)),
    ("layer3.0.downsample.1.weight", (256,)),
    ("layer3.0.downsample.1.bias", (256,)),
    ("layer3.0.downsample.1.running_mean", (256,)),
    ("layer3.0.downsample.1.running_var", (256,)),
    ("layer3.0.downsample.1.num_batches_tracked", ()),
    ("layer3.1.conv1.weight", (256, 256, 3, 3)),
    ("layer3.1.bn1.weight", (256,)),
    ("layer3.1.bn1.bias", (256,)),
    ("layer3.1.bn1.running_mean", (256,)),
    ("layer3.1.bn1.running_var", (256,)),
    ("layer3.1.bn1.num_batches_tracked", ()),
    ("layer3.1.conv2.weight", (256, 256, 3, 3)),
    ("layer3.1.bn2.weight", (256,)),
    ("layer3.1.bn2.bias", (256,)),
    ("layer3.1.bn2.running_mean", (256,)),
    ("layer3.1.bn2.running_var", (256,)),
    ("layer3.1.bn2.num_batches_tracked", ()),
    ("layer4.0.conv1.weight", (512, 256, 3, 3)),
    ("layer4.0.bn1.weight", (512,)),
    ("layer4.0.bn1.bias", (512,)),
    ("layer4.0.bn1.running_mean", (512,)),
    ("layer4.0.bn1.running_var", (512,)),
    ("layer4.0.bn1.num_batches_tracked", ()),
    ("layer4.0.conv2.weight", (512, 512, 3, 3)),
    ("layer4.0.bn2.weight", (512,)),
    ("layer4.0.bn2.bias", (512,)),
    ("layer4.0.bn2.running_mean", (512,)),
    ("layer4.0.bn2.running_var", (512,)),
    ("layer4.0.bn2.num_batches_tracked", ()),
    ("layer4.0.downsample.0.weight", (512, 256, 1, 1)),
    ("layer4.0.downsample.1.weight", (512,)),
    ("layer4.0.downsample.1.bias", (512,)),
    ("layer4.0.downsample.1.running_mean", (512,)),
    ("layer4.0.downsample.1.running_var", (512,)),
    ("layer4.0.downsample.1.num_batches_tracked", ()),
    ("layer4.1.conv1.weight", (512, 512, 3, 3)),
    ("layer4.1.bn1.weight", (512,)),
    ("layer4.1.bn1.bias", (512,)),
    ("layer4.1.bn1.running_mean", (512,)),
    ("layer4.1.bn1.running_var", (512,)),
    ("layer4.1.bn1.num_batches_tracked", ()),
    ("layer4.1.conv2.weight", (512, 512, 3, 3)),
    ("layer4.1.bn2.weight", (512,)),
    ("layer4.1.bn2.bias", (512,)),
    ("layer4.1.bn2.running_mean", (512,)),
    ("layer4.1.bn2.running_var", (512,)),
    ("layer4.1.bn2.num_batches_tracked", ()),
    ("fc.weight", (1, 512)),
    ("fc.bias", (1,)),
]


def _save(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def test_resnet18_state_dict_equals_torchvision_layout():
    assert len(TORCHVISION_RESNET18) == 122
    state = build_model("resnet18").state_dict()
    assert [(k, tuple(v.shape)) for k, v in state.items()] == TORCHVISION_RESNET18


def test_bottlenecked_resnet_keeps_the_trunk_and_adds_the_embedding():
    model = BottleneckedResNet(width=64, embedding_dim=32)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    trunk = [(k, s) for k, s in TORCHVISION_RESNET18 if not k.startswith("fc.")]
    assert all(shapes[k] == s for k, s in trunk)
    assert shapes["bottleneck.0.weight"] == (32, 512)
    assert shapes["fc.weight"] == (1, 32)
    assert len(shapes) == 122 + 2


@pytest.mark.parametrize(
    ("model", "dim"),
    [(ResNet18(width=8), 64), (BottleneckedResNet(width=8, embedding_dim=12), 12)],
)
def test_forward_and_embed_shapes(model, dim):
    x = torch.randn(5, 3, 64, 64)
    seen = {}

    def hook(module, inputs, output) -> None:
        seen["map"] = tuple(output.shape)

    model.layer4.register_forward_hook(hook)
    model.eval()
    assert tuple(model(x).shape) == (5,)
    assert seen["map"] == (5, 8 * 8, 2, 2)  # a 64x64 input gives a 2x2 map before pooling
    assert tuple(model.embed(x).shape) == (5, dim)


def test_input_mask_is_not_in_the_state_dict_and_hides_masked_pixels():
    masked = ResNet18(width=8, mask_radii=(5.0, 20.0))
    assert list(masked.state_dict()) == list(ResNet18(width=8).state_dict())
    masked.eval()
    x = torch.randn(2, 3, 64, 64)
    y = x.clone()
    y[..., 32, 32] += 100.0  # centre pixel: inside the masked core
    assert torch.equal(masked(x), masked(y))


def test_checkpoint_round_trip_weights_only():
    model = build_model("bottlenecked_resnet").eval()
    data = state_dict_bytes(model)
    state = torch.load(io.BytesIO(data), weights_only=True)
    other = BottleneckedResNet()
    other.load_state_dict(state)
    other.eval()
    x = torch.randn(3, 3, 64, 64)
    assert torch.equal(model(x), other(x))
    assert state_dict_bytes(other) == data


@pytest.mark.parametrize("wrapper", [None, "model", "state_dict", "model_state_dict"])
def test_pretrained_bare_or_wrapped(wrapper):
    config = ModelConfig(name="m", architecture="resnet18", width=8)
    source = build_model(config).eval()
    state = source.state_dict()
    payload = state if wrapper is None else {wrapper: state, "epoch": 3}
    model = model_from_checkpoint(config, _save(payload), "best.pt")
    x = torch.randn(2, 3, 64, 64)
    assert torch.equal(model(x), source(x))


def test_pretrained_dataparallel_prefix_is_removed():
    source = ResNet18(width=8)
    state = {f"module.{k}": v for k, v in source.state_dict().items()}
    assert list(read_state_dict(_save(state), "x.pt")) == list(source.state_dict())


def test_mismatched_keys_name_the_first_missing_and_unexpected():
    model = ResNet18(width=8)
    state = dict(model.state_dict())
    del state["layer3.1.conv2.weight"]
    state["head.weight"] = torch.zeros(1, 64)
    with pytest.raises(CheckpointError) as info:
        load_checked_state_dict(model, state, "s3://bucket/best.pt")
    message = str(info.value)
    assert "s3://bucket/best.pt" in message
    assert "missing" in message and "layer3.1.conv2.weight" in message
    assert "unexpected" in message and "head.weight" in message


def test_mismatched_shape_is_named():
    model = ResNet18(width=8)
    state = dict(ResNet18(width=16).state_dict())
    with pytest.raises(CheckpointError, match=r"shape mismatch.*conv1\.weight"):
        load_checked_state_dict(model, state, "best.pt")


@pytest.mark.parametrize(
    "payload",
    [[torch.zeros(2)], {"epoch": 3, "optimizer": {"lr": 0.1}}, {"model": [1, 2]}, {}],
)
def test_not_a_state_dict(payload):
    with pytest.raises(CheckpointError, match="not a state dict"):
        read_state_dict(_save(payload), "best.pt")


class _Custom:
    pass


def test_pickled_object_is_refused_by_weights_only():
    with pytest.raises(CheckpointError, match="weights_only=True"):
        read_state_dict(_save({"model": _Custom()}), "evil.pt")


def test_garbage_bytes():
    with pytest.raises(CheckpointError, match=r"evil\.pt"):
        read_state_dict(b"not a zip file", "evil.pt")
