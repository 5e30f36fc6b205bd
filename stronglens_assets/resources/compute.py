"""Compute: which device PyTorch (and the array module) run on, and the GPU op tags.

* :class:`ComputeResource` (resource key ``compute``): ``device`` is ``auto`` (CUDA when
  torch sees a GPU, else CPU), ``cpu`` or ``cuda``. Training, scoring and injection ask it
  for :meth:`~ComputeResource.torch_device` and :meth:`~ComputeResource.array_module`
  (NumPy, or CuPy on CUDA when CuPy imports), so there is one code path for both.
* :data:`GPU_POOL` and :func:`gpu_op_tags`: every GPU asset is declared with
  ``pool=GPU_POOL, op_tags=gpu_op_tags()``. The tag is dagster-k8s' ``dagster-k8s/config``
  (read by the ``k8s_job_executor``): a ``nvidia.com/gpu`` limit, node selector and
  tolerations from ``configs/compute.yaml``.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import dagster as dg
import numpy as np
from pydantic import Field

from stronglens_assets.config import StrictModel, load_profiled_config
from stronglens_assets.errors import StronglensError
from stronglens_assets.science.core.arrays import gpu_array_module
from stronglens_assets.settings import enable_deterministic_cuda

#: Concurrency pool of GPU steps (limit it in dagster.yaml ``concurrency: pools:``).
GPU_POOL = "gpu"
COMPUTE_CONFIG_FILENAME = "compute.yaml"
DeviceName = Literal["auto", "cpu", "cuda"]


class Toleration(StrictModel):
    """A Kubernetes toleration (``effect`` NoSchedule / PreferNoSchedule / NoExecute)."""

    key: str
    operator: Literal["Exists", "Equal"] = "Exists"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None


class GpuRequest(StrictModel):
    """What one GPU step asks Kubernetes for."""

    resource: str = "nvidia.com/gpu"
    count: int = Field(default=1, ge=1)
    cpu_request: str | None = None
    memory_request: str | None = None
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[Toleration] = Field(default_factory=list)


class ComputeConfig(StrictModel):
    """``configs/compute.yaml``."""

    device: DeviceName = "auto"
    num_threads: int | None = Field(default=None, ge=1)
    gpu: GpuRequest = Field(default_factory=GpuRequest)


def _default_config_dir() -> Path:
    from stronglens_assets.settings import load_settings

    return load_settings().config_dir


def load_compute_config(
    config_dir: str | os.PathLike[str] | None = None, profile: str = "full"
) -> ComputeConfig:
    """Load ``<config_dir>/compute.yaml`` (default: ``STRONGLENS_CONFIG_DIR`` or ``configs/``)
    with the overrides of size profile ``profile``."""
    directory = Path(config_dir) if config_dir is not None else _default_config_dir()
    return load_profiled_config(directory / COMPUTE_CONFIG_FILENAME, ComputeConfig, profile)


def gpu_op_tags(config_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Op tags of a GPU asset: ``{"dagster-k8s/config": {...}}`` requesting the GPU.

    ``container_config.resources.limits`` holds ``<resource>: <count>`` (and CPU/memory
    requests when configured); ``pod_spec_config`` holds the node selector and tolerations.
    """
    gpu = load_compute_config(config_dir).gpu
    resources: dict[str, Any] = {"limits": {gpu.resource: str(gpu.count)}}
    requests = {
        name: value
        for name, value in (("cpu", gpu.cpu_request), ("memory", gpu.memory_request))
        if value is not None
    }
    if requests:
        resources["requests"] = requests
    pod_spec: dict[str, Any] = {}
    if gpu.node_selector:
        pod_spec["node_selector"] = dict(gpu.node_selector)
    if gpu.tolerations:
        pod_spec["tolerations"] = [t.model_dump(exclude_none=True) for t in gpu.tolerations]
    return {
        "dagster-k8s/config": {
            "container_config": {"resources": resources},
            "pod_spec_config": pod_spec,
        }
    }


class ComputeError(StronglensError, RuntimeError):
    """The configured device is not available."""


class ComputeResource(dg.ConfigurableResource):
    """The device of PyTorch and array work: ``auto``, ``cpu`` or ``cuda``.

    ``num_threads`` (optional) fixes torch's intra-op CPU threads, for reproducible CPU
    timings and bytes.
    """

    device: DeviceName = "auto"
    num_threads: int | None = None

    def torch_device(self) -> Any:
        """The :class:`torch.device` to use; :class:`ComputeError` if ``cuda`` is unavailable."""
        import torch

        if self.num_threads is not None:
            torch.set_num_threads(self.num_threads)
        if self.device == "cpu":
            return torch.device("cpu")
        available = torch.cuda.is_available()
        if self.device == "cuda" and not available:
            raise ComputeError("compute.device is 'cuda' but torch sees no CUDA device")
        if not available:
            return torch.device("cpu")
        enable_deterministic_cuda()
        return torch.device("cuda")

    def array_module(self) -> ModuleType:
        """NumPy, or CuPy when the device is CUDA and CuPy is installed (a broken CuPy install
        raises instead of silently falling back to the CPU)."""
        if self.torch_device().type != "cuda":
            return np
        return gpu_array_module() or np


def build_compute(
    config_dir: str | os.PathLike[str] | None = None, profile: str = "full"
) -> ComputeResource:
    """The compute resource described by ``configs/compute.yaml`` for ``profile``."""
    config = load_compute_config(config_dir, profile)
    return ComputeResource(device=config.device, num_threads=config.num_threads)
