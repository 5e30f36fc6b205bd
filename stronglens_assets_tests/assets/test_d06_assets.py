"""D06 assets on a small synthetic storage: real Dagster, real shards, a real (untrained) model.

The storage holds what the upstream assets would have written: cutout shards, the
``training_manifest`` value (Parquet) and ``checkpoints/<model>/best.pt``. The D06 assets
are materialized with ``dg.materialize`` (the upstream ones are source assets read through
the IO manager).
"""

from __future__ import annotations

import base64
import hashlib
import io
import itertools
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
from stronglens_assets.mock_survey.config import load_demo_sky
from stronglens_assets.project import Project
from stronglens_assets.resources import LocalStorageResource
from stronglens_assets.resources.compute import ComputeResource
from stronglens_assets.resources.result_sets import ResultSetSource, read_result_set
from stronglens_assets.science.core.npz import encode_npz
from stronglens_assets.science.experiments.config import load_d06_config
from stronglens_assets.science.learning.model_config import load_model_config
from stronglens_assets.science.learning.models import build_model, state_dict_bytes
from stronglens_assets.science.lensing.priors import BRIGHT_ARC_VARIANTS
from stronglens_assets.science.reporting.d06_results import read_d06_results
from stronglens_assets.settings import PROJECT_ROOT, load_settings
from stronglens_assets_tests.assets.test_metadata import assert_readable
from stronglens_assets_tests.harness import AssetHarness, local_resources

SIZE = 101
#: the model evaluation's thresholds (contract 2): one FPR target resolved, one not
THRESHOLDS = json.dumps(
    {
        "model": "paperIV_bottlenecked_resnet",
        "split": "val",
        "checkpoint_sha256": "0" * 64,
        "n_negatives": 2000,
        "thresholds": [
            {
                "label": "p>0.3",
                "value": 0.3,
                "fpr_target": None,
                "n_negatives": None,
                "resolved": True,
            },
            {
                "label": "FPR=1e-3",
                "value": 0.6,
                "fpr_target": 0.001,
                "n_negatives": 2000,
                "resolved": True,
            },
            {
                "label": "FPR=1e-4",
                "value": None,
                "fpr_target": 0.0001,
                "n_negatives": 2000,
                "resolved": False,
                "reason": "fpr_target 0.0001 needs at least 10000 negatives; 2000 given",
            },
        ],
    }
).encode()
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
            # r-band 5-sigma depth 23.85-24.1 mag: the grid's 24.0 bin
            "psfdepth_r": rng.uniform(300.0, 500.0, n),
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
            dg.SourceAsset("evaluation_thresholds", partitions_def=model_partitions),
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
        rng, n_pos, 1, np.where(np.arange(n_pos) % 2 == 0, "A", "B"), POS_KEY, "test"
    )
    storage.write_value("training_manifest", pd.concat([negatives, positives], ignore_index=True))
    name = load_d06_config(config_dir, "demo").model_config_name
    storage.write_bytes(SK.EVALUATION_THRESHOLDS_KEY.format(name=name), THRESHOLDS)
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


def _results(s: D06Storage):
    return read_d06_results(ResultSetSource(s.storage.object_store(), SK.D06_ROOT))


def test_grid_writes_the_published_schema_and_matches_its_injections(
    d06_storage: D06Storage,
) -> None:
    s = d06_storage
    assert s.run("injection_priors").success
    assert s.run("d06_hosts").success
    first = s.run("grid_completeness", "no_poisson")
    assert first.success
    checks = {c.check_name: c.passed for c in first.get_asset_check_evaluations()}
    assert checks == {"result_set_complete": True, "model_frozen": True}
    store = s.storage.object_store()
    pointer = read_result_set(store, SK.D06_ROOT, "grid_no_poisson")
    table_bytes = store.read_bytes(pointer.key("selection_function.csv"))
    # the completeness plot: in the result set and in the UI; floats shown rounded
    png = store.read_bytes(pointer.key("completeness.png"))
    assert png.startswith(b"\x89PNG")
    (event,) = first.get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert base64.b64encode(png).decode() in metadata["completeness_plot"].value
    assert_readable(metadata, "grid_completeness")

    again = s.run("grid_completeness", "no_poisson")
    assert again.success
    repeat = read_result_set(store, SK.D06_ROOT, "grid_no_poisson")
    assert (
        repeat.version != ""
        and store.read_bytes(repeat.key("selection_function.csv")) == table_bytes
    )

    # the published-layout reader loads our table; thresholds: fixed + the resolved FPR one
    grid = _results(s).grids["no_poisson"]
    assert [t.label for t in grid.thresholds] == ["p>0.3", "p>0.5", "p>0.7", "FPR=1e-3"]
    assert grid.meta["unresolved_thresholds"][0]["label"] == "FPR=1e-4"
    assert (
        grid.meta["grid"]["theta_e"]
        == load_d06_config(PROJECT_ROOT / "configs", "demo").grid.theta_e
    )
    sha = s.storage.read_value("injection_priors.json")["sha256"]
    checkpoint = s.read(f"checkpoints/{s.model_name}/best.pt")
    assert grid.meta["priors_sha256"] == sha
    assert grid.meta["checkpoint_sha256"] == hashlib.sha256(checkpoint).hexdigest()

    # every count of the table is recomputed from the per-injection scores
    injections = pd.read_parquet(io.BytesIO(store.read_bytes(repeat.key("injections.parquet"))))
    for spec in grid.thresholds:
        rows = grid.rows(spec).set_index(["theta_e", "psf_fwhm", "depth_5sig"])
        for (theta, psf, depth), sub in injections.groupby(
            ["cell_theta_e", "cell_psf_fwhm", "cell_depth_5sig"]
        ):
            row = rows.loc[(theta, psf, depth)]
            assert row["n_injections"] == len(sub)
            assert row["n_detected"] == int((sub["score"] > spec.value).sum())
            assert row["n_host_detected"] == int((sub["host_score"] > spec.value).sum())
    assert (injections["theta_e"] == injections["cell_theta_e"]).all()
    assert injections["source_mag"].between(23, 26).all()
    assert np.isfinite(injections["lensed_mag"]).any() and (injections["arc_snr"] >= 0).all()

    # the poisson partition: same hosts and parameters, different pixels (scores)
    assert s.run("grid_completeness", "poisson").success
    noisy_pointer = read_result_set(store, SK.D06_ROOT, "grid_poisson")
    noisy = pd.read_parquet(io.BytesIO(store.read_bytes(noisy_pointer.key("injections.parquet"))))
    np.testing.assert_array_equal(noisy["host_object_id"], injections["host_object_id"])
    np.testing.assert_array_equal(noisy["source_x"], injections["source_x"])
    assert not np.array_equal(noisy["score"], injections["score"])
    assert _results(s).grids["poisson"].gain_e_per_nmgy == 150.0


def test_every_other_d06_asset_materializes_and_reads_back(d06_storage: D06Storage) -> None:
    s = d06_storage
    # half the validation hosts are twice as deep (double invvar): double the per-host gain
    shard = dict(np.load(io.BytesIO(s.read(NEG_KEY))))
    shard["invvar"][10:25] *= 2
    s.storage.write_bytes(NEG_KEY, encode_npz(shard))
    doubled = {f"neg-{i:03d}" for i in range(10, 25)}
    assert s.run("injection_priors").success
    assert s.run("d06_hosts").success
    config = load_d06_config(PROJECT_ROOT / "configs", "demo")
    for variant in ("baseline", "poisson", "gain_1e12", "clip20"):
        assert s.run("bright_arc", variant).success, variant
    assert s.run("linear_probe").success
    assert s.run("tier_a_scoring").success
    assert s.run("poisson_diagnostics").success
    results = _results(s)
    base = results.bright_arcs["baseline"]
    n_bins = len(config.bright_arc.mag_bins) - 1
    assert len(base.bins) == n_bins and base.n_scored + base.n_failed == n_bins * 12
    assert results.bright_arcs["clip20"].clip_range == 20.0
    # gain 1e12 is the noiseless control: same arcs and hosts, the same detections
    control = results.bright_arcs["gain_1e12"]
    assert [b.k_p03 for b in control.bins] == [b.k_p03 for b in base.bins]
    pairs = results.poisson_pairs
    assert pairs is not None and len(pairs.per_bin) == n_bins
    assert {p.name for p in pairs.pools} == {"20_23", "all"}
    assert results.feature_space is not None and 0 <= results.feature_space.cv_auc_mean <= 1
    per_block = results.feature_space.frechet_per_layer
    assert list(per_block) == config.linear_probe.feature_blocks
    assert all(v is not None and v >= 0 for v in per_block.values())
    significance = results.probe_significance
    assert significance.n_permutations == config.linear_probe.permutations
    assert 0 < significance.permutation_p <= 1
    assert results.embeddings is not None
    tier_a = results.tier_a
    assert tier_a.n_valid == 8 and {r.label for r in tier_a.recall} >= {"p>0.3", "p>0.5"}
    store = s.storage.object_store()
    feature = json.loads(
        store.read_bytes(
            read_result_set(store, SK.D06_ROOT, "linear_probe").key("feature_space_results.json")
        )
    )
    assert 0 <= feature["brightness_only_baseline"]["cv_auc_mean"] <= 1
    assert 0 <= feature["tier_a_vs_tier_b"]["cv_auc_mean"] <= 1
    # the gain sweep at 150 e-/nmgy repeats the poisson variant (same arcs, hosts, noise)
    pointer = read_result_set(store, SK.D06_ROOT, "poisson_diagnostics")
    sweep = json.loads(store.read_bytes(pointer.key("gain_sweep.json")))
    assert [g["gain_e_per_nmgy"] for g in sweep["gains"]] == config.poisson_diagnostics.gain_sweep
    at_150 = next(g for g in sweep["gains"] if g["gain_e_per_nmgy"] == 150.0)
    pooled = next(p for p in pairs.pools if p.name == "all")
    assert (
        at_150["pooled_vs_baseline"]["total_gained"],
        at_150["pooled_vs_baseline"]["total_lost"],
    ) == (pooled.b, pooled.c)
    # the per-host gain beside the fixed gains: g_b = S_b x median(invvar_b), S_b the mock
    # sky's own (demo_sky.yaml) per 0.262" pixel; the hosts' invvar is 1 / 0.006^2 (or twice)
    per_host = sweep["per_host_gain"]
    sky = load_demo_sky(PROJECT_ROOT / "configs" / "demo_sky.yaml")
    assert per_host["sky_mag_arcsec2"] == {b: sky.bands[b].sky_mag_arcsec2 for b in "grz"}
    gains = pd.read_csv(io.BytesIO(store.read_bytes(pointer.key("per_host_gains.csv"))))
    deep = gains["host_object_id"].isin(doubled).to_numpy()
    assert deep.any() and (~deep).any() and len(gains) == per_host["n_hosts"]
    for b in "grz":
        want = 10 ** (-0.4 * (sky.bands[b].sky_mag_arcsec2 - 22.5)) * 0.262**2 / 0.006**2
        np.testing.assert_allclose(gains[f"gain_{b}"][~deep], want, rtol=1e-6)
        np.testing.assert_allclose(gains[f"gain_{b}"][deep], 2 * want, rtol=1e-6)
        summary = per_host["host_gain_e_per_nmgy"][b]
        assert summary["min"] == pytest.approx(want, rel=1e-6)
        assert summary["max"] == pytest.approx(2 * want, rel=1e-6)
    labels = [f"{lo:g}-{hi:g}" for lo, hi in itertools.pairwise(config.bright_arc.mag_bins)]
    assert list(per_host["rate_p03_by_bin"]) == list(per_host["rate_p05_by_bin"]) == labels
    assert all(0 <= r <= 1 for r in per_host["rate_p05_by_bin"].values())
    paired = per_host["pooled_vs_baseline"]
    assert paired["bins_included"] == labels
    assert paired["total_gained"] + paired["total_lost"] <= base.n_scored
    # the fixed gains keep their keys and gain p > 0.5 rates too
    assert {"gain_e_per_nmgy", "n_failed", "rate_p03_by_bin", "rate_p03", "rate_p05"} <= set(at_150)


def test_nan_hosts_are_retried_and_counted(d06_storage: D06Storage) -> None:
    s = d06_storage
    shard = dict(np.load(io.BytesIO(s.read(NEG_KEY))))
    shard["cutout"][10:20, 1, 50, 50] = np.nan  # a third of the validation hosts
    s.storage.write_bytes(NEG_KEY, encode_npz(shard))
    assert s.run("injection_priors").success
    hosts = s.run("d06_hosts")
    assert hosts.success and _value(hosts, "d06_hosts")["n_unusable_cutouts"] == 10
    assert s.run("grid_completeness", "no_poisson").success
    grid = _results(s).grids["no_poisson"]
    assert grid.meta["retries"] > 0
    store = s.storage.object_store()
    pointer = read_result_set(store, SK.D06_ROOT, "grid_no_poisson")
    used = pd.read_parquet(io.BytesIO(store.read_bytes(pointer.key("injections.parquet"))))
    bad = {f"neg-{i:03d}" for i in range(10, 20)}
    assert not bad & set(used["host_object_id"])


def test_bad_inputs_fail_clearly_and_keep_the_previous_result(tmp_path: Path, build_d06) -> None:
    config_dir = _copied_configs(tmp_path)
    s = build_d06(config_dir)
    assert s.run("injection_priors").success and s.run("d06_hosts").success
    assert s.run("grid_completeness", "no_poisson").success
    store = s.storage.object_store()
    before = {p: p.read_bytes() for p in (s.root / "results").rglob("*") if p.is_file()}

    # an FPR target the negatives cannot resolve, with unresolved_fpr: error
    path = config_dir / "d06.yaml"
    text = path.read_text()
    path.write_text(text.replace("unresolved_fpr: skip", "unresolved_fpr: error"))
    result = s.run("grid_completeness", "no_poisson")
    assert not result.success and "FPR=1e-4" in str(result.all_events)
    path.write_text(text)

    # a missing model evaluation names the key
    key = SK.EVALUATION_THRESHOLDS_KEY.format(name=s.model_name)
    saved = store.read_bytes(key)
    store.delete(key)
    result = s.run("grid_completeness", "no_poisson")
    assert not result.success and key in str(result.all_events)
    store.write_bytes(key, saved)

    # a missing checkpoint
    checkpoint = s.root / "checkpoints" / s.model_name / "best.pt"
    data = checkpoint.read_bytes()
    checkpoint.unlink()
    result = s.run("grid_completeness", "no_poisson")
    assert not result.success and "no checkpoint" in str(result.all_events)
    checkpoint.write_bytes(data)

    after = {p: p.read_bytes() for p in (s.root / "results").rglob("*") if p.is_file()}
    assert after == before
    assert _results(s).grids["no_poisson"].meta["total_injections_ok"] > 0


def test_a_grid_with_no_non_empty_cell_is_an_error(tmp_path: Path, build_d06) -> None:
    config_dir = _copied_configs(tmp_path)
    path = config_dir / "d06.yaml"
    path.write_text(
        path.read_text().replace(
            "psf_fwhm: [0.9, 1.05, 1.2, 1.35, 1.5, 1.65, 1.8]", "psf_fwhm: [0.9, 1.05]"
        )
    )
    s = build_d06(config_dir)
    assert s.run("injection_priors").success and s.run("d06_hosts").success
    result = s.run("grid_completeness", "no_poisson")
    assert not result.success
    assert "every grid cell is empty" in str(result.all_events)
    assert not (s.root / SK.D06_ROOT / "grid_no_poisson.json").exists()


def test_bad_priors_fail_clearly_and_overwrite_nothing(tmp_path: Path, build_d06) -> None:
    config_dir = _copied_configs(tmp_path)
    s = build_d06(config_dir)
    assert s.run("injection_priors").success
    before = s.read("injection_priors.json")
    path = config_dir / "injection_priors.yaml"
    text = path.read_text()
    path.write_text(
        text.replace(
            "n_sersic: {dist: uniform, low: 0.5, high: 2.0}",
            "n_sersic: {dist: uniform, low: 0.5, high: 20.0}",
        )
    )
    result = s.run("injection_priors")
    assert not result.success
    message = str(result.all_events)
    assert "priors.paper_2026.source" in message and "n_sersic" in message
    assert s.read("injection_priors.json") == before


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
        "d06_hosts",
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
    for name in ("grid_completeness", "bright_arc", "linear_probe", "tier_a_scoring"):
        asset = assets[name]
        assert asset.op.pool == "gpu", name
        tags = asset.op.tags["dagster-k8s/config"]
        tags = json.loads(tags) if isinstance(tags, str) else tags
        assert tags["container_config"]["resources"]["limits"]["nvidia.com/gpu"] == "1", name


def test_a_checkpoint_that_is_not_the_latest_fails_before_scoring(d06_storage: D06Storage) -> None:
    """Issue 23 item 2: the checkpoint is checked against model_checkpoint's recorded sha256
    before anything is scored, so the model asset fails naming best.pt and writes nothing."""
    s = d06_storage
    assert s.run("injection_priors").success and s.run("d06_hosts").success
    store = s.storage.object_store()
    keys_before = set(store.list_keys("results"))
    s.instance.report_runless_asset_event(
        dg.AssetMaterialization(
            "model_checkpoint", partition=s.model_name, metadata={"checkpoint_sha256": "0" * 64}
        )
    )
    result = s.run("tier_a_scoring")
    assert not result.success
    error = "\n".join(str(e.step_failure_data.error) for e in result.get_step_failure_events())
    assert "best.pt" in error and f"does not match the {'0' * 64}" in error, error
    assert set(store.list_keys("results")) == keys_before


@pytest.mark.slow
def test_demo_writes_every_d06_output(demo_run) -> None:
    """The shared demo run: every D06 asset and partition wrote a readable result set."""
    from stronglens_assets.resources.object_store import LocalObjectStore

    root = demo_run.storage
    results = read_d06_results(ResultSetSource(LocalObjectStore(root), SK.D06_ROOT))
    assert set(results.grids) == {"no_poisson", "poisson"}
    assert set(results.bright_arcs) == set(BRIGHT_ARC_VARIANTS)
    assert results.poisson_pairs is not None and results.probe_significance is not None
    assert results.tier_a is not None and results.feature_space is not None
    priors_sha = json.loads((root / "injection_priors.json").read_text())["sha256"]
    checkpoint = (root / "checkpoints" / "paperIV_bottlenecked_resnet" / "best.pt").read_bytes()
    for grid in results.grids.values():
        assert grid.meta["priors_sha256"] == priors_sha
        assert grid.meta["checkpoint_sha256"] == hashlib.sha256(checkpoint).hexdigest()
        assert grid.meta["total_injections_ok"] > 0
    _per_host_gains_are_the_mock_surveys(demo_run.home)


def _per_host_gains_are_the_mock_surveys(home: Path) -> None:
    """The per-host gain from a host's invvar recovers the gain the mock survey rendered its
    brick with (truth ``gain_<b>``): exactly in the brick's main exposures, x (nobs + 1) / nobs
    beyond an exposure edge, where the mock's invvar is that much deeper."""
    from stronglens_assets.mock_survey.writer import brick_paths
    from stronglens_assets.resources.object_store import LocalObjectStore

    store = LocalObjectStore(home / "storage")
    pointer = read_result_set(store, SK.D06_ROOT, "poisson_diagnostics")
    gains = pd.read_csv(io.BytesIO(store.read_bytes(pointer.key("per_host_gains.csv"))))
    sky = load_demo_sky(PROJECT_ROOT / "configs" / "demo_sky.yaml")
    compared = 0
    for row in gains.itertuples(index=False):
        brick = str(row.host_object_id).split("-")[0]
        truth = pd.read_parquet(brick_paths(home / "mock_survey", brick).truth_lenses)
        if truth.empty:
            continue
        for b in "grz":
            ratio = getattr(row, f"gain_{b}") / truth[f"gain_{b}"].iloc[0]
            edge = (sky.bands[b].nobs + 1) / sky.bands[b].nobs
            assert min(abs(ratio - 1.0), abs(ratio - edge)) < 1e-5, (row, b, ratio)
        compared += 1
    assert compared > 0


def test_per_host_gain_sky_by_environment_and_bad_config(tmp_path: Path) -> None:
    """`default` sky: the mock sky's own (demo_sky.yaml) locally, the dark-time DECam sky on
    survey data; an override is used as given; bad values and missing bands name the field."""
    from types import SimpleNamespace

    from stronglens_assets.config import ConfigError
    from stronglens_assets.science.imaging.gain import DECAM_DARK_SKY_MAG_ARCSEC2

    config_dir = _copied_configs(tmp_path)
    path = config_dir / "demo_sky.yaml"
    path.write_text(path.read_text().replace("sky_mag_arcsec2: 21.0}", "sky_mag_arcsec2: 20.5}"))
    config = load_d06_config(config_dir, "demo")
    local = SimpleNamespace(env="local", config_dir=config_dir)
    sky, source = d06.per_host_sky(config, local)
    assert sky == {"g": 22.0, "r": 20.5, "z": 19.9} and "demo_sky.yaml" in source
    sky, source = d06.per_host_sky(config, SimpleNamespace(env="aws", config_dir=config_dir))
    assert sky == DECAM_DARK_SKY_MAG_ARCSEC2 and "CCD tables" in source

    d06_path = config_dir / "d06.yaml"
    text = d06_path.read_text()
    d06_path.write_text(text.replace("sky_mag_arcsec2: default", "sky_mag_arcsec2: {g: 22.5}"))
    config = load_d06_config(config_dir, "demo")
    sky = d06.per_host_sky(config, local)
    assert sky[0] == {"g": 22.5} and "per_host_gain.sky_mag_arcsec2" in sky[1]
    run = SimpleNamespace(priors=SimpleNamespace(bands=["g", "r", "z"]))
    with pytest.raises(d06.D06Error, match=r"per_host_gain.sky_mag_arcsec2 must give exactly"):
        d06._checked_sky(run, sky)
    for bad in ("{g: 22.0, r: .nan, z: 19.9}", "{g: 5.0, r: 21.0, z: 19.9}", "{}", "auto"):
        d06_path.write_text(text.replace("sky_mag_arcsec2: default", f"sky_mag_arcsec2: {bad}"))
        with pytest.raises(ConfigError, match=r"poisson_diagnostics.per_host_gain.sky_mag_arcsec2"):
            load_d06_config(config_dir, "demo")
    d06_path.write_text(text.replace("enabled: true", "enabled: false"))
    assert d06.per_host_sky(load_d06_config(config_dir, "demo"), local) == (None, "off")
