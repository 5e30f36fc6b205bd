"""Fixtures of the production tests: an ``s3`` environment on the moto server."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from stronglens_assets.settings import PROJECT_ROOT, Settings, load_settings
from stronglens_assets_tests.harness import TEST_BRICKS, s3_environ


@pytest.fixture
def config_copy(tmp_path: Path) -> Path:
    """A private copy of ``configs/`` that a test may edit, plus a 2-brick footprint."""
    target = tmp_path / "configs"
    shutil.copytree(PROJECT_ROOT / "configs", target)
    (target / "footprint_test.yaml").write_text(
        f"partition_nside: 16\nbricks: [{', '.join(TEST_BRICKS)}]\n"
    )
    return target


@pytest.fixture
def s3_settings(
    s3_server: str, s3_bucket: str, config_copy: Path, tmp_path: Path, monkeypatch
) -> Settings:
    """Settings of an ``s3`` environment on a fresh moto bucket (also exported to the env)."""
    environ = s3_environ(
        s3_bucket, s3_server, tmp_path / "home", config_copy, config_copy / "footprint_test.yaml"
    )
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    return load_settings()
