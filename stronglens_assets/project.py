"""What every asset module needs at definition time: settings, footprint, partitions."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import dagster as dg
import numpy as np
import numpy.typing as npt

from stronglens_assets.config import Footprint, load_footprint
from stronglens_assets.partitions import (
    PartitionKeyError,
    healpix_partition_key,
    healpix_partitions_def,
    parse_healpix_partition_key,
)
from stronglens_assets.science.catalogs.bricks import brick_name, bricks_table
from stronglens_assets.science.catalogs.healpix import healpix_pixel
from stronglens_assets.settings import Settings


@dataclass(frozen=True)
class Project:
    """Settings plus the footprint-derived partition set, built once per code location."""

    settings: Settings
    footprint: Footprint

    @classmethod
    def from_settings(cls, settings: Settings) -> Project:
        footprint = load_footprint(settings.config_dir, settings.footprint_file)
        return cls(settings=settings, footprint=footprint)

    @cached_property
    def brick_pixels(self) -> dict[str, int]:
        """Partition cell of each footprint brick: the NEST pixel of the brick centre.

        A brick belongs to exactly one partition, so each brick is read once per asset even
        where it straddles a cell border; an object belongs to the partition of its brick.
        """
        names = list(self.footprint.bricks)
        bricks = bricks_table(names)
        pixels = healpix_pixel(bricks["ra"], bricks["dec"], self.footprint.partition_nside)
        return {name: int(p) for name, p in zip(bricks["brickname"], pixels, strict=True)}

    @cached_property
    def healpix_pixels(self) -> list[int]:
        """NEST pixels (at ``footprint.partition_nside``) holding a footprint brick centre."""
        return sorted(set(self.brick_pixels.values()))

    def bricks_in_partition(self, partition_key: str) -> list[str]:
        """Footprint bricks of one HEALPix partition, sorted by name."""
        _, pixel = parse_healpix_partition_key(partition_key, self.footprint.partition_nside)
        bricks = sorted(name for name, p in self.brick_pixels.items() if p == pixel)
        if not bricks:
            raise PartitionKeyError(
                f"partition key {partition_key!r} is not one of the "
                f"{len(self.healpix_pixels)} HEALPix partitions of the footprint"
            )
        return bricks

    @cached_property
    def healpix_partitions(self) -> dg.StaticPartitionsDefinition:
        """Sky partitions: one key per HEALPix cell of the footprint."""
        return healpix_partitions_def(self.footprint.partition_nside, self.healpix_pixels)

    def in_footprint(self, ra: npt.ArrayLike, dec: npt.ArrayLike) -> np.ndarray:
        """Whether each (ra, dec) in deg lies in a footprint brick."""
        names = np.atleast_1d(brick_name(np.asarray(ra, float), np.asarray(dec, float)))
        return np.isin(names, list(self.footprint.bricks))

    @property
    def uses_mock_survey(self) -> bool:
        """The embedded mock survey is the data source in the ``local`` environment."""
        return self.settings.env == "local"

    @property
    def survey_upstream(self) -> dict[str, list[dg.AssetKey]]:
        """Extra upstream assets of the survey-reading assets: the mock survey's locally, the
        observable external inputs of :mod:`stronglens_assets.automation` on S3."""
        if not self.uses_mock_survey:
            upstream = {"desi_dr1_vac": [dg.AssetKey("desi_vac_file")]}
            if not self.settings.coadd_url:
                upstream["cutouts"] = [dg.AssetKey("dr10_coadd_cache")]
            return upstream
        return {
            "dr10_sweep": [dg.AssetKey("mock_survey_bricks")],
            "desi_dr1_vac": [dg.AssetKey("mock_desi_vac")],
            "cutouts": [dg.AssetKey("mock_survey_bricks")],
        }

    def healpix_key(self, pixel: int) -> str:
        return healpix_partition_key(self.footprint.partition_nside, pixel)
