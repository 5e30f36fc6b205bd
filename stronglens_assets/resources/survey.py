"""Survey data sources: where DR10-format inputs (sweeps, DESI VAC) are read from.

Two sources, one interface (:class:`SurveySource`):

* :class:`MockSurveySource`: the embedded default written by :mod:`stronglens_assets.mock_survey`
  under a local directory: ``sweep/<RRR>/sweep-<brick>.parquet`` (one sweep-like table per
  brick), ``desi_dr1/desi-sl-vac-v1.fits``, ``coadd/<RRR>/<brick>/...``.
* :class:`DR10SurveySource`: the real DR10 products in an object store (S3 in the ``s3``
  environment): sweep 10.1 files ``<sweep_prefix>/sweep-<ra1><pm><dec1>-<ra2><pm><dec2>.fits``
  (5 x 5 deg boxes, BRICK_PRIMARY rows) fetched once into a local cache, and the DESI DR1
  strong-lensing VAC at ``<desi_vac_key>``.

The same readers (:func:`~stronglens_assets.science.catalogs.sweeps.read_sweep`,
:func:`~stronglens_assets.science.catalogs.desi_vac.read_desi_vac`) parse both: the mock only
writes files.
"""

import math
import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

import dagster as dg
import pandas as pd
from dagster_aws.s3 import S3Resource

from stronglens_assets.errors import StronglensError
from stronglens_assets.resources.object_store import LocalObjectStore, ObjectStore, S3ObjectStore
from stronglens_assets.science.catalogs.bricks import parse_brick_name
from stronglens_assets.science.catalogs.sweeps import read_sweep

SWEEP_BOX_DEG = 5
DESI_VAC_FILENAME = "desi-sl-vac-v1.fits"


class SurveyInputError(StronglensError, FileNotFoundError):
    """A survey input file is missing; the message names it."""


def mock_sweep_path(root: Path, brick: str) -> Path:
    """Per-brick sweep-like table written by the mock survey."""
    return root / "sweep" / brick[:3] / f"sweep-{brick}.parquet"


def mock_truth_lenses_path(root: Path, brick: str) -> Path:
    """Per-brick table of the lenses the mock survey planted (lenscat and mock)."""
    return root / "truth" / brick[:3] / f"lenses-{brick}.parquet"


def _signed(dec: int) -> str:
    return f"{'p' if dec >= 0 else 'm'}{abs(dec):03d}"


def sweep_filename(ra_low: int, dec_low: int) -> str:
    """DR10 sweep file name of the 5 x 5 deg box with lower corner (``ra_low``, ``dec_low``) deg."""
    ra_high, dec_high = ra_low + SWEEP_BOX_DEG, dec_low + SWEEP_BOX_DEG
    return f"sweep-{ra_low:03d}{_signed(dec_low)}-{ra_high:03d}{_signed(dec_high)}.fits"


def sweep_files_for_bricks(bricks: Sequence[str]) -> list[str]:
    """Sweep file names whose boxes overlap any of ``bricks`` (sorted, unique)."""
    names: set[str] = set()
    for brick in bricks:
        info = parse_brick_name(brick)
        ra_lows = range(
            math.floor(info.ra1 / SWEEP_BOX_DEG) * SWEEP_BOX_DEG,
            math.ceil(info.ra2 / SWEEP_BOX_DEG) * SWEEP_BOX_DEG,
            SWEEP_BOX_DEG,
        )
        dec_lows = range(
            math.floor(info.dec1 / SWEEP_BOX_DEG) * SWEEP_BOX_DEG,
            math.ceil(info.dec2 / SWEEP_BOX_DEG) * SWEEP_BOX_DEG,
            SWEEP_BOX_DEG,
        )
        names.update(sweep_filename(r % 360, d) for r in ra_lows for d in dec_lows)
    return sorted(names)


class SurveySource(ABC):
    """Reads DR10-format survey inputs for a set of bricks."""

    @abstractmethod
    def read_sweeps(self, bricks: Sequence[str]) -> pd.DataFrame:
        """Sweep rows (BRICK_PRIMARY) of ``bricks``, sweep column names, sorted by brick, OBJID."""

    @abstractmethod
    def desi_vac_path(self) -> Path:
        """Local path of the DESI DR1 strong-lensing VAC FITS file."""

    def planted_lenses(self, bricks: Sequence[str]) -> pd.DataFrame:
        """Lenses a simulation planted in ``bricks`` (columns brickname, ra, dec in deg, source,
        name, arc_snr_max, arc_residual_snr, and the simulation's truth parameters).

        Empty for real survey data; the mock survey lists its lenses (lenscat and mock) so
        that no lens host is ever taken as a negative.
        """
        columns = ("brickname", "ra", "dec", "source", "name", "arc_snr_max", "arc_residual_snr")
        return pd.DataFrame({column: [] for column in columns})

    def describe(self) -> str:
        return type(self).__name__


def _concat_sorted(frames: list[pd.DataFrame]) -> pd.DataFrame:
    if not frames:
        raise SurveyInputError("no sweep rows: no bricks were given")
    table = pd.concat(frames, ignore_index=True)
    return table.sort_values(["BRICKNAME", "OBJID"], ignore_index=True)


class MockSurveySource(SurveySource):
    """The embedded mock DR10 survey under ``root``."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)

    def describe(self) -> str:
        return f"mock DR10 survey at {self.root}"

    def read_sweeps(self, bricks: Sequence[str]) -> pd.DataFrame:
        frames = []
        for brick in bricks:
            path = mock_sweep_path(self.root, brick)
            if not path.is_file():
                raise SurveyInputError(
                    f"sweep file {path} of brick {brick} is missing: build the mock survey "
                    "first (asset mock_survey_bricks)"
                )
            frames.append(read_sweep(path))
        return _concat_sorted(frames)

    def planted_lenses(self, bricks: Sequence[str]) -> pd.DataFrame:
        frames = []
        for brick in bricks:
            path = mock_truth_lenses_path(self.root, brick)
            if not path.is_file():
                raise SurveyInputError(f"lens truth table {path} of brick {brick} is missing")
            frames.append(pd.read_parquet(path))
        if not frames:
            return super().planted_lenses(bricks)
        return pd.concat(frames, ignore_index=True)

    def desi_vac_path(self) -> Path:
        path = self.root / "desi_dr1" / DESI_VAC_FILENAME
        if not path.is_file():
            raise SurveyInputError(f"DESI VAC {path} is missing: materialize mock_desi_vac first")
        return path


class DR10SurveySource(SurveySource):
    """Real DR10 products in an object store, fetched into ``cache_dir`` on first use."""

    def __init__(
        self,
        store: ObjectStore,
        cache_dir: str | os.PathLike[str],
        sweep_prefix: str = "dr10/sweep/10.1",
        desi_vac_key: str = f"stronglens_calibration/data/external/desi_dr1/{DESI_VAC_FILENAME}",
    ):
        self.store = store
        self.cache_dir = Path(cache_dir)
        self.sweep_prefix = sweep_prefix.strip("/")
        self.desi_vac_key = desi_vac_key.strip("/")

    def describe(self) -> str:
        return f"DR10 products at {self.store.uri(self.sweep_prefix)}"

    def _fetch(self, key: str) -> Path:
        """Local copy of ``key`` in the cache, downloaded (atomically) on first use."""
        cache = LocalObjectStore(self.cache_dir)
        if not cache.exists(key):
            if not self.store.exists(key):
                raise SurveyInputError(f"survey input {self.store.uri(key)} does not exist")
            cache.write_bytes(key, self.store.read_bytes(key))
        return cache.local_path(key)

    def read_sweeps(self, bricks: Sequence[str]) -> pd.DataFrame:
        """Sweep rows of ``bricks`` from the sweep files whose boxes overlap them.

        A sweep file may be absent (a box outside the survey), but a requested brick is in the
        survey by definition: a brick that ends up with no row (e.g. its box's file was not
        synced) raises :class:`SurveyInputError` naming the bricks and the missing keys,
        instead of silently dropping a 5 x 5 deg box.
        """
        wanted = set(bricks)
        frames, missing_keys = [], []
        for name in sweep_files_for_bricks(bricks):
            key = f"{self.sweep_prefix}/{name}"
            if not self.store.exists(key):
                missing_keys.append(self.store.uri(key))
                continue
            table = read_sweep(self._fetch(key))
            frames.append(table[table["BRICKNAME"].isin(wanted)])
        found = set().union(*(set(f["BRICKNAME"]) for f in frames)) if frames else set()
        empty = sorted(wanted - found)
        if empty:
            missing = ", ".join(missing_keys) if missing_keys else "none (the files lack them)"
            raise SurveyInputError(
                f"{len(empty)} requested brick(s) have no sweep rows: "
                f"{', '.join(empty[:10])}{' ...' if len(empty) > 10 else ''}; "
                f"missing sweep files: {missing}"
            )
        return _concat_sorted(frames)

    def desi_vac_path(self) -> Path:
        return self._fetch(self.desi_vac_key)


class SurveyResource(dg.ConfigurableResource):
    """Base class: a survey data source. Use a subclass."""

    def source(self) -> SurveySource:
        raise NotImplementedError


class MockSurveyResource(SurveyResource):
    """The embedded mock DR10 survey written under ``root`` (``local`` environment)."""

    root: str

    def source(self) -> SurveySource:
        return MockSurveySource(self.root)


class DR10SurveyResource(SurveyResource):
    """Real DR10 inputs on S3 (``s3`` environment), cached under ``cache_dir``."""

    s3: S3Resource
    bucket: str
    cache_dir: str
    sweep_prefix: str = "dr10/sweep/10.1"
    desi_vac_key: str = f"stronglens_calibration/data/external/desi_dr1/{DESI_VAC_FILENAME}"

    def source(self) -> SurveySource:
        store = S3ObjectStore(self.s3.get_client(), self.bucket, prefix="")
        return DR10SurveySource(store, self.cache_dir, self.sweep_prefix, self.desi_vac_key)
