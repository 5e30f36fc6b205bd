"""Fixtures of the asset tests (helpers: :mod:`stronglens_assets_tests.harness`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stronglens_assets.resources import LocalStorageResource
from stronglens_assets.resources.survey import MockSurveyResource
from stronglens_assets_tests.harness import (
    SmallSurvey,
    local_resources,
    make_project,
    write_small_survey,
)


@pytest.fixture
def small_survey(tmp_path: Path) -> SmallSurvey:
    """Two real demo bricks' sweeps (synthetic rows + the lenscat candidates), truth and VAC."""
    root = tmp_path / "survey"
    candidates = write_small_survey(root)
    storage = LocalStorageResource(root=str(tmp_path / "storage"))
    resources = local_resources(storage, survey=MockSurveyResource(root=str(root)))
    return SmallSurvey(root, make_project(tmp_path / "home"), resources, storage, candidates)
