"""D06 assets on a small synthetic storage: real Dagster, real shards, a real (untrained) model.

The storage holds what the upstream assets would have written: cutout shards, the
``training_manifest`` value (Parquet) and ``checkpoints/<model>/best.pt``. The D06 assets
are materialized with ``dg.materialize`` (the upstream ones are source assets read through
the IO manager).
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import torch

from stronglens_assets import storage_keys as SK
from stronglens_assets.assets import d06
from stronglens_assets.assets.shared import preprocessing_record
from stronglens_assets.project import Project
from stronglens_assets.resources import LocalStorageResource
from stronglens_assets.resources.compute import ComputeResource
from stronglens_assets.science.core.npz import encode_npz
from stronglens_assets.science.experiments import inject_cutouts, load_d06_config
from stronglens_assets.science.learning.model_config import load_model_config
from stronglens_assets.science.learning.models import build_model, state_dict_bytes
from stronglens_assets.science.learning.scoring import score_cutouts
from stronglens_assets.science.lensing.priors import (
    BRIGHT_ARC_VARIANTS,
    load_priors,
    sample_parameters,
)
from stronglens_assets.settings import PROJECT_ROOT, load_settings
from stronglens_assets_tests.harness import AssetHarness, local_resources

SIZE = 101
NEG_KEY = "cutouts/negatives/hpx-test/v1/shard-00000.npz"
POS_KEY = "cutouts/positives/hpx-test/v1/shard-00000.npz"


def _galaxies(rng: np.random.Generator, n: int, ring: bool) -> dict[str, np.ndarray]:
    """Deflector-like blobs (plus a ring for lenses), noise 0.006 nmgy/px, psfsize 1.3"."""
    y, x = np.mgrid[:SIZE, :SIZE] - (SIZE - 1) / 2
    r2 = x**2 + y**2
    cutout = rng.normal(0, 0.006, size=(n, 3, SIZE, SIZE))
    amp = rng.uniform(0.2, 1.0, size=(n, 1, 1, 1))
    cutout += amp * np.exp(-r2 / (2 * 3.0**2))[None, None]
    if ring:
        cutout += 0.05 * np.exp(-((np.sqrt(r2) - 6.0) ** 2) / 2.0)[None, None]
    return {
        "cutout": cutout.astype(np.float32),
        "invvar": np.full((n, 3, SIZE, SIZE), 1 / 0.006**2, np.float32),
        "psfsize": np.full((n, 3), 1.3, np.float32),
    }


def _manifest_rows(rng, n, label, tiers, key, splits) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "object_id": [f"{'lens' if label else 'neg'}-{i:03d}" for i in range(n)],
            "ra": rng.uniform(30, 31, n),
            "dec": rng.uniform(-4, -3, n),
            "label": label,
            "tier": tiers,
            "source": "mock",
            "split": splits,
            "cutout_key": key,
            "cutout_row": np.arange(n),
            "mag_r": rng.uniform(18.5, 21.0, n),
            "shape_r": rng.uniform(0.4, 2.5, n),
            "psfsize_g": 1.3,
            "psfsize_r": 1.3,
            "psfsize_z": 1.3,
        }
    )


@dataclass
class D06Storage:
    root: Path
    storage: LocalStorageResource
    project: Project
    model_name: str
    instance: dg.DagsterInstance

    def resources(self) -> dict:
        return local_resources(self.storage, compute=ComputeResource(device="cpu", num_threads=1))

    def assets(self) -> list:
        model_partitions = dg.StaticPartitionsDefinition([self.model_name])
        return [
            *d06.build_assets(self.project),
            dg.SourceAsset("training_manifest"),
            dg.SourceAsset("model_checkpoint", partitions_def=model_partitions),
        ]

    def run(self, selection: str, partition: str | None = None) -> dg.ExecuteInProcessResult:
        return AssetHarness(self.assets(), self.resources(), self.instance).run(
            selection, partition
        )

    def read(self, key: str) -> bytes:
        return (self.root / key).read_bytes()


def _build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config_dir: Path) -> D06Storage:
    monkeypatch.setenv("STRONGLENS_CONFIG_DIR", str(config_dir))
    monkeypatch.setenv("STRONGLENS_PROFILE", "demo")
    settings = load_settings()
    root = tmp_path / "storage"
    storage = LocalStorageResource(root=str(root))
    rng = np.random.default_rng(11)
    n_neg, n_pos = 40, 16
    storage.write_bytes(NEG_KEY, encode_npz(_galaxies(rng, n_neg, ring=False)))
    storage.write_bytes(POS_KEY, encode_npz(_galaxies(rng, n_pos, ring=True)))
    negatives = _manifest_rows(
        rng, n_neg, 0, "N1", NEG_KEY, np.where(np.arange(n_neg) < 10, "train", "val")
    )
    positives = _manifest_rows(
        rng, n_pos, 1, np.where(np.arange(n_pos) % 2 == 0, "A", "B"), POS_KEY, "val"
    )
    storage.write_value("training_manifest", pd.concat([negatives, positives], ignore_index=True))
    name = load_d06_config(config_dir, "demo").model_config_name
    torch.manual_seed(0)
    model_config = load_model_config(config_dir, name, "demo")
    model = build_model(model_config)
    checkpoint = state_dict_bytes(model)
    storage.write_bytes(f"checkpoints/{name}/best.pt", checkpoint)
    storage.write_bytes(  # the preprocessing it was "trained" with, as model_checkpoint writes
        f"checkpoints/{name}/preprocessing.json",
        preprocessing_record(
            name, hashlib.sha256(checkpoint).hexdigest(), model_config.preprocessing
        ),
    )
    # the instance knows model_checkpoint's latest sha256, as after a real training run
    instance = dg.DagsterInstance.ephemeral()
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            "model_checkpoint",
            partition=name,
            metadata={"checkpoint_sha256": hashlib.sha256(checkpoint).hexdigest()},
        )
    )
    return D06Storage(root, storage, Project.from_settings(settings), name, instance)


@pytest.fixture
def build_d06(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator:
    """``_build(tmp_path, monkeypatch, config_dir)``, its instance disposed after the test."""
    built: list[D06Storage] = []

    def build(config_dir: Path) -> D06Storage:
        built.append(_build(tmp_path, monkeypatch, config_dir))
        return built[-1]

    yield build
    for storage in built:
        storage.instance.dispose()


@pytest.fixture
def d06_storage(build_d06) -> D06Storage:
    return build_d06(PROJECT_ROOT / "configs")


def _copied_configs(tmp_path: Path) -> Path:
    target = tmp_path / "configs"
    shutil.copytree(PROJECT_ROOT / "configs", target)
    return target


def _value(result: dg.ExecuteInProcessResult, key: str):
    return result.output_for_node(key)


def test_grid_is_reproducible_and_matches_its_cell_files(d06_storage: D06Storage) -> None:
    s = d06_storage
    assert s.run("injection_priors").success
    first = s.run("grid_completeness", "no_poisson")
    assert first.success
    value = _value(first, "grid_completeness")
    keys = SK.grid_keys("no_poisson")
    results_bytes = s.read(keys["results_key"])
    table_bytes = s.read(keys["selection_function_key"])
    checks = {c.check_name: c.passed for c in first.get_asset_check_evaluations()}
    assert checks == {"counts_match_cell_files": True, "model_frozen": True}

    again = s.run("grid_completeness", "no_poisson")
    assert again.success
    assert s.read(keys["results_key"]) == results_bytes
    assert s.read(keys["selection_function_key"]) == table_bytes

    # provenance
    sha = s.storage.read_value("injection_priors.json")["sha256"]
    results = s.storage.read_value(keys["results_key"])
    assert value["priors_sha256"] == results["priors_sha256"] == sha
    checkpoint = s.read(f"checkpoints/{s.model_name}/best.pt")
    assert results["checkpoint_sha256"] == hashlib.sha256(checkpoint).hexdigest()

    # completeness counts are the stored scores of the cell files
    table = pd.read_parquet(io.BytesIO(table_bytes))
    assert list(table.columns[1:]) == [
        "theta_e",
        "source_mag",
        "beta_frac",
        "n_sersic",
        "r_eff",
        "axis_ratio",
        "n",
        "k",
        "completeness",
        "ci_low",
        "ci_high",
    ]
    all_scores = []
    for row, cell in zip(table.itertuples(), results["cells"], strict=True):
        with np.load(io.BytesIO(s.read(SK.cell_key("no_poisson", row.cell)))) as f:
            scores = f["scores"]
            assert f["images"].shape == (row.n, 3, SIZE, SIZE)
            assert np.all(f["theta_e"] == row.theta_e)
            assert f["priors_sha256"].item() == sha
            assert f["checkpoint_sha256"].item() == results["checkpoint_sha256"]
        assert row.k == np.sum(scores > 0.3) and row.n == len(scores)
        assert cell["by_threshold"]["0.5"]["k"] == np.sum(scores > 0.5)
        all_scores.append(scores)
    everything = np.concatenate(all_scores)
    assert results["k"] == np.sum(everything > 0.3) and results["n"] == len(everything)

    # the poisson partition: same parameters and hosts, different pixels
    assert s.run("grid_completeness", "poisson").success
    with (
        np.load(io.BytesIO(s.read(SK.cell_key("poisson", 0)))) as noisy,
        np.load(io.BytesIO(s.read(SK.cell_key("no_poisson", 0)))) as clean,
    ):
        np.testing.assert_array_equal(noisy["host_index"], clean["host_index"])
        np.testing.assert_array_equal(noisy["source_x"], clean["source_x"])
        assert not np.array_equal(noisy["images"], clean["images"])


def test_every_other_d06_asset_materializes(d06_storage: D06Storage) -> None:
    s = d06_storage
    assert s.run("injection_priors").success
    for variant in ("baseline", "gain_1e12", "unrestricted"):
        result = s.run("bright_arc", variant)
        assert result.success, variant
        keys = SK.ba_keys(variant)
        results = s.storage.read_value(keys["results_key"])
        assert (
            results["n"] == load_d06_config(PROJECT_ROOT / "configs", "demo").bright_arc.injections
        )
        assert set(results["rates"]) == {"0.3", "0.5", "0.7", "0.9"}
        with np.load(io.BytesIO(s.read(keys["cutouts_key"]))) as f:
            assert f["images"].shape[1:] == (3, SIZE, SIZE) and len(f["scores"]) == results["n"]
    # gain 1e12 is the noiseless control: same arcs and hosts as baseline, same scores
    base = np.load(io.BytesIO(s.read(SK.ba_keys("baseline")["cutouts_key"])))["scores"]
    control = np.load(io.BytesIO(s.read(SK.ba_keys("gain_1e12")["cutouts_key"])))["scores"]
    np.testing.assert_allclose(control, base, atol=1e-4)

    assert s.run("linear_probe").success
    probe = s.storage.read_value("results/D06/linear_probe/linear_probe_results.json")
    for key in ("tier_a_vs_injections", "tier_a_vs_tier_b"):
        assert 0.0 <= probe[key]["auc_mean"] <= 1.0 and probe[key]["n_folds"] >= 2
    assert set(probe["by_host_matching"]) == {"random", "tier_a_matched"}
    assert probe["frechet"]["tier_a_vs_tier_b"]["distance"] >= 0
    with np.load(io.BytesIO(s.read("results/D06/linear_probe/embeddings.npz"))) as f:
        assert f["tier_a"].shape[0] == 8 and f["tier_b"].shape[0] == 8
        assert f["injections"].shape[1] == f["tier_a"].shape[1]

    assert s.run("tier_a_scoring").success
    scores = pd.read_parquet(io.BytesIO(s.read("results/D06/tier_a_scoring/tier_a_scores.parquet")))
    assert len(scores) == 8 and set(scores["tier"]) == {"A"}
    assert {"object_id", "score", "cutout_key", "cutout_row"} <= set(scores.columns)

    assert s.run("poisson_diagnostics").success
    diagnostics = s.storage.read_value("results/D06/poisson_diagnostics/poisson_diagnostics.json")
    for band in ("g", "r", "z"):
        entry = diagnostics["bands"][band]
        if entry["n_pixels"] > 500:
            assert entry["chi2_per_pixel"] == pytest.approx(1.0, abs=0.2)
    assert s.read("results/D06/poisson_diagnostics/poisson_diagnostics.png")[:4] == b"\x89PNG"


def test_zero_arc_scores_exactly_as_the_host(d06_storage: D06Storage) -> None:
    priors = load_priors(PROJECT_ROOT / "configs", "demo")
    rng = np.random.default_rng(3)
    hosts = _galaxies(rng, 6, ring=False)
    params = sample_parameters(priors, 6, rng)
    params = type(params)(**{**params.arrays(), "flux": np.zeros_like(params.flux)})
    injected = inject_cutouts(
        params, hosts["cutout"], hosts["psfsize"], poisson_gain=None, clip=None, rng=rng
    )
    np.testing.assert_array_equal(injected, hosts["cutout"])
    model = build_model(load_model_config(PROJECT_ROOT / "configs", d06_storage.model_name, "demo"))
    np.testing.assert_array_equal(
        score_cutouts(model, injected, batch_size=4),
        score_cutouts(model, hosts["cutout"], batch_size=4),  # same batches: same conv path
    )


def test_bad_priors_fail_clearly_and_overwrite_nothing(tmp_path: Path, build_d06) -> None:
    config_dir = _copied_configs(tmp_path)
    s = build_d06(config_dir)
    assert s.run("injection_priors").success
    before = s.read("injection_priors.json")
    path = config_dir / "injection_priors.yaml"
    text = path.read_text()
    path.write_text(
        text.replace(
            "theta_e: {dist: uniform, low: 0.5, high: 3.0}",
            "theta_e: {dist: uniform, low: 3.0, high: 0.5}",
        )
    )
    result = s.run("injection_priors")
    assert not result.success
    message = str(result.all_events)
    assert "priors.provisional_v1.lens.theta_e" in message and "inverted" in message
    path.write_text(text.replace("theta_e: [0.75, 1.5, 2.5]", "theta_e: [-0.75, 1.5, 2.5]"))
    result = s.run("injection_priors")
    assert not result.success and "theta_e" in str(result.all_events)
    assert s.read("injection_priors.json") == before


def test_nan_host_and_missing_checkpoint_fail_clearly_and_overwrite_nothing(
    d06_storage: D06Storage,
) -> None:
    s = d06_storage
    assert s.run("injection_priors").success
    assert s.run("grid_completeness", "no_poisson").success
    results_key = SK.grid_keys("no_poisson")["results_key"]
    before = {p: p.read_bytes() for p in (s.root / "results").rglob("*") if p.is_file()}

    shard = dict(np.load(io.BytesIO(s.read(NEG_KEY))))
    good = encode_npz(shard)
    shard["cutout"][:, 1, 50, 50] = np.nan
    s.storage.write_bytes(NEG_KEY, encode_npz(shard))
    result = s.run("grid_completeness", "no_poisson")
    assert not result.success
    message = str(result.all_events)
    assert "NaN" in message and NEG_KEY in message
    after = {p: p.read_bytes() for p in (s.root / "results").rglob("*") if p.is_file()}
    assert after == before

    s.storage.write_bytes(NEG_KEY, good)
    (s.root / "checkpoints" / s.model_name / "best.pt").unlink()
    result = s.run("grid_completeness", "no_poisson")
    assert not result.success
    message = str(result.all_events)
    assert s.model_name in message and "no checkpoint" in message
    assert s.read(results_key) == before[s.root / results_key]


def test_d06_config_naming_an_unknown_model_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stronglens_assets.config import ConfigError

    config_dir = _copied_configs(tmp_path)
    path = config_dir / "d06.yaml"
    path.write_text(
        path.read_text().replace(
            "model_config: paperIV_bottlenecked_resnet", "model_config: no_such_model"
        )
    )
    monkeypatch.setenv("STRONGLENS_CONFIG_DIR", str(config_dir))
    project = Project.from_settings(load_settings())
    with pytest.raises(ConfigError, match=r"model_config.*no_such_model"):
        d06.build_assets(project)


def test_assets_are_gpu_tagged_and_all_variants_exist(d06_storage: D06Storage) -> None:
    assets = {a.key.to_user_string(): a for a in d06.build_assets(d06_storage.project)}
    assert set(assets) == {
        "injection_priors",
        "grid_completeness",
        "bright_arc",
        "linear_probe",
        "tier_a_scoring",
        "poisson_diagnostics",
    }
    assert set(assets["bright_arc"].partitions_def.get_partition_keys()) == set(BRIGHT_ARC_VARIANTS)
    assert assets["grid_completeness"].partitions_def.get_partition_keys() == [
        "no_poisson",
        "poisson",
    ]
    for name, asset in assets.items():
        if name == "injection_priors":
            continue
        assert asset.op.pool == "gpu", name
        tags = asset.op.tags["dagster-k8s/config"]
        tags = json.loads(tags) if isinstance(tags, str) else tags
        assert tags["container_config"]["resources"]["limits"]["nvidia.com/gpu"] == "1", name


def test_frozen_check_fails_when_the_checkpoint_is_not_the_latest(d06_storage: D06Storage) -> None:
    s = d06_storage
    assert s.run("injection_priors").success
    s.instance.report_runless_asset_event(
        dg.AssetMaterialization(
            "model_checkpoint", partition=s.model_name, metadata={"checkpoint_sha256": "0" * 64}
        )
    )
    result = s.run("tier_a_scoring")
    # a blocking ERROR check fails the step: nothing downstream runs on an unfrozen model
    assert not result.success
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {"model_frozen": False}
    assert "blocking asset check failed" in str(result.all_events)


@pytest.mark.slow
def test_demo_writes_every_d06_output(demo_run) -> None:
    """The shared demo run: every D06 asset and partition wrote its outputs, with provenance."""
    root = demo_run.storage
    priors_sha = json.loads((root / "injection_priors.json").read_text())["sha256"]
    checkpoint = (root / "checkpoints" / "paperIV_bottlenecked_resnet" / "best.pt").read_bytes()
    checkpoint_sha = hashlib.sha256(checkpoint).hexdigest()
    documents = []
    for variant in ("no_poisson", "poisson"):
        keys = SK.grid_keys(variant)
        results = json.loads((root / keys["results_key"]).read_text())
        table = pd.read_parquet(root / keys["selection_function_key"])
        assert results["n"] == table["n"].sum() and results["k"] == table["k"].sum()
        for row in table.itertuples():
            with np.load(root / SK.cell_key(variant, row.cell)) as cell:
                assert row.k == np.sum(cell["scores"] > results["threshold"])
        documents.append(results)
    for variant in BRIGHT_ARC_VARIANTS:
        documents.append(json.loads((root / SK.ba_keys(variant)["results_key"]).read_text()))
        assert (root / SK.ba_keys(variant)["cutouts_key"]).exists()
    d06_root = root / "results" / "D06"
    documents.append(json.loads((d06_root / "linear_probe/linear_probe_results.json").read_text()))
    documents.append(
        json.loads((d06_root / "poisson_diagnostics/poisson_diagnostics.json").read_text())
    )
    for document in documents:
        assert document["priors_sha256"] == priors_sha
        assert document["checkpoint_sha256"] == checkpoint_sha
    scores = pd.read_parquet(d06_root / "tier_a_scoring/tier_a_scores.parquet")
    assert len(scores) > 0 and set(scores["checkpoint_sha256"]) == {checkpoint_sha}
    assert (d06_root / "linear_probe/embeddings.npz").exists()
    assert (d06_root / "poisson_diagnostics/poisson_diagnostics.png").exists()
