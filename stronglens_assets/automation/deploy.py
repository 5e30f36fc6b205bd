"""Production helpers: the run executor (``STRONGLENS_EXECUTOR``, read by settings) and the
concurrency-pool limits of ``deploy/pools.yaml``
(``python -m stronglens_assets.automation apply-pools deploy/pools.yaml``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import dagster as dg
from pydantic import field_validator

from stronglens_assets.config import StrictModel


def executor_from_env(environ: Mapping[str, str] | None = None) -> dg.ExecutorDefinition | None:
    """``k8s_job_executor`` (every step in its own pod, its ``dagster-k8s/config`` tag applied)
    when ``STRONGLENS_EXECUTOR=k8s`` (set by the production run launcher), else ``None``
    (Dagster's default multiprocess executor). The variable is read by
    :func:`stronglens_assets.settings.executor_name`."""
    from stronglens_assets.settings import executor_name

    if executor_name(environ) == "default":
        return None
    from dagster_k8s import k8s_job_executor

    return k8s_job_executor


class PoolLimits(StrictModel):
    """``deploy/pools.yaml``: pool name -> number of slots."""

    limits: dict[str, int]

    @field_validator("limits")
    @classmethod
    def _positive(cls, value: dict[str, int]) -> dict[str, int]:
        for name, slots in value.items():
            if not name or slots < 0:
                raise ValueError(f"pool {name!r}: the limit must be >= 0, got {slots}")
        return value


def load_pool_limits(path: str) -> dict[str, int]:
    """Read ``deploy/pools.yaml`` (``ConfigError`` naming the file and pool on bad input)."""
    from pathlib import Path

    from stronglens_assets.config import load_yaml, validate_config

    return validate_config({"limits": load_yaml(path)}, PoolLimits, Path(path)).limits


def apply_pool_limits(instance: dg.DagsterInstance, limits: dict[str, int]) -> None:
    """Store the pool limits in ``instance`` (what ``dagster instance concurrency set`` does)."""
    for pool, slots in sorted(limits.items()):
        instance.event_log_storage.set_concurrency_slots(pool, slots)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m stronglens_assets.automation apply-pools deploy/pools.yaml``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m stronglens_assets.automation")
    commands = parser.add_subparsers(dest="command", required=True)
    pools = commands.add_parser("apply-pools", help="store pool limits in $DAGSTER_HOME's instance")
    pools.add_argument("path", help="YAML mapping pool -> slots (deploy/pools.yaml)")
    args = parser.parse_args(argv)
    limits = load_pool_limits(args.path)
    with dg.DagsterInstance.get() as instance:
        apply_pool_limits(instance, limits)
    for pool, slots in sorted(limits.items()):
        print(f"pool {pool}: {slots} slots")
    return 0
