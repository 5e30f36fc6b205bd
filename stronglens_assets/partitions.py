"""Partition definitions: HEALPix cells (NEST), model configs, experiment variants.

The D06 variant names are the experiment's (:mod:`stronglens_assets.science.lensing.priors`);
this module only turns them into Dagster partitions.

Bricks are never a partition dimension (DR10 has ~660k). Sky partitions are HEALPix NEST
cells at ``partition_nside`` (at most 32, i.e. 12,288 keys), restricted to the cells that
cover the footprint in use. Keys use only ``[A-Za-z0-9_-]``; a HEALPix key reads
``hpx-nest<nside>-<pixel>``, e.g. ``hpx-nest16-1105``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import dagster as dg

from stronglens_assets.errors import StronglensError
from stronglens_assets.science.lensing.priors import BRIGHT_ARC_VARIANTS, GRID_VARIANTS

PARTITION_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_-]+$")
HEALPIX_KEY_PATTERN = re.compile(r"^hpx-nest(\d+)-(\d+)$")


class PartitionKeyError(StronglensError, ValueError):
    """A partition key is malformed or not part of the partition set."""


def validate_partition_key(key: str) -> str:
    """Return ``key`` if it uses only ``[A-Za-z0-9_-]``; raise :class:`PartitionKeyError`."""
    if not isinstance(key, str) or not PARTITION_KEY_PATTERN.match(key):
        raise PartitionKeyError(
            f"partition key {key!r} is malformed: only letters, digits, '_' and '-' are allowed"
        )
    return key


def healpix_partition_key(nside: int, pixel: int) -> str:
    """Partition key of NEST ``pixel`` at ``nside``."""
    if pixel < 0 or pixel >= 12 * nside * nside:
        raise PartitionKeyError(f"HEALPix pixel {pixel} is outside 0..{12 * nside * nside - 1}")
    return f"hpx-nest{nside}-{pixel}"


def parse_healpix_partition_key(key: str, nside: int | None = None) -> tuple[int, int]:
    """``(nside, pixel)`` of a HEALPix partition key.

    Raises:
        PartitionKeyError: bad characters, not of the form ``hpx-nest<nside>-<pixel>``, nside
            not a power of two, pixel out of range, or nside different from ``nside``.
    """
    validate_partition_key(key)
    match = HEALPIX_KEY_PATTERN.match(key)
    if match is None:
        raise PartitionKeyError(
            f"partition key {key!r} is not a HEALPix key of the form 'hpx-nest<nside>-<pixel>'"
        )
    key_nside, pixel = int(match.group(1)), int(match.group(2))
    if key_nside < 1 or key_nside & (key_nside - 1):
        raise PartitionKeyError(f"partition key {key!r}: nside {key_nside} is not a power of two")
    if nside is not None and key_nside != nside:
        raise PartitionKeyError(
            f"partition key {key!r} has nside {key_nside}, but partitions use nside {nside}"
        )
    if pixel >= 12 * key_nside * key_nside:
        raise PartitionKeyError(
            f"partition key {key!r}: pixel {pixel} is outside 0..{12 * key_nside**2 - 1}"
        )
    return key_nside, pixel


def healpix_partitions_def(nside: int, pixels: Iterable[int]) -> dg.StaticPartitionsDefinition:
    """Static partitions, one per NEST pixel of the footprint, in pixel order."""
    keys = [healpix_partition_key(nside, int(p)) for p in sorted(set(int(p) for p in pixels))]
    if not keys:
        raise PartitionKeyError("the footprint covers no HEALPix cell: configure some bricks")
    return dg.StaticPartitionsDefinition(keys)


def static_partitions_def(keys: Iterable[str]) -> dg.StaticPartitionsDefinition:
    """Static partitions after checking every key against ``[A-Za-z0-9_-]``."""
    return dg.StaticPartitionsDefinition([validate_partition_key(k) for k in keys])


grid_variant_partitions = static_partitions_def(GRID_VARIANTS)
bright_arc_variant_partitions = static_partitions_def(BRIGHT_ARC_VARIANTS)
