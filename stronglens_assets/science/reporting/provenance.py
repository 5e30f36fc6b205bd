"""Provenance of the D06 results (seeds "Reproducibility Guide" 4.7 and 10), no Dagster.

``provenance.json`` records what the results were made from: the git commit of the code, the
SHA-256 of every configuration file, the SHA-256 of the frozen model checkpoint, the data
version, run id and time of every upstream materialization, package versions and when it was
written. :func:`check_drift` recomputes the checksums and lists what changed since, so a
result can never silently outlive the configuration or the model it was computed with.

Checksums are SHA-256 hex digests of the exact file bytes. Config files are named by their
path relative to the config directory (``models/paperIV_bottlenecked_resnet.yaml``).
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stronglens_assets.science.core.hashing import sha256_file

__all__ = [
    "CONFIG_SUFFIXES",
    "DEFAULT_PACKAGES",
    "PROVENANCE_VERSION",
    "DriftReport",
    "build_provenance",
    "check_drift",
    "config_checksums",
    "git_state",
    "package_versions",
    "utc_now",
]

PROVENANCE_VERSION = 1
"""Schema version of ``provenance.json``."""

CONFIG_SUFFIXES: tuple[str, ...] = (".yaml", ".yml")
"""Files of the config directory that are configuration (checksummed recursively)."""

DEFAULT_PACKAGES: tuple[str, ...] = (
    "stronglens_assets",
    "dagster",
    "numpy",
    "pandas",
    "pyarrow",
    "torch",
    "torchmetrics",
    "scikit-learn",
    "scipy",
    "astropy",
    "healpy",
    "matplotlib",
    "pydantic",
    "pyyaml",
    "lenstronomy",
    "cupy-cuda12x",
)
"""Distributions whose versions are recorded (absent ones are recorded as ``null``)."""


def config_checksums(
    config_dir: str | os.PathLike[str], extra_files: Iterable[str | os.PathLike[str]] = ()
) -> dict[str, str]:
    """SHA-256 of every config file under ``config_dir`` (recursive), sorted by name.

    Names are POSIX paths relative to ``config_dir``; hidden files and directories are
    skipped. ``extra_files`` outside the directory (e.g. a footprint given by absolute path)
    are keyed by their absolute path.

    Raises:
        FileNotFoundError: ``config_dir`` is not a directory or an extra file is missing.
    """
    root = Path(config_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"config directory {root} does not exist")
    sums: dict[str, str] = {}
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.is_file() and path.suffix in CONFIG_SUFFIXES:
            sums[relative.as_posix()] = sha256_file(path)
    for extra in extra_files:
        path = Path(extra).resolve()
        try:
            name = path.relative_to(root.resolve()).as_posix()
        except ValueError:
            name = str(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} does not exist")
        sums[name] = sha256_file(path)
    return dict(sorted(sums.items()))


def git_state(repo_dir: str | os.PathLike[str], timeout_s: float = 10.0) -> dict[str, Any]:
    """Commit and cleanliness of the git checkout holding ``repo_dir``.

    Returns ``{"commit": <40-hex sha>, "dirty": bool, "reason": None}``; when ``repo_dir`` is
    not in a git checkout or ``git`` is missing (a container image, an installed wheel),
    ``{"commit": None, "dirty": None, "reason": <why>}`` instead of raising. ``dirty`` means
    tracked files differ from the commit.
    """

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", "-C", str(repo_dir), *args],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )

    try:
        head = run("rev-parse", "--verify", "HEAD")
    except FileNotFoundError:
        return {"commit": None, "dirty": None, "reason": "git is not installed"}
    except subprocess.TimeoutExpired:
        return {"commit": None, "dirty": None, "reason": f"git timed out after {timeout_s} s"}
    if head.returncode != 0:
        message = (head.stderr.strip().splitlines() or ["git rev-parse failed"])[-1]
        return {"commit": None, "dirty": None, "reason": f"not a git checkout: {message}"}
    status = run("status", "--porcelain", "--untracked-files=no")
    dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
    return {"commit": head.stdout.strip(), "dirty": dirty, "reason": None}


def package_versions(names: Iterable[str] = DEFAULT_PACKAGES) -> dict[str, str | None]:
    """Installed version of each distribution (``None`` if absent), plus ``python``."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def utc_now() -> str:
    """Current UTC time, ISO 8601 with seconds (``2026-02-16T12:00:00Z``)."""
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def build_provenance(
    *,
    git: Mapping[str, Any],
    configs: Mapping[str, str],
    checkpoint: Mapping[str, Any],
    upstream: Iterable[Mapping[str, Any]],
    packages: Mapping[str, str | None],
    run_id: str | None,
    created_at: str,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble the ``provenance.json`` mapping.

    Args:
        git: from :func:`git_state`.
        configs: config name -> SHA-256 (from :func:`config_checksums`).
        checkpoint: at least ``sha256`` (hex of the checkpoint bytes) and ``key`` (storage key).
        upstream: one mapping per upstream materialization (asset, partition, data version,
            run id, timestamp, ...), kept in the given order.
        packages: from :func:`package_versions`.
        run_id: the Dagster run that writes this provenance.
        created_at: ISO 8601 UTC time of writing.

    Raises:
        ValueError: the checkpoint has no well-formed ``sha256`` or a config checksum is not a
            64-hex digest.
    """
    digest = str(checkpoint.get("sha256", ""))
    if len(digest) != 64 or any(ch not in "0123456789abcdef" for ch in digest):
        raise ValueError(f"checkpoint sha256 {digest!r} is not a 64-character hex digest")
    for name, value in configs.items():
        if len(value) != 64:
            raise ValueError(f"config checksum of {name!r} is not a SHA-256 hex digest")
    return {
        "provenance_version": PROVENANCE_VERSION,
        "created_at": created_at,
        "run_id": run_id,
        "git": dict(git),
        "configs": dict(sorted(configs.items())),
        "checkpoint": dict(checkpoint),
        "upstream": [dict(item) for item in upstream],
        "packages": dict(packages),
        **(dict(extra) if extra else {}),
    }


@dataclass(frozen=True)
class DriftReport:
    """What changed since a provenance record was written.

    ``changed``/``missing`` configs and a changed checkpoint are drift (the results no longer
    match the inputs on disk); ``added`` configs are reported but are not drift, since the
    recorded results did not use them.
    """

    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    checkpoint: str | None = None

    @property
    def drifted(self) -> bool:
        return bool(self.changed or self.missing or self.checkpoint)

    def describe(self) -> str:
        """One line per problem, or ``"no drift"``."""
        lines = [f"config changed: {name}" for name in self.changed]
        lines += [f"config missing: {name}" for name in self.missing]
        if self.checkpoint:
            lines.append(self.checkpoint)
        return "\n".join(lines) if lines else "no drift"


def check_drift(
    recorded: Mapping[str, Any],
    current_configs: Mapping[str, str],
    current_checkpoint_sha256: str | None,
) -> DriftReport:
    """Compare a provenance record with checksums recomputed now.

    Args:
        recorded: a ``provenance.json`` mapping (:func:`build_provenance`).
        current_configs: config name -> SHA-256 now (:func:`config_checksums`).
        current_checkpoint_sha256: SHA-256 of the checkpoint bytes now; ``None`` if the
            checkpoint can no longer be read (reported as drift).

    Raises:
        ValueError: ``recorded`` lacks ``configs`` or ``checkpoint.sha256``.
    """
    if "configs" not in recorded or "sha256" not in recorded.get("checkpoint", {}):
        raise ValueError("provenance record lacks 'configs' or 'checkpoint.sha256'")
    old = recorded["configs"]
    changed = sorted(n for n in old if n in current_configs and current_configs[n] != old[n])
    missing = sorted(n for n in old if n not in current_configs)
    added = sorted(n for n in current_configs if n not in old)
    expected = recorded["checkpoint"]["sha256"]
    problem = None
    if current_checkpoint_sha256 is None:
        problem = f"checkpoint {recorded['checkpoint'].get('key', '?')} cannot be read"
    elif current_checkpoint_sha256 != expected:
        problem = (
            f"checkpoint {recorded['checkpoint'].get('key', '?')} changed: sha256 "
            f"{current_checkpoint_sha256} != recorded {expected}"
        )
    return DriftReport(changed=changed, missing=missing, added=added, checkpoint=problem)
