"""The compute resource and the GPU op tags."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stronglens_assets.config import ConfigError
from stronglens_assets.resources.compute import (
    GPU_POOL,
    ComputeError,
    ComputeResource,
    build_compute,
    gpu_op_tags,
)
from stronglens_assets.settings import PROJECT_ROOT


def test_gpu_op_tags_from_config():
    tags = gpu_op_tags(PROJECT_ROOT / "configs")
    k8s = tags["dagster-k8s/config"]
    assert k8s["container_config"]["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    assert k8s["pod_spec_config"]["node_selector"] == {"nvidia.com/gpu.present": "true"}
    assert k8s["pod_spec_config"]["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert GPU_POOL == "gpu"


def test_bad_compute_config_names_file_and_field(tmp_path):
    (tmp_path / "compute.yaml").write_text("device: tpu\n")
    with pytest.raises(ConfigError, match=r"compute\.yaml[\s\S]*device"):
        build_compute(tmp_path)
    (tmp_path / "compute.yaml").write_text("gpu: {count: 0}\n")
    with pytest.raises(ConfigError, match=r"gpu\.count"):
        gpu_op_tags(tmp_path)


def test_cpu_device_and_array_module():
    compute = ComputeResource(device="cpu")
    assert compute.torch_device() == torch.device("cpu")
    assert compute.array_module() is np


def test_auto_and_cuda():
    auto = ComputeResource(device="auto").torch_device()
    assert auto.type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ComputeError, match="cuda"):
            ComputeResource(device="cuda").torch_device()


def test_demo_profile_fixes_one_thread():
    configs = PROJECT_ROOT / "configs"
    assert build_compute(configs, "demo").num_threads == 1
    assert build_compute(configs, "full").num_threads is None
