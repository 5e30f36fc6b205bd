"""Data path, augmentations, model configs and deterministic training."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import torch

from stronglens_assets.config import ConfigError
from stronglens_assets.resources.object_store import LocalObjectStore
from stronglens_assets.science.imaging.preprocess import CropRobust, RawRobust, preprocess
from stronglens_assets.science.learning.datasets import (
    BatchLoader,
    ManifestError,
    augment,
    build_image_cache,
    dihedral,
    load_cutouts,
)
from stronglens_assets.science.learning.model_config import (
    ModelConfig,
    load_model_config,
    model_config_names,
)
from stronglens_assets.science.learning.models import state_dict_bytes
from stronglens_assets.science.learning.training import sample_weights, train_model
from stronglens_assets.settings import PROJECT_ROOT
from stronglens_assets.testing.cutouts import synthetic_manifest

CROP32 = CropRobust(crop=32)


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: reproducible bytes, and no oversubscription on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def store(tmp_path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "storage")


def test_augmentation_is_a_dihedral_transform_and_keeps_labels():
    rng = np.random.default_rng(0)
    images = rng.normal(size=(64, 3, 8, 8)).astype(np.float32)
    labels = np.arange(64) % 2
    loader = BatchLoader(
        images,
        labels,
        np.ones(64),
        np.arange(64),
        16,
        shuffle=True,
        augmentations=("hflip", "vflip", "rot90"),
        seed=3,
    )
    seen_ops = set()
    for batch, batch_labels, _ in loader.epoch(0):
        for image, label in zip(batch, batch_labels, strict=True):
            # find the source image (labels travel with it)
            source = next(
                i
                for i in range(64)
                if np.allclose(np.sort(images[i].ravel()), np.sort(image.ravel()))
            )
            assert labels[source] == label
            ops = [
                (k, f)
                for k in range(4)
                for f in (False, True)
                if np.array_equal(dihedral(images[source], k, f), image)
            ]
            assert ops, "not a rotation/flip of its source"
            seen_ops.add(ops[0])
    assert len(seen_ops) == 8  # every element of D4 occurs


def test_vflip_only_and_unsafe_ops():
    images = np.arange(2 * 1 * 4 * 4, dtype=np.float32).reshape(2, 1, 4, 4)
    out = augment(images, np.random.default_rng(1), ("vflip",))
    for image, result in zip(images, out, strict=True):
        assert np.array_equal(result, image) or np.array_equal(result, image[:, ::-1, :])
    with pytest.raises(ValueError, match="unsafe"):
        augment(images, np.random.default_rng(1), ("colour_jitter",))


def test_load_cutouts_reads_manifest_rows(store):
    manifest = synthetic_manifest(store, n=40, shard_size=16)
    shuffled = manifest.sample(frac=1.0, random_state=2).reset_index(drop=True)
    raw = load_cutouts(store.read_bytes, shuffled)
    direct = np.stack(
        [
            np.load(store.local_path(k))["cutout"][r]
            for k, r in zip(shuffled["cutout_key"], shuffled["cutout_row"], strict=True)
        ]
    )
    np.testing.assert_array_equal(raw, direct)


def test_missing_shard_and_bad_row_are_named(store):
    manifest = synthetic_manifest(store, n=40, shard_size=16)
    broken = manifest.copy()
    broken.loc[5, "cutout_key"] = "cutouts/test/v1/shard-09999.npz"
    with pytest.raises(ManifestError, match=r"obj0005.*shard-09999\.npz.*does not exist"):
        load_cutouts(store.read_bytes, broken)
    broken = manifest.copy()
    broken.loc[3, "cutout_row"] = 77
    with pytest.raises(ManifestError, match=r"obj0003.*cutout_row 77"):
        load_cutouts(store.read_bytes, broken)
    with pytest.raises(ManifestError, match="cutout_key"):
        load_cutouts(store.read_bytes, manifest.drop(columns="cutout_key"))


def test_image_cache_is_preprocess_of_the_rows_and_is_reused(store, tmp_path):
    manifest = synthetic_manifest(store, n=40, shard_size=16)
    cache = build_image_cache(store.read_bytes, manifest, tmp_path / "cache", CROP32)
    expected = preprocess(load_cutouts(store.read_bytes, manifest), CROP32)
    np.testing.assert_array_equal(np.asarray(cache), expected)
    (path,) = (tmp_path / "cache").glob("images-*.npy")
    stamp = path.stat().st_mtime_ns
    build_image_cache(store.read_bytes, manifest, tmp_path / "cache", CROP32)
    assert path.stat().st_mtime_ns == stamp
    # other settings (a clip override, the paper's raw_robust) are another cache
    clip20 = build_image_cache(
        store.read_bytes, manifest, tmp_path / "cache", CROP32.model_copy(update={"clip": 20.0})
    )
    raw = build_image_cache(store.read_bytes, manifest, tmp_path / "cache", RawRobust())
    assert len(list((tmp_path / "cache").glob("images-*.npy"))) == 3
    assert raw.shape == (40, 3, 101, 101) and float(np.abs(clip20).max()) <= 20.0


def test_failed_cache_build_leaves_no_file(store, tmp_path):
    manifest = synthetic_manifest(store, n=40, shard_size=16)
    manifest.loc[39, "cutout_key"] = "cutouts/missing.npz"
    with pytest.raises(ManifestError):
        build_image_cache(store.read_bytes, manifest, tmp_path / "cache", CROP32)
    assert list((tmp_path / "cache").iterdir()) == []


def _tiny(seed: int = 7, **update) -> ModelConfig:
    values = dict(
        name="tiny",
        architecture="bottlenecked_resnet",
        width=4,
        embedding_dim=4,
        preprocessing=CROP32,
        epochs=3,
        early_stopping_patience=3,
        batch_size=16,
        learning_rate=3e-3,
        seed=seed,
    )
    values.update(update)
    return ModelConfig(**values)


def _train(store, tmp_path, config):
    manifest = synthetic_manifest(store, n=80, shard_size=32)
    images = build_image_cache(store.read_bytes, manifest, tmp_path / "cache", config.preprocessing)
    labels = manifest["label"].to_numpy()
    weights = sample_weights(manifest["tier"].to_numpy(), config.tier_weights)
    split = manifest["split"].to_numpy()
    return train_model(
        config,
        images,
        labels,
        weights,
        np.flatnonzero(split == "train"),
        np.flatnonzero(split == "val"),
        torch.device("cpu"),
    )


def test_same_seed_same_checkpoint_bytes(store, tmp_path):
    assert torch.get_num_threads() == 1
    first = _train(store, tmp_path, _tiny(seed=7))
    second = _train(store, tmp_path, _tiny(seed=7))
    other = _train(store, tmp_path, _tiny(seed=8))
    assert state_dict_bytes(first.best_state) == state_dict_bytes(second.best_state)
    assert state_dict_bytes(first.last_state) == state_dict_bytes(second.last_state)
    assert state_dict_bytes(first.last_state) != state_dict_bytes(other.last_state)
    assert [h["loss"] for h in first.history] == [h["loss"] for h in second.history]


def test_training_learns_the_ring_and_keeps_history(store, tmp_path):
    result = _train(
        store,
        tmp_path,
        _tiny(architecture="resnet18", embedding_dim=None, epochs=6, early_stopping_patience=6),
    )
    assert result.best_val_auc > 0.9
    assert [h["epoch"] for h in result.history] == list(range(1, result.epochs_run + 1))
    assert {"loss", "val_auc", "lr", "seconds", "train_images_per_s"} <= set(result.history[0])
    lrs = [h["lr"] for h in result.history]
    assert lrs[0] == pytest.approx(3e-3) and lrs == sorted(lrs, reverse=True)  # cosine decay


def test_early_stopping_after_patience(store, tmp_path):
    # learning rate ~0: the AUC cannot improve after the first epoch
    result = _train(
        store, tmp_path, _tiny(epochs=10, early_stopping_patience=2, learning_rate=1e-12)
    )
    assert result.stopped_early and result.epochs_run <= 1 + 2 + 1


def test_tier_weights_must_cover_tiers():
    with pytest.raises(ValueError, match=r"'N2'"):
        sample_weights(np.array(["A", "N2"]), {"A": 1.0})
    assert sample_weights(np.array(["A", "B"]), {"A": 1.0, "B": 0.5}).tolist() == [1.0, 0.5]


def test_shipped_model_configs_load_in_both_profiles():
    directory = PROJECT_ROOT / "configs"
    assert model_config_names(directory) == [
        "paperIV_bottlenecked_resnet",
        "resnet18_baseline_v1",
    ]
    for name in model_config_names(directory):
        full = load_model_config(directory, name, "full")
        demo = load_model_config(directory, name, "demo")
        assert (full.epochs, full.early_stopping_patience, full.batch_size) == (50, 10, 256)
        assert full.preprocessing == demo.preprocessing and full.mixed_precision
        assert full.augmentations == ("hflip", "vflip", "rot90")
        assert demo.architecture == full.architecture and demo.width < full.width
    # PROTOCOL.md: the paper's D06 model sees raw_robust full stamps; the seeds' baseline crops
    paper = load_model_config(directory, "paperIV_bottlenecked_resnet", "demo")
    assert paper.preprocessing == RawRobust(annulus_inner_px=20, annulus_outer_px=32, clip=10)
    assert paper.input_px == 101
    baseline = load_model_config(directory, "resnet18_baseline_v1", "demo")
    assert baseline.preprocessing == CropRobust(crop=64, stat_radius_px=20, clip=50)


def test_unknown_preprocessing_method_lists_the_known_ones(tmp_path):
    os.makedirs(tmp_path / "models")
    path = tmp_path / "models" / "a.yaml"
    path.write_text("name: a\narchitecture: resnet18\npreprocessing: {method: asinh}\n")
    with pytest.raises(ConfigError) as info:
        load_model_config(tmp_path, "a")
    message = str(info.value)
    assert str(path) in message and "preprocessing" in message
    assert "asinh" in message and "raw_robust" in message and "crop_robust" in message


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        ("learning_rte: 0.001\n", "learning_rte"),
        ("learning_rate: -0.001\n", "learning_rate"),
        ("augmentations: [hflip, colour_jitter]\n", "augmentations"),
        ("epochs: 80\n", "epochs"),
        ("pretrained: ftp://host/best.pt\n", "pretrained"),
        ("preprocessing: {method: zscale}\n", "preprocessing"),
        ("preprocessing: {method: raw_robust, clip: 10, crop: 64}\n", "preprocessing"),
        (
            "preprocessing: {method: raw_robust, annulus_inner_px: 32, annulus_outer_px: 20}\n",
            "preprocessing",
        ),
    ],
)
def test_bad_model_config_names_file_and_field(tmp_path, edit, field):
    shutil.copytree(PROJECT_ROOT / "configs" / "models", tmp_path / "models")
    path = tmp_path / "models" / "resnet18_baseline_v1.yaml"
    path.write_text(path.read_text().split("profiles:")[0] + edit)
    with pytest.raises(ConfigError) as info:
        load_model_config(tmp_path, "resnet18_baseline_v1", "full")
    assert str(path) in str(info.value) and field in str(info.value)


def test_config_name_must_match_file(tmp_path):
    os.makedirs(tmp_path / "models")
    (tmp_path / "models" / "a.yaml").write_text("name: b\narchitecture: resnet18\n")
    with pytest.raises(ConfigError, match="name"):
        load_model_config(tmp_path, "a")
