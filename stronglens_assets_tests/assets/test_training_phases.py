"""model_checkpoint with the paper's options: a fine-tune phase from a checkpoint file."""

from __future__ import annotations

import json

import torch

from stronglens_assets.science.core.hashing import sha256_bytes
from stronglens_assets.science.learning.model_config import load_model_config
from stronglens_assets.science.learning.models import build_model
from stronglens_assets.storage_keys import HISTORY_KEY
from stronglens_assets_tests.assets.test_training_assets import NAME, TINY, Graph, _error, _save

OPTIONS = "loss: bce\neffective_batch_size: 32\n"


def test_fine_tune_from_a_file_trains_phase_two_only(tmp_path):
    graph = Graph(tmp_path)
    try:
        torch.manual_seed(4)
        start = build_model(load_model_config(graph.config_dir, NAME, "full"))
        (tmp_path / "phase1.pt").write_bytes(_save({"model": start.state_dict(), "epoch": 19}))
        graph.set_model_yaml(
            TINY
            + OPTIONS
            + "fine_tune: {start_from: phase1.pt, epochs: 2, learning_rate: 1.0e-3}\n"
        )
        # a relative start_from is read from the config directory
        (graph.config_dir / "phase1.pt").write_bytes((tmp_path / "phase1.pt").read_bytes())
        result = graph.run(["model_checkpoint"])
        assert result.success, _error(result)
        history = json.loads(graph.store.read_bytes(HISTORY_KEY.format(name=NAME)))
        assert [h["phase"] for h in history["epochs"]] == [2, 2]
        assert history["phases"][0]["start_from"] == "phase1.pt"
        good = graph.checkpoint()

        state = dict(start.state_dict())
        state.pop("layer1.0.conv1.weight")
        state["head.weight"] = torch.zeros(1, 4)
        (graph.config_dir / "phase1.pt").write_bytes(_save(state))
        result = graph.run(["model_checkpoint"])
        assert not result.success
        message = _error(result)
        assert "phase1.pt" in message
        assert "layer1.0.conv1.weight" in message and "head.weight" in message
        assert graph.checkpoint() == good  # nothing overwritten
    finally:
        graph.instance.dispose()


def test_init_from_checks_the_sha256_then_trains_from_the_file(tmp_path):
    graph = Graph(tmp_path)
    try:
        torch.manual_seed(6)
        state = build_model(load_model_config(graph.config_dir, NAME, "full")).state_dict()
        state["fc.weight"] = torch.zeros(1000, 32)  # an ImageNet-sized head
        state["fc.bias"] = torch.zeros(1000)
        data = _save(state)
        (graph.config_dir / "imagenet.pth").write_bytes(data)
        wrong = "0" * 64
        graph.set_model_yaml(TINY + f"init_from: imagenet.pth\ninit_from_sha256: '{wrong}'\n")
        result = graph.run(["model_checkpoint"])
        assert not result.success
        assert "init_from_sha256" in _error(result) and sha256_bytes(data) in _error(result)
        graph.set_model_yaml(
            TINY + f"init_from: imagenet.pth\ninit_from_sha256: {sha256_bytes(data)}\n"
        )
        result = graph.run(["model_checkpoint"])
        assert result.success, _error(result)
        history = json.loads(graph.store.read_bytes(HISTORY_KEY.format(name=NAME)))
        assert history["initialised_from"]["head_keys_not_loaded"] == ["fc.bias", "fc.weight"]
        assert history["phases"][0]["start_from"] == "imagenet.pth"
    finally:
        graph.instance.dispose()
