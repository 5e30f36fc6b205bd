"""EfficientNetV2-S: torchvision's state-dict layout (kept as data), sizes, pretrained import."""

from __future__ import annotations

import io
import re
import shutil
from collections import defaultdict
from pathlib import Path

import pytest
import torch
import yaml

from stronglens_assets.config import ConfigError
from stronglens_assets.science.imaging.preprocess import RawRobust
from stronglens_assets.science.learning.efficientnet import (
    EfficientNetV2S,
    StochasticDepth,
    make_divisible,
)
from stronglens_assets.science.learning.model_config import ModelConfig, load_model_config
from stronglens_assets.science.learning.models import (
    CheckpointError,
    ResNet18,
    build_model,
    count_parameters,
    load_backbone_state,
    model_from_checkpoint,
    state_dict_bytes,
)
from stronglens_assets.settings import PROJECT_ROOT

LAYOUT_FILE = Path(__file__).parents[2] / "data" / "torchvision_efficientnet_v2_s_num_classes_1.tsv"

#: Trainable parameters per block of torchvision's efficientnet_v2_s, as printed by torchinfo
#: for the real torchvision model (``features.<stage>.<block>``; stem and head conv + BN).
TORCHVISION_BLOCK_PARAMETERS: dict[str, int] = {
    "features.0": 648 + 48,
    **{f"features.1.{j}": 5_232 for j in range(2)},
    "features.2.0": 25_632,
    **{f"features.2.{j}": 92_640 for j in range(1, 4)},
    "features.3.0": 95_744,
    **{f"features.3.{j}": 164_480 for j in range(1, 4)},
    "features.4.0": 61_200,
    **{f"features.4.{j}": 171_296 for j in range(1, 6)},
    "features.5.0": 281_440,
    **{f"features.5.{j}": 397_800 for j in range(1, 9)},
    "features.6.0": 490_152,
    **{f"features.6.{j}": 1_005_120 for j in range(1, 15)},
    "features.7": 327_680 + 2_560,
}
#: torchinfo's total for torchvision's ``features`` (the trunk): 20,177,488.
TORCHVISION_FEATURES_PARAMETERS = 20_177_488
BUFFER_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked")


def torchvision_layout() -> list[tuple[str, tuple[int, ...]]]:
    rows = []
    for line in LAYOUT_FILE.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, shape = line.split("\t")
        rows.append((name, tuple(int(n) for n in shape.split(",")) if shape else ()))
    return rows


def _block(name: str) -> str:
    match = re.match(r"features\.(0|7|\d\.\d+)\.", name)
    assert match, name
    return f"features.{match.group(1)}"


def test_layout_data_matches_torchvision_parameter_counts():
    counts: dict[str, int] = defaultdict(int)
    for name, shape in torchvision_layout():
        if name.startswith("features.") and not name.endswith(BUFFER_SUFFIXES):
            counts[_block(name)] += int(torch.Size(shape).numel())
    assert dict(counts) == TORCHVISION_BLOCK_PARAMETERS
    assert sum(counts.values()) == TORCHVISION_FEATURES_PARAMETERS


def test_state_dict_equals_torchvision_layout():
    layout = torchvision_layout()
    assert len(layout) == 782
    state = build_model("efficientnet_v2_s").state_dict()
    assert [(k, tuple(v.shape)) for k, v in state.items()] == layout


def test_twenty_point_two_million_parameters():
    # PROTOCOL: 20.2M parameters = torchvision's trunk + Linear(1280, 1).
    assert count_parameters(EfficientNetV2S()) == TORCHVISION_FEATURES_PARAMETERS + 1280 + 1


def test_forward_and_1280_d_embedding_on_the_full_stamp():
    model = EfficientNetV2S().eval()
    x = torch.randn(2, 3, 101, 101)
    with torch.no_grad():
        embedding = model.embed(x)
        logits = model(x)
    assert tuple(embedding.shape) == (2, 1280) and tuple(logits.shape) == (2,)
    head = model.classifier[1]
    torch.testing.assert_close(logits, embedding @ head.weight[0] + head.bias[0])


def test_demo_multipliers_shrink_but_keep_torchvision_names():
    full = dict(torchvision_layout())
    small = EfficientNetV2S(width_multiplier=0.25, depth_multiplier=0.25)
    assert small.feature_dim == 320
    assert set(small.state_dict()) < set(full)
    blocks = {_block(k) for k in small.state_dict() if k.startswith("features.")}
    # ceil(0.25 * (2, 4, 4, 6, 9, 15)) = (1, 1, 1, 2, 3, 4) blocks
    assert sorted(b for b in blocks if b.count(".") == 2) == sorted(
        f"features.{i}.{j}"
        for i, n in zip(range(1, 7), (1, 1, 1, 2, 3, 4), strict=True)
        for j in range(n)
    )
    assert tuple(small.eval()(torch.randn(1, 3, 101, 101)).shape) == (1,)


@pytest.mark.parametrize(
    ("value", "expected"), [(6.0, 8), (320.0, 320), (20.0, 24), (11.0, 16), (96.0, 96)]
)
def test_make_divisible(value, expected):
    assert make_divisible(value) == expected


def test_stochastic_depth_drops_whole_rows_and_rescales():
    layer = StochasticDepth(0.5)
    x = torch.ones(4000, 3, 2, 2)
    torch.manual_seed(0)
    out = layer.train()(x)
    per_row = out.flatten(1)
    assert set(per_row.unique().tolist()) == {0.0, 2.0}
    assert (per_row == per_row[:, :1]).all()  # a row is kept or dropped whole
    assert abs(float((per_row[:, 0] > 0).float().mean()) - 0.5) < 0.05
    assert torch.equal(layer.eval()(x), x)


def _save(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def test_torchvision_layout_checkpoint_imports_at_full_width():
    # A best.pt written in torchvision's layout (names and shapes from the data file, not
    # from our model), wrapped as training scripts usually save it.
    generator = torch.Generator().manual_seed(5)
    state = {}
    for name, shape in torchvision_layout():
        if name.endswith("num_batches_tracked"):
            state[name] = torch.tensor(7)
        elif name.endswith("running_var"):
            state[name] = torch.rand(shape, generator=generator) + 0.5
        else:
            state[name] = 0.05 * torch.randn(shape, generator=generator)
    config = ModelConfig(name="m", architecture="efficientnet_v2_s", preprocessing=RawRobust())
    model = model_from_checkpoint(config, _save({"model_state_dict": state, "epoch": 19}), "b.pt")
    assert not model.training
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
    assert state_dict_bytes(model) == state_dict_bytes(state)
    x = torch.randn(2, 3, 101, 101)
    again = model_from_checkpoint(config, state_dict_bytes(model), "round-trip.pt")
    with torch.no_grad():
        torch.testing.assert_close(again(x), model(x), rtol=0, atol=0)


def _imagenet_layout_state() -> dict[str, torch.Tensor]:
    """A checkpoint in the layout of torchvision's ImageNet-1K file: 1000-class head."""
    state = {}
    for name, shape in torchvision_layout():
        if name.startswith("classifier.1."):
            shape = (1000, *shape[1:])
        state[name] = torch.full(shape, 0.5) if shape else torch.tensor(3)
    return state


def test_imagenet_weights_initialise_everything_but_the_head():
    state = _imagenet_layout_state()
    model = EfficientNetV2S()
    fresh_head = model.classifier[1].weight.detach().clone()
    kept = load_backbone_state(model, state, "efficientnet_v2_s-dd5fe13b.pth")
    assert kept == ["classifier.1.bias", "classifier.1.weight"]
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items() if k.startswith("features."))
    assert torch.equal(model.classifier[1].weight, fresh_head)
    del state["features.6.3.block.2.fc1.bias"]
    state["features.1.0.block.0.0.weight"] = torch.zeros(24, 3, 3, 3)
    with pytest.raises(CheckpointError) as info:
        load_backbone_state(EfficientNetV2S(), state, "imagenet.pth")
    message = str(info.value)
    assert "imagenet.pth" in message and "features.6.3.block.2.fc1.bias" in message
    assert "features.1.0.block.0.0.weight (24, 3, 3, 3) != (24, 24, 3, 3)" in message


def test_resnet_checkpoint_into_efficientnet_names_the_first_offenders():
    config = ModelConfig(name="m", architecture="efficientnet_v2_s", preprocessing=RawRobust())
    with pytest.raises(CheckpointError) as info:
        model_from_checkpoint(config, state_dict_bytes(ResNet18(width=8)), "s3://b/best.pt")
    message = str(info.value)
    assert "s3://b/best.pt" in message
    assert "782 missing" in message and "features.0.0.weight" in message
    assert "122 unexpected" in message and "conv1.weight" in message


def test_demo_width_checkpoint_into_full_width_is_a_shape_mismatch():
    config = ModelConfig(name="m", architecture="efficientnet_v2_s", preprocessing=RawRobust())
    small = EfficientNetV2S(width_multiplier=0.5)
    with pytest.raises(CheckpointError, match=r"shape mismatch.*features\.0\.0\.weight"):
        model_from_checkpoint(config, state_dict_bytes(small), "best.pt")


def test_paper_config_follows_the_protocol():
    directory = PROJECT_ROOT / "configs"
    full = load_model_config(directory, "paperIV_efficientnet_v2_s", "full")
    demo = load_model_config(directory, "paperIV_efficientnet_v2_s", "demo")
    assert full.architecture == demo.architecture == "efficientnet_v2_s"
    assert (full.width_multiplier, full.depth_multiplier, full.input_px) == (1.0, 1.0, 101)
    assert full.loss == "bce" and full.mixed_precision
    assert (full.batch_size, full.effective_batch_size) == (64, 512)
    assert (full.epochs, full.scheduler, full.learning_rate) == (160, "step", 3.88e-4)
    assert (full.lr_step_epochs, full.lr_step_factor) == (130, 0.5)
    tune = full.fine_tune
    assert tune is not None and tune.start_from == "best"
    assert (tune.epochs, tune.scheduler, tune.learning_rate) == (60, "cosine", 5e-5)
    assert full.augmentations == ("hflip", "vflip", "rot90")
    assert count_parameters(build_model(full)) == 20_178_769
    assert full.init_from.endswith("efficientnet_v2_s-dd5fe13b.pth")  # ImageNet-1K weights
    assert full.init_from_sha256.startswith("dd5fe13b") and demo.init_from is None
    # the demo shrinks sizes only: same architecture, loss, schedule kinds, accumulation
    assert demo.width_multiplier < 1 and demo.depth_multiplier < 1 and demo.epochs < full.epochs
    assert (demo.loss, demo.scheduler, demo.fine_tune.scheduler) == ("bce", "step", "cosine")
    assert demo.effective_batch_size > demo.batch_size


@pytest.mark.parametrize(
    ("update", "field"),
    [
        ({"architecture": "efficientnet_v2_m"}, "architecture"),
        ({"width": 32}, "width applies to the ResNets"),
        ({"lr_step_epochs": None}, "lr_step_epochs"),
        ({"effective_batch_size": 100}, "multiple of batch_size"),
        ({"loss": "focal"}, "loss"),
        ({"pretrained": "best.pt"}, "init_from starts training"),
        ({"init_from": None}, "init_from_sha256 applies with init_from only"),
        ({"init_from_sha256": "DD5FE13B"}, "init_from_sha256"),
        ({"fine_tune": {"epochs": 3}}, "learning_rate"),
        (
            {"fine_tune": {"epochs": 3, "learning_rate": 0.1, "start_from": "ftp://x/b.pt"}},
            "start_from",
        ),
    ],
)
def test_bad_paper_config_names_file_and_field(tmp_path, update, field):
    shutil.copytree(PROJECT_ROOT / "configs" / "models", tmp_path / "models")
    path = tmp_path / "models" / "paperIV_efficientnet_v2_s.yaml"
    values = yaml.safe_load(path.read_text())
    values.pop("profiles")
    values.update(update)
    path.write_text(yaml.safe_dump(values))
    with pytest.raises(ConfigError) as info:
        load_model_config(tmp_path, "paperIV_efficientnet_v2_s", "full")
    assert str(path) in str(info.value) and field in str(info.value)


def test_efficientnet_fields_refused_for_resnets():
    with pytest.raises(ValueError, match="width_multiplier"):
        ModelConfig(name="m", architecture="resnet18", width_multiplier=0.5)


def test_a_training_step_reaches_every_parameter():
    torch.manual_seed(0)
    model = EfficientNetV2S(
        width_multiplier=0.25, depth_multiplier=0.25, stochastic_depth_prob=0.0, crop=32
    ).train()
    x = torch.randn(4, 3, 32, 32)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), torch.ones(4))
    loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name
