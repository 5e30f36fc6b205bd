"""A small DR10-format survey on disk (sweeps, truth, VAC) for asset tests, built in seconds.

Two real demo bricks; sweep rows from the synthetic generator plus one source at every real
lenscat DESI candidate inside the bricks, so the crossmatch has real positives to find.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from stronglens_assets.config import Footprint
from stronglens_assets.mock_survey.vac import write_mock_desi_vac
from stronglens_assets.project import Project
from stronglens_assets.resources import ArtifactIOManager, LocalStorageResource
from stronglens_assets.resources.survey import (
    MockSurveyResource,
    mock_sweep_path,
    mock_truth_lenses_path,
)
from stronglens_assets.science.catalogs.bricks import parse_brick_name
from stronglens_assets.science.catalogs.lenscat import (
    desi_candidates,
    lenscat_csv_path,
    read_lenscat_csv,
)
from stronglens_assets.settings import load_settings
from stronglens_assets.testing.sweeps import synthetic_sweep

TEST_BRICKS = ("0366m037", "0161m005")


@dataclass
class SmallSurvey:
    root: Path
    project: Project
    resources: dict
    storage: LocalStorageResource
    candidates: pd.DataFrame


def write_small_survey(root: Path, bricks: tuple[str, ...] = TEST_BRICKS) -> pd.DataFrame:
    """Write sweeps, empty truth tables and a VAC under ``root``; return candidates inside."""
    candidates = desi_candidates(read_lenscat_csv(lenscat_csv_path()))
    inside = []
    for i, brick in enumerate(bricks):
        info = parse_brick_name(brick)
        sweep = synthetic_sweep(
            20_000, seed=i, ra_range=(info.ra1, info.ra2), dec_range=(info.dec1, info.dec2)
        )
        sweep = sweep[sweep["BRICKNAME"] == brick]
        here = candidates[
            (candidates["ra"].between(info.ra1, info.ra2))
            & (candidates["dec"].between(info.dec1, info.dec2))
        ]
        lens_rows = sweep.iloc[: len(here)].copy()
        lens_rows["RA"] = here["ra"].to_numpy()
        lens_rows["DEC"] = here["dec"].to_numpy()
        lens_rows["OBJID"] = np.arange(len(here)) + 1_000_000
        sweep = pd.concat([sweep, lens_rows], ignore_index=True)
        path = mock_sweep_path(root, brick)
        path.parent.mkdir(parents=True, exist_ok=True)
        sweep.to_parquet(path, index=False)
        truth = mock_truth_lenses_path(root, brick)
        truth.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(
            {"ra": here["ra"], "dec": here["dec"], "source": "lenscat", "name": here["name"]}
        ).to_parquet(truth, index=False)
        inside.append(here)
    found = pd.concat(inside, ignore_index=True)
    vac = root / "desi_dr1" / "desi-sl-vac-v1.fits"
    vac.parent.mkdir(parents=True, exist_ok=True)
    write_mock_desi_vac(vac, found["ra"], found["dec"], np.full(len(found), 0.5), seed=1)
    return found


@pytest.fixture
def small_survey(tmp_path: Path) -> SmallSurvey:
    root = tmp_path / "survey"
    candidates = write_small_survey(root)
    settings = load_settings({"STRONGLENS_HOME": str(tmp_path / "home")})
    project = Project(
        settings=settings, footprint=Footprint(partition_nside=16, bricks=TEST_BRICKS)
    )
    storage = LocalStorageResource(root=str(tmp_path / "storage"))
    resources = {
        "io_manager": ArtifactIOManager(storage=storage),
        "storage": storage,
        "survey": MockSurveyResource(root=str(root)),
    }
    return SmallSurvey(root, project, resources, storage, candidates)


def materialize(
    assets: list, resources: dict, selection: list[str], partition_key: str | None = None
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        assets,
        resources=resources,
        selection=selection,
        partition_key=partition_key,
        raise_on_error=False,
    )
