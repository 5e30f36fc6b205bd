"""Partition keys: format, HEALPix parsing, clear errors."""

from __future__ import annotations

import pytest

from stronglens_assets.partitions import (
    BRIGHT_ARC_VARIANTS,
    PartitionKeyError,
    bright_arc_variant_partitions,
    grid_variant_partitions,
    healpix_partition_key,
    healpix_partitions_def,
    parse_healpix_partition_key,
    static_partitions_def,
    validate_partition_key,
)


def test_healpix_key_round_trip() -> None:
    assert healpix_partition_key(16, 1105) == "hpx-nest16-1105"
    assert parse_healpix_partition_key("hpx-nest16-1105") == (16, 1105)
    assert parse_healpix_partition_key("hpx-nest16-1105", nside=16) == (16, 1105)


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("hpx nest16 1105", "malformed"),
        ("hpx-nest16-1105/../x", "malformed"),
        ("", "malformed"),
        ("cell-1105", "not a HEALPix key"),
        ("hpx-nest12-5", "not a power of two"),
        ("hpx-nest16-3072", "outside 0..3071"),
    ],
)
def test_bad_healpix_keys(key: str, message: str) -> None:
    with pytest.raises(PartitionKeyError, match=message):
        parse_healpix_partition_key(key)


def test_nside_mismatch() -> None:
    with pytest.raises(PartitionKeyError, match="partitions use nside 16"):
        parse_healpix_partition_key("hpx-nest8-10", nside=16)


def test_partition_sets() -> None:
    assert healpix_partitions_def(16, [1126, 1105, 1105]).get_partition_keys() == [
        "hpx-nest16-1105",
        "hpx-nest16-1126",
    ]
    with pytest.raises(PartitionKeyError, match="covers no HEALPix cell"):
        healpix_partitions_def(16, [])
    assert grid_variant_partitions.get_partition_keys() == ["no_poisson", "poisson"]
    assert bright_arc_variant_partitions.get_partition_keys() == list(BRIGHT_ARC_VARIANTS)
    with pytest.raises(PartitionKeyError, match="'model config'"):
        static_partitions_def(["resnet18_baseline_v1", "model config"])
    assert validate_partition_key("paperIV_bottlenecked_resnet") == "paperIV_bottlenecked_resnet"
