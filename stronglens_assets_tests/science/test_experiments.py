"""D06 experiment helpers: Wilson intervals, completeness tables, hosts, injections, noise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from astropy.stats import binom_conf_interval

from stronglens_assets.config import ConfigError
from stronglens_assets.science.core.npz import encode_npz
from stronglens_assets.science.experiments import (
    HostError,
    derived_rng,
    detection_rates,
    draw_hosts,
    grid_summary,
    host_pool,
    inject_cutouts,
    load_d06_config,
    make_injections,
    marginal_completeness,
    poisson_noise_diagnostics,
    read_cutouts,
    selection_function,
    validation_negatives,
)
from stronglens_assets.science.lensing.injection import inject
from stronglens_assets.science.lensing.priors import PARAMETERS, grid_cells, load_priors
from stronglens_assets.settings import PROJECT_ROOT

CONFIG_DIR = PROJECT_ROOT / "configs"


def _cells_and_scores(seed: int = 0):
    priors = load_priors(CONFIG_DIR, "demo")
    cells = grid_cells(priors.grid)
    rng = np.random.default_rng(seed)
    scores = [rng.random(int(rng.integers(5, 15))).astype(np.float32) for _ in range(len(cells))]
    return cells, scores


def test_selection_function_counts_and_marginals() -> None:
    cells, scores = _cells_and_scores()
    scores[0][:] = 0.3  # exactly at the threshold: not counted (strict p > 0.3)
    table = selection_function(cells, scores, 0.3)
    assert list(table.columns) == [
        "cell",
        *PARAMETERS,
        "n",
        "k",
        "completeness",
        "ci_low",
        "ci_high",
    ]
    assert table["k"].iat[0] == 0
    for i, s in enumerate(scores):
        assert table["n"].iat[i] == len(s)
        assert table["k"].iat[i] == int(np.sum(s > 0.3))
    assert np.all(table["ci_low"] <= table["completeness"])
    assert np.all(table["completeness"] <= table["ci_high"])
    marginal = marginal_completeness(table)
    for axis in PARAMETERS:
        assert sum(row["n"] for row in marginal[axis]) == table["n"].sum()
        assert sum(row["k"] for row in marginal[axis]) == table["k"].sum()
    first = marginal["theta_e"][0]
    members = table[table["theta_e"] == first["value"]]
    assert first["k"] == members["k"].sum() and first["n"] == members["n"].sum()


def test_grid_summary_overall_and_per_threshold() -> None:
    cells, scores = _cells_and_scores(1)
    summary = grid_summary(cells, scores, thresholds=[0.3, 0.5], threshold=0.3)
    everything = np.concatenate(scores)
    assert summary["n_injections"] == len(everything)
    assert summary["k"] == int(np.sum(everything > 0.3))
    assert summary["overall"]["0.5"]["k"] == int(np.sum(everything > 0.5))
    assert summary["completeness"] == pytest.approx(np.mean(everything > 0.3))
    low, high = binom_conf_interval(summary["k"], summary["n"], 0.6827, "wilson")
    assert summary["ci_low"] == pytest.approx(low) and summary["ci_high"] == pytest.approx(high)
    cell = summary["cells"][3]
    assert cell["by_threshold"]["0.5"]["k"] == int(np.sum(scores[3] > 0.5))


def test_detection_rates_by_magnitude_bin() -> None:
    scores = np.array([0.9, 0.1, 0.6, 0.4, 0.95, 0.2])
    mags = np.array([18.2, 18.7, 19.5, 19.9, 20.0, 21.0])
    result = detection_rates(scores, mags, thresholds=[0.3, 0.5], mag_bins=[18, 19, 20, 21])
    assert result["rates"]["0.5"]["k"] == 3 and result["n"] == 6
    bins = result["by_source_mag"]
    assert [b["rates"]["0.3"]["n"] for b in bins] == [2, 2, 2]  # 21.0 lands in the last bin
    assert [b["rates"]["0.3"]["k"] for b in bins] == [1, 2, 1]
    assert sum(result["score_histogram"]["counts"]) == 6


def _manifest(n_neg: int = 40, n_a: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    neg = pd.DataFrame(
        {
            "object_id": [f"neg-{i:03d}" for i in range(n_neg)],
            "label": 0,
            "tier": "N1",
            "source": "dr10",
            "split": np.where(np.arange(n_neg) % 4 == 0, "train", "val"),
            "cutout_key": "cutouts/negatives/x/shard-00000.npz",
            "cutout_row": np.arange(n_neg),
            "mag_r": rng.uniform(18, 22, n_neg),
            "shape_r": rng.uniform(0.3, 3.0, n_neg),
        }
    )
    lenses = pd.DataFrame(
        {
            "object_id": [f"lens-{i}" for i in range(n_a)],
            "label": 1,
            "tier": "A",
            "source": "mock",
            "split": "val",
            "cutout_key": "cutouts/positives/x/shard-00000.npz",
            "cutout_row": np.arange(n_a),
            "mag_r": np.full(n_a, 19.0),
            "shape_r": np.full(n_a, 1.0),
        }
    )
    return pd.concat([neg, lenses], ignore_index=True)


def test_host_pools_random_and_matched() -> None:
    manifest = _manifest()
    negatives = validation_negatives(manifest, ["val"])
    assert set(negatives["split"]) == {"val"} and (negatives["label"] == 0).all()
    tier_a = manifest[manifest["label"] == 1]
    pool = host_pool(negatives, None, mode="random", max_pool=10, rng=np.random.default_rng(0))
    assert len(pool.table) == 10 and pool.neighbours is None
    matched = host_pool(negatives, tier_a, mode="tier_a_matched", k_nearest=3, rng=None)
    # the 3 nearest non-lenses of (19.0, 1.0) in standardised (mag_r, shape_r)
    feats = negatives[["mag_r", "shape_r"]].to_numpy()
    scale = feats.std(axis=0)
    dist = np.sum(((feats - [19.0, 1.0]) / scale) ** 2, axis=1)
    nearest = set(negatives["object_id"].iloc[np.argsort(dist)[:3]])
    assert set(matched.table["object_id"]) == nearest
    drawn = draw_hosts(matched, 200, np.random.default_rng(1))
    assert set(matched.table["object_id"].iloc[drawn]) == nearest
    with pytest.raises(HostError, match="Tier-A"):
        host_pool(negatives, tier_a.iloc[:0], mode="tier_a_matched", rng=None)
    with pytest.raises(HostError, match="cutout_key"):
        validation_negatives(manifest.drop(columns="cutout_key"), ["val"])


def _store(arrays_by_key: dict[str, dict[str, np.ndarray]]):
    blobs = {key: encode_npz(arrays) for key, arrays in arrays_by_key.items()}
    reads: list[str] = []

    def read_bytes(key: str) -> bytes:
        reads.append(key)
        return blobs[key]

    return read_bytes, reads


def test_read_cutouts_reads_each_shard_once_and_rejects_nan() -> None:
    rng = np.random.default_rng(2)
    shard = {
        "cutout": rng.normal(size=(5, 3, 11, 11)).astype(np.float32),
        "psfsize": np.full((5, 3), 1.3, np.float32),
        "invvar": np.ones((5, 3, 11, 11), np.float32),
    }
    read_bytes, reads = _store({"a.npz": shard})
    table = pd.DataFrame(
        {"object_id": ["x", "y", "z"], "cutout_key": ["a.npz"] * 3, "cutout_row": [4, 0, 2]}
    )
    arrays = read_cutouts(read_bytes, table)
    assert reads == ["a.npz"] and set(arrays) == {"cutout", "psfsize"}
    np.testing.assert_array_equal(arrays["cutout"], shard["cutout"][[4, 0, 2]])
    shard["cutout"][2, 1, 5, 5] = np.nan
    read_bytes, _ = _store({"a.npz": shard})
    with pytest.raises(HostError, match=r"'z'.*a\.npz.*row 2.*NaN"):
        read_cutouts(read_bytes, table)


def test_zero_arc_leaves_the_host_bit_identical() -> None:
    rng = np.random.default_rng(4)
    hosts = rng.normal(0.0, 0.01, size=(4, 3, 101, 101)).astype(np.float32)
    out = inject(hosts, np.zeros_like(hosts), rng=rng)
    np.testing.assert_array_equal(out, hosts)


def test_make_injections_is_seeded_and_noise_only_changes_noise() -> None:
    priors = load_priors(CONFIG_DIR, "demo")
    manifest = _manifest()
    negatives = validation_negatives(manifest, ["val"])
    pool = host_pool(negatives, None, mode="random", rng=derived_rng(1, "hosts"))
    rng = np.random.default_rng(0)
    hosts = {
        "cutout": rng.normal(0, 0.005, size=(len(pool.table), 3, 101, 101)).astype(np.float32),
        "psfsize": np.full((len(pool.table), 3), 1.3, np.float32),
    }
    fixed = dict(zip(PARAMETERS, [1.5, 21.0, 0.3, 1.0, 0.3, 0.7], strict=True))
    kwargs = dict(seed=9, tags=("grid", 0), fixed=fixed, chunk_size=3)
    a = make_injections(priors, pool, hosts, 7, **kwargs)
    b = make_injections(priors, pool, hosts, 7, **kwargs)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.host_index, b.host_index)
    noisy = make_injections(priors, pool, hosts, 7, poisson_gain=priors.gain_array(), **kwargs)
    np.testing.assert_array_equal(noisy.host_index, a.host_index)
    assert not np.array_equal(noisy.images, a.images)
    # the arcs are there: injected minus host is positive flux near the Einstein radius
    added = a.images - hosts["cutout"][a.host_index]
    assert added.sum() > 0
    control = make_injections(
        priors, pool, hosts, 7, poisson_gain=priors.gain_array(1e12), **kwargs
    )
    np.testing.assert_allclose(control.images, a.images, atol=1e-5)


def test_inject_cutouts_rejects_a_nan_host() -> None:
    priors = load_priors(CONFIG_DIR, "demo")
    from stronglens_assets.science.lensing.priors import sample_parameters

    params = sample_parameters(priors, 2, np.random.default_rng(0))
    hosts = np.zeros((2, 3, 101, 101), np.float32)
    hosts[1, 0, 3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        inject_cutouts(
            params,
            hosts,
            np.full((2, 3), 1.3),
            poisson_gain=None,
            clip=None,
            rng=np.random.default_rng(0),
        )


def test_poisson_diagnostics_recover_the_gain() -> None:
    rng = np.random.default_rng(6)
    arcs = np.zeros((20, 2, 21, 21), np.float64)
    arcs[:, :, 5:15, 5:15] = rng.uniform(0.05, 0.5, size=(20, 2, 10, 10))
    gain = np.array([50.0, 200.0])
    noisy = rng.poisson(arcs * gain[None, :, None, None]) / gain[None, :, None, None]
    invvar = np.full(arcs.shape, 1e4)
    result = poisson_noise_diagnostics(arcs, noisy - arcs, invvar, gain, ["g", "r"])
    for b, band in enumerate(["g", "r"]):
        entry = result["bands"][band]
        assert entry["n_pixels"] == 20 * 100
        assert entry["chi2_per_pixel"] == pytest.approx(1.0, abs=0.1)
        expected_ratio = np.median(arcs[:, b, 5:15, 5:15] / gain[b] * 1e4)
        assert entry["poisson_to_sky_variance_median"] == pytest.approx(expected_ratio)
    silent = poisson_noise_diagnostics(arcs, np.zeros_like(arcs), invvar, gain, ["g", "r"])
    assert silent["bands"]["g"]["chi2_per_pixel"] == 0.0


def test_d06_config_errors_name_the_field(tmp_path) -> None:
    text = (CONFIG_DIR / "d06.yaml").read_text()
    (tmp_path / "d06.yaml").write_text(text.replace("threshold: 0.3 ", "threshold: 0.35 "))
    with pytest.raises(ConfigError, match="threshold"):
        load_d06_config(tmp_path, "full")
    (tmp_path / "d06.yaml").write_text(text.replace("k_nearest: 5", "k_nearest: 0"))
    with pytest.raises(ConfigError, match=r"hosts\.k_nearest"):
        load_d06_config(tmp_path, "full")
