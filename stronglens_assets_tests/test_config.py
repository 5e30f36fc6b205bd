"""Footprint configuration: validation with file and field named."""

from __future__ import annotations

from pathlib import Path

import pytest

from stronglens_assets.config import ConfigError, StrictModel, load_footprint, load_profiled_config
from stronglens_assets.settings import PROJECT_ROOT


def _write(directory: Path, name: str, text: str) -> None:
    (directory / name).write_text(text)


def test_default_footprint_is_the_demo_sky() -> None:
    footprint = load_footprint(PROJECT_ROOT / "configs")
    assert footprint.partition_nside == 16
    assert len(footprint.bricks) == 24  # 16 densest-candidate bricks + 8 held-out Tier-A ones
    assert "0366m037" in footprint.bricks


def test_explicit_brick_list(tmp_path: Path) -> None:
    _write(tmp_path, "footprint.yaml", "partition_nside: 8\nbricks: [1126p222, 0001p000x]\n")
    with pytest.raises(ConfigError, match=r"footprint.yaml:\n  bricks: .*0001p000x"):
        load_footprint(tmp_path)
    _write(tmp_path, "footprint.yaml", "partition_nside: 8\nbricks: [1126p222]\n")
    assert load_footprint(tmp_path).bricks == ("1126p222",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("partition_nside: 12\nbricks: [1126p222]\n", "partition_nside: .*power of two"),
        ("partition_nside: 64\nbricks: [1126p222]\n", "partition_nside: .*12288"),
        ("partition_nsid: 16\nbricks: [1126p222]\n", "partition_nsid: Extra inputs"),
        ("partition_nside: 16\n", "exactly one of 'bricks' or 'bricks_file'"),
        ("partition_nside: 16\nbricks: [1126p222, 1126p222]\n", "listed twice"),
        ("- just\n- a list\n", "must hold a mapping"),
        ("partition_nside: [16\n", "not valid YAML"),
        ("partition_nside: 16\nbricks_file: sky.yaml\n", "sky.yaml does not exist"),
    ],
)
def test_malformed_footprint(tmp_path: Path, text: str, message: str) -> None:
    _write(tmp_path, "footprint.yaml", text)
    with pytest.raises(ConfigError, match=message):
        load_footprint(tmp_path)


def test_bricks_file_with_unknown_brick(tmp_path: Path) -> None:
    _write(tmp_path, "footprint.yaml", "bricks_file: sky.yaml\n")
    _write(tmp_path, "sky.yaml", "bricks: [1126p222, 9999p999]\n")
    with pytest.raises(ConfigError, match=r"sky.yaml: field 'bricks': .*9999p999"):
        load_footprint(tmp_path)


def test_footprint_file_from_settings(tmp_path: Path) -> None:
    from stronglens_assets.project import Project
    from stronglens_assets.settings import load_settings

    _write(tmp_path, "small.yaml", "partition_nside: 8\nbricks: [1126p222]\n")
    settings = load_settings({"STRONGLENS_FOOTPRINT": str(tmp_path / "small.yaml")})
    project = Project.from_settings(settings)
    assert project.footprint.bricks == ("1126p222",)
    assert project.healpix_partitions.get_partition_keys() == ["hpx-nest8-96"]


class _Sizes(StrictModel):
    epochs: int
    model: dict[str, int]


def test_profiled_config_merges_overrides(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "m.yaml",
        "epochs: 50\nmodel: {width: 64, depth: 18}\n"
        "profiles:\n  demo: {epochs: 3, model: {width: 8}}\n",
    )
    full = load_profiled_config(tmp_path / "m.yaml", _Sizes, "full")
    demo = load_profiled_config(tmp_path / "m.yaml", _Sizes, "demo")
    assert (full.epochs, full.model) == (50, {"width": 64, "depth": 18})
    assert (demo.epochs, demo.model) == (3, {"width": 8, "depth": 18})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("epochs: 5\nmodel: {}\nprofiles: {tiny: {epochs: 1}}\n", r"profiles: unknown profile"),
        ("epochs: 5\nmodel: {}\nprofiles: {demo: {epoch: 1}}\n", r"m.yaml:\n  epoch: Extra"),
    ],
)
def test_profiled_config_errors_name_file_and_field(
    tmp_path: Path, text: str, message: str
) -> None:
    _write(tmp_path, "m.yaml", text)
    with pytest.raises(ConfigError, match=message):
        load_profiled_config(tmp_path / "m.yaml", _Sizes, "demo")
