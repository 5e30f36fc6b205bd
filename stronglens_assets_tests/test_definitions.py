"""The code location loads and resolves in every environment."""

from __future__ import annotations

import os
import re
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


def _outside_code_spans(markdown: str) -> str:
    """``markdown`` without its code spans (``...`` and `...`), where * is literal."""
    return re.sub(r"``.*?``|`[^`]*`", "", markdown, flags=re.S)


def test_every_asset_and_check_has_a_description_for_astronomers() -> None:
    """The UI shows these descriptions (as markdown) to users who have not read the seeds:
    each asset and check says what it is, without references to the seeds' numbering, and
    no ``*`` outside a code span (markdown would turn it into emphasis and drop it)."""
    graph = build_definitions().resolve_asset_graph()
    descriptions = {
        key.to_user_string(): graph.get(key).description for key in graph.get_all_asset_keys()
    }
    for check_key in graph.asset_check_keys:
        name = f"{check_key.asset_key.to_user_string()}:{check_key.name}"
        descriptions[name] = graph.get_check_spec(check_key).description
    assert {"lenscat_csv", "grid_completeness:result_set_complete"} <= set(descriptions)
    missing = sorted(name for name, text in descriptions.items() if not (text or "").strip())
    assert not missing, f"no description: {missing}"
    seeds = sorted(name for name, text in descriptions.items() if "seeds" in text.lower())
    assert not seeds, f"descriptions that cite the seeds: {seeds}"
    starred = sorted(
        name for name, text in descriptions.items() if "*" in _outside_code_spans(text)
    )
    assert not starred, f"'*' outside a code span (lost to markdown): {starred}"
