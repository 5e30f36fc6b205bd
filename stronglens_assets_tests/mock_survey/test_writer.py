"""Writer: byte-for-byte determinism, skipping complete bricks, atomic interrupted builds."""

from __future__ import annotations

import hashlib
import multiprocessing
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd
import pytest

from stronglens_assets.mock_survey import (
    BrickImages,
    DemoSkyConfig,
    brick_paths,
    build_brick,
    build_survey,
    is_brick_complete,
    load_demo_sky,
)
from stronglens_assets.mock_survey import writer as writer_module
from stronglens_assets_tests.harness import TEST_BRICKS, BuiltSky


def _digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _build(config_json: str, brick: str, lenscat: pd.DataFrame, root: str) -> None:
    build_brick(DemoSkyConfig.model_validate_json(config_json), brick, lenscat, root)


def test_same_seed_same_bytes_other_seed_other_bytes(built_sky: BuiltSky, tmp_path: Path) -> None:
    brick = TEST_BRICKS[0]
    reference = built_sky.root / "ref"
    paths = brick_paths(built_sky.root, brick)
    products = (paths.coadd_dir, paths.sweep, paths.truth_lenses, paths.truth_objects)
    for path in (*products, paths.truth_arcs):
        target = reference / path.relative_to(built_sky.root)
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if path.is_dir() else shutil.copy2)(path, target)
    other = built_sky.config.model_copy(update={"seed": built_sky.config.seed + 1})
    same_root, other_root = tmp_path / "same", tmp_path / "other"
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        job = pool.submit(
            _build, other.model_dump_json(), brick, built_sky.lenscat, str(other_root)
        )
        build_brick(built_sky.config, brick, built_sky.lenscat, same_root)
        job.result()
    ref, same, diff = _digests(reference), _digests(same_root), _digests(other_root)
    shutil.rmtree(reference)
    assert len(ref) == 14  # 9 FITS + marker + 3 Parquet + arc truth
    assert same == ref
    assert set(diff) == set(ref)
    changed = {k for k in ref if diff[k] != ref[k]}
    assert changed == set(ref)  # every product differs with another seed


def test_rerun_skips_complete_bricks(built_sky: BuiltSky) -> None:
    before = _digests(built_sky.root / "coadd")
    results = build_survey(
        built_sky.config, built_sky.root, built_sky.lenscat, bricks=TEST_BRICKS, processes=1
    )
    assert all(r.skipped for r in results)
    assert [r.files for r in results] == [r.files for r in built_sky.results]
    assert [r.n_lenses_mock for r in results] == [r.n_lenses_mock for r in built_sky.results]
    assert _digests(built_sky.root / "coadd") == before
    for brick in TEST_BRICKS:
        assert is_brick_complete(built_sky.root, brick, built_sky.config, built_sky.lenscat)
        other = built_sky.config.model_copy(update={"seed": 7})
        assert not is_brick_complete(built_sky.root, brick, other, built_sky.lenscat)
        assert not is_brick_complete(built_sky.root, brick, built_sky.config, None)


def _copy_brick(src_root: Path, dst_root: Path, brick: str) -> None:
    src = brick_paths(src_root, brick)
    for path in (src.coadd_dir, src.sweep, src.truth_lenses, src.truth_objects, src.truth_arcs):
        target = dst_root / path.relative_to(src_root)
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if path.is_dir() else shutil.copy2)(path, target)


class _Interrupted(RuntimeError):
    pass


@pytest.fixture
def fast_render(rendered_brick: BrickImages, monkeypatch: pytest.MonkeyPatch) -> DemoSkyConfig:
    """Serve TEST_BRICKS[1]'s render from the session cache; return a config that differs
    from the demo config (other checksum) without changing the drawn sky."""
    monkeypatch.setattr(writer_module, "render_brick", lambda config, sky: rendered_brick)
    config = DemoSkyConfig.model_validate_json(load_demo_sky().model_dump_json())
    return config.model_copy(update={"w1_depth_mag": config.w1_depth_mag - 0.5})


def test_interrupted_fits_writing_keeps_previous_brick(
    built_sky: BuiltSky, fast_render: DemoSkyConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rebuild (new config) of a complete brick dies after its first FITS file."""
    brick = TEST_BRICKS[1]
    root = tmp_path / "sky"
    _copy_brick(built_sky.root, root, brick)
    before = _digests(root)
    real_write = writer_module._write_fits
    calls: list[Path] = []

    def write_then_die(path: Path, *args, **kwargs) -> None:
        real_write(path, *args, **kwargs)
        calls.append(path)
        raise _Interrupted("killed after the first file")

    monkeypatch.setattr(writer_module, "_write_fits", write_then_die)
    new_config = fast_render
    with pytest.raises(_Interrupted):
        build_brick(new_config, brick, built_sky.lenscat, root)
    assert len(calls) == 1
    assert _digests(root) == before  # previous complete brick untouched, no leftovers
    assert is_brick_complete(root, brick, built_sky.config, built_sky.lenscat)
    assert not is_brick_complete(root, brick, new_config, built_sky.lenscat)


def test_interrupted_commit_leaves_no_complete_brick(
    built_sky: BuiltSky, fast_render: DemoSkyConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash between replacing the Parquet files and renaming the coadd directory."""
    brick = TEST_BRICKS[1]
    root = tmp_path / "sky"
    _copy_brick(built_sky.root, root, brick)
    paths = brick_paths(root, brick)
    real_replace = writer_module.os.replace

    def replace(src, dst) -> None:
        if Path(dst) == paths.coadd_dir:
            raise _Interrupted("killed before the directory rename")
        real_replace(src, dst)

    monkeypatch.setattr(writer_module.os, "replace", replace)
    new_config = fast_render
    with pytest.raises(_Interrupted):
        build_brick(new_config, brick, built_sky.lenscat, root)
    monkeypatch.setattr(writer_module.os, "replace", real_replace)
    assert not paths.coadd_dir.exists()
    assert not is_brick_complete(root, brick, built_sky.config, built_sky.lenscat)
    assert not is_brick_complete(root, brick, new_config, built_sky.lenscat)
    assert not any(p.name.startswith(".tmp-") for p in paths.coadd_dir.parent.iterdir())
    # the next run cleans up and rebuilds the brick completely
    result = build_brick(new_config, brick, built_sky.lenscat, root)
    assert not result.skipped
    assert is_brick_complete(root, brick, new_config, built_sky.lenscat)
    assert not any(p.name.startswith(".") for p in paths.coadd_dir.parent.iterdir())


def test_interrupted_fresh_brick_is_absent(
    built_sky: BuiltSky, fast_render: DemoSkyConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    brick = TEST_BRICKS[1]
    root = tmp_path / "sky"
    monkeypatch.setattr(writer_module, "_write_fits", _raise)
    with pytest.raises(_Interrupted):
        build_brick(fast_render, brick, built_sky.lenscat, root)
    paths = brick_paths(root, brick)
    assert not paths.coadd_dir.exists() and not paths.sweep.exists()
    assert not paths.truth_lenses.exists() and not paths.truth_objects.exists()
    assert not paths.truth_arcs.exists()
    assert not is_brick_complete(root, brick, fast_render, built_sky.lenscat)
    assert [p for p in root.rglob("*") if p.is_file()] == []


def _raise(*args, **kwargs) -> None:
    raise _Interrupted("disk full")
