"""The test harness: what several test modules share, in one importable module.

``conftest.py`` files only declare fixtures (built from these helpers); test modules import
helpers from here, never from a conftest or from another test module.

* :class:`AssetHarness`: assets + resources materialized in process (``dg.materialize``),
  collecting the asset-check results of every run; :func:`open_database_connections` finds
  Dagster instances nobody disposed;
* :func:`local_resources`, :func:`make_project`: storage/IO manager on a local directory and a
  ``Project`` on the test bricks;
* :func:`checks_passed`, :func:`failure_message`: reading an in-process result;
* the small DR10-format survey of the asset tests (:func:`write_small_survey`) and the
  dataclasses of the shared session fixtures (:class:`BuiltSky`, :class:`DemoRun`);
* :func:`wilson_formula`, the reference binomial interval;
* optional tools, packages and services (:func:`require_tool`, :func:`require_module`,
  :func:`missing`): skipped on a developer machine that lacks them, a failure when ``CI`` is
  set (``.ci/run`` installs every one, so a missing one there is a broken CI, not a skip).
"""

from __future__ import annotations

import gc
import importlib
import math
import os
import shutil
import sys
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from stronglens_assets.config import Footprint
from stronglens_assets.mock_survey import BrickResult, DemoSkyConfig
from stronglens_assets.mock_survey.vac import write_mock_desi_vac
from stronglens_assets.project import Project
from stronglens_assets.resources import ArtifactIOManager, LocalStorageResource
from stronglens_assets.resources.survey import mock_sweep_path, mock_truth_lenses_path
from stronglens_assets.science.catalogs.bricks import parse_brick_name
from stronglens_assets.science.catalogs.lenscat import (
    desi_candidates,
    lenscat_csv_path,
    read_lenscat_csv,
)
from stronglens_assets.settings import load_settings
from stronglens_assets.testing.sweeps import synthetic_sweep

#: Demo bricks used by the tests: 4 lenscat candidates in the first, 1 in the second.
TEST_BRICKS: tuple[str, ...] = ("0366m037", "0161m005")


# --------------------------------------------------------------------------------------------
# Optional tools, packages and services: skip locally, fail in CI
# --------------------------------------------------------------------------------------------
def missing(message: str) -> NoReturn:
    """Skip with ``message`` (also at module level), or fail when ``CI`` is set."""
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set: .ci/run installs it)", pytrace=False)
    pytest.skip(message, allow_module_level=True)


def require_tool(name: str, why: str) -> str:
    """Path of executable ``name``; :func:`missing` when it is absent."""
    path = shutil.which(name)
    if path:
        return path
    missing(f"{name} is not installed; {why}")


def require_module(name: str, why: str) -> ModuleType:
    """``import name``, or :func:`missing` when the package is not installed (the module-level
    ``pytest.importorskip`` with the CI policy). An installed package that fails to import
    (a broken install) raises: it is never skipped."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is None or not (name == exc.name or name.startswith(exc.name + ".")):
            raise
        missing(f"{name} is not installed; {why}")


# --------------------------------------------------------------------------------------------
# Materializing assets
# --------------------------------------------------------------------------------------------
def checks_passed(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    """``{"<asset>:<check>": passed}`` of every asset-check evaluation of ``result``."""
    return {
        f"{e.asset_check_evaluation_data.asset_key.to_user_string()}:"
        f"{e.asset_check_evaluation_data.check_name}": e.asset_check_evaluation_data.passed
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }


def failure_message(result: dg.ExecuteInProcessResult) -> str:
    """Messages of the first failed step's error and its causes."""
    error = result.get_step_failure_events()[0].step_failure_data.error
    parts = []
    while error is not None:
        parts.append(error.message)
        error = error.cause
    return "\n".join(parts)


def local_resources(storage: LocalStorageResource, **extra: Any) -> dict[str, Any]:
    """``storage`` and an IO manager on it, plus ``extra`` resources (survey, coadds, ...)."""
    return {"io_manager": ArtifactIOManager(storage=storage), "storage": storage, **extra}


def make_project(
    home: Path, config_dir: Path | None = None, bricks: Sequence[str] = TEST_BRICKS, **env: str
) -> Project:
    """A ``local`` project on ``bricks`` (nside-16 partitions) with ``STRONGLENS_HOME=home``."""
    environ = {"STRONGLENS_HOME": str(home), **env}
    if config_dir is not None:
        environ["STRONGLENS_CONFIG_DIR"] = str(config_dir)
    footprint = Footprint(partition_nside=16, bricks=tuple(bricks))
    return Project(settings=load_settings(environ), footprint=footprint)


@dataclass
class AssetHarness:
    """``assets`` with ``resources`` materialized in process (``dg.materialize``).

    With an ``instance`` (e.g. the ``dagster_instance`` fixture, which disposes it) every run
    uses it, so checks that read earlier materializations see them; without one, each run
    gets its own ephemeral instance, disposed by Dagster. Every run adds its asset-check
    results to :attr:`checks`. Runs never raise: assert on ``result.success``.
    """

    assets: list
    resources: dict[str, Any]
    instance: dg.DagsterInstance | None = None
    checks: dict[str, bool] = field(default_factory=dict)

    def run(
        self,
        selection: Iterable[str] | dg.AssetSelection | str,
        partition: str | None = None,
    ) -> dg.ExecuteInProcessResult:
        """Materialize ``selection`` (asset names or a selection), optionally one partition."""
        if isinstance(selection, str):
            selection = [selection]
        if not isinstance(selection, dg.AssetSelection):
            selection = list(selection)
        result = dg.materialize(
            self.assets,
            resources=self.resources,
            selection=selection,
            partition_key=partition,
            instance=self.instance,
            raise_on_error=False,
        )
        self.checks.update(checks_passed(result))
        return result


def open_database_connections() -> list[str]:
    """URLs of the SQLAlchemy connections still open (e.g. of a Dagster instance nobody
    disposed). Left open at interpreter exit, their finalizers print "Cannot operate on a
    closed database" tracebacks after pytest's summary; the root conftest fails the session
    instead, so a leak is found where it is made."""
    engine_base = sys.modules.get("sqlalchemy.engine.base")
    if engine_base is None:
        return []
    gc.collect()
    with warnings.catch_warnings():  # isinstance on every object wakes deprecated lazy attributes
        warnings.simplefilter("ignore")
        return sorted(
            str(obj.engine.url)
            for obj in gc.get_objects()
            if isinstance(obj, engine_base.Connection) and not obj.closed
        )


# --------------------------------------------------------------------------------------------
# Reference values
# --------------------------------------------------------------------------------------------
def wilson_formula(k: int, n: int, level: float = 0.6827) -> tuple[float, float]:
    """Wilson score interval written out (Wilson 1927): the reference the interval, recall and
    completeness tests compare with."""
    z = float(norm.ppf(0.5 + level / 2))
    centre = (k + z * z / 2) / (n + z * z)
    half = z / (n + z * z) * math.sqrt(k * (n - k) / n + z * z / 4)
    return centre - half, centre + half


# --------------------------------------------------------------------------------------------
# Inputs shared by several test modules
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BuiltSky:
    """The two-brick mock sky written once per session (fixture ``built_sky``)."""

    config: DemoSkyConfig
    lenscat: pd.DataFrame
    root: Path
    results: list[BrickResult]


@dataclass(frozen=True)
class DemoRun:
    """One ``stronglens demo`` of the whole graph, shared by every end-to-end test."""

    home: Path
    returncode: int
    stdout: str
    stderr: str

    @property
    def storage(self) -> Path:
        return self.home / "storage"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster_home"


@dataclass
class SmallSurvey:
    """A small DR10-format survey on disk with the resources of the catalog/negative assets."""

    root: Path
    project: Project
    resources: dict
    storage: LocalStorageResource
    candidates: pd.DataFrame


def write_small_survey(root: Path, bricks: tuple[str, ...] = TEST_BRICKS) -> pd.DataFrame:
    """Write sweeps, empty truth tables and a VAC under ``root``; return candidates inside.

    Sweep rows come from the synthetic generator, plus one source at every real lenscat DESI
    candidate inside the bricks, so the crossmatch has real positives to find.
    """
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


def s3_environ(
    bucket: str, endpoint: str, home: Path, config_dir: Path, footprint: Path
) -> dict[str, str]:
    """``STRONGLENS_*`` variables of an ``s3`` environment on the moto server."""
    return {
        "STRONGLENS_ENV": "s3",
        "STRONGLENS_S3_BUCKET": bucket,
        "STRONGLENS_S3_ENDPOINT_URL": endpoint,
        "STRONGLENS_S3_REGION": "us-east-2",
        "STRONGLENS_HOME": str(home),
        "STRONGLENS_CONFIG_DIR": str(config_dir),
        "STRONGLENS_FOOTPRINT": str(footprint),
    }
