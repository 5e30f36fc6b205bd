"""The code location loads and resolves in every environment."""

from __future__ import annotations

import os
import subprocess
import sys

import dagster as dg
import pytest

from stronglens_assets.definitions import build_definitions
from stronglens_assets.resources import LocalStorageResource, S3StorageResource
from stronglens_assets.settings import PROJECT_ROOT, load_settings

S3_ENVIRON = {"STRONGLENS_ENV": "s3", "STRONGLENS_S3_BUCKET": "darkhaloscope"}


@pytest.mark.parametrize(
    ("environ", "storage_type"),
    [({}, LocalStorageResource), (S3_ENVIRON, S3StorageResource)],
)
def test_defs_resolve_in_each_environment(environ, storage_type) -> None:
    defs = build_definitions(load_settings({**os.environ, **environ}))
    graph = defs.resolve_asset_graph()
    assert dg.AssetKey("survey_footprint") in graph.get_all_asset_keys()
    assert isinstance(defs.resources["storage"], storage_type)
    defs.resolve_implicit_global_asset_job_def()


@pytest.mark.parametrize("environ", [{}, S3_ENVIRON])
def test_defs_import_as_dagster_does(environ) -> None:
    """The acceptance command, in a fresh interpreter per environment."""
    code = "from stronglens_assets.definitions import defs; defs.resolve_asset_graph()"
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **environ},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr


def test_workspace_points_at_defs() -> None:
    text = (PROJECT_ROOT / "workspace.yaml").read_text()
    assert "module_name: stronglens_assets.definitions" in text
    assert "attribute: defs" in text
