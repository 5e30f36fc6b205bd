"""Reading a D06 results directory in the published layout (the published files as test data)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stronglens_assets.science.reporting.d06_results import (
    BRIGHT_ARC_VARIANTS,
    DirectorySource,
    PrefixedSource,
    ResultsFormatError,
    read_d06_results,
)
from stronglens_assets_tests.science.reporting.published import (
    PUBLISHED_DIR,
    complete_layout,
    published_layout,
    read_json,
    write_json,
)


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    return published_layout(tmp_path / "D06")


def test_published_layout_is_read_and_the_absent_pieces_are_listed(layout: Path) -> None:
    results = read_d06_results(layout)
    assert results.layout == "nested"
    assert results.location == str(layout.resolve())
    assert list(results.grids) == ["no_poisson"]
    assert list(results.bright_arcs) == ["baseline"]
    for part in ("poisson_pairs", "feature_space", "probe_significance", "tier_a"):
        assert getattr(results, part) is not None, part
    assert results.embeddings is None and results.tier_a_lenses is None and results.cutouts is None
    missing = {m.key: m.optional for m in results.missing}
    expected = {
        "grid_poisson/selection_function.csv": False,
        "grid_poisson/selection_function_meta.json": False,
        **{f"ba_{v}/bright_arc_results.json": False for v in BRIGHT_ARC_VARIANTS[1:]},
        "linear_probe/embeddings.npz": True,
        "tier_a_scoring/tier_a_scores.parquet": True,
        "real_vs_injection/cutouts.npz": True,
    }
    assert missing == expected
    assert len(results.inputs) == 7
    assert all(len(i.sha256) == 64 and i.size > 0 for i in results.inputs)


def test_every_field_of_the_published_files_lands_in_the_model(layout: Path) -> None:
    results = read_d06_results(layout)
    grid = results.grids["no_poisson"]
    assert [s.label for s in grid.thresholds] == ["p>0.3", "p>0.5", "p>0.7", "FPR=1e-3", "FPR=1e-4"]
    assert grid.threshold("FPR=1e-3").value == pytest.approx(0.8058655117092153)
    assert grid.threshold("FPR=1e-4").fpr_target == 1e-4
    assert not grid.add_poisson_noise and grid.gain_e_per_nmgy is None
    assert len(grid.table) == 9625 and grid.table["sufficient"].dtype == bool
    assert grid.meta["seed"] == 1337 and grid.meta["n_cells"] == 385
    arcs = results.bright_arcs["baseline"]
    assert (arcs.theta_e, arcs.n_hosts, arcs.seed, arcs.clip_range) == (1.5, 200, 42, 10.0)
    assert arcs.beta_frac_range is None and not arcs.add_poisson_noise
    assert [b.mag_bin for b in arcs.bins] == [f"{m}-{m + 1}" for m in range(18, 26)]
    assert [b.k_p03 for b in arcs.bins] == [58, 67, 77, 66, 47, 22, 4, 1]
    pairs = results.poisson_pairs
    assert [(p.b, p.c) for p in pairs.per_bin][3:5] == [(27, 6), (21, 3)]
    assert [(p.name, p.b, p.c) for p in pairs.pools] == [("20_23", 73, 28), ("all", 100, 53)]
    fs = results.feature_space
    assert fs.group_sizes == {
        "real_tier_a": 112,
        "inj_low_bf": 500,
        "inj_high_bf": 500,
        "negatives": 500,
    }
    assert fs.frechet_per_layer["features_3"] == pytest.approx(47.2397801)
    assert fs.frechet_per_layer["features_4"] is None  # NaN in the file
    sig = results.probe_significance
    assert (sig.n_permutations, sig.n_exceeding, sig.n_bootstrap) == (1000, 0, 5000)
    assert sig.bootstrap_ci95 == pytest.approx((0.996319798, 0.999788642))
    tier_a = results.tier_a
    assert (tier_a.n_valid, tier_a.n_negatives) == (112, 3000)
    assert [(r.label, r.spec.label, r.k) for r in tier_a.recall] == [
        ("p>0.3", "p>0.3", 100),
        ("p>0.5", "p>0.5", 94),
        ("p>0.806 (FPR-derived)", "FPR=1e-3", 89),
        ("p>0.995 (FPR-derived)", "FPR=1e-4", 54),
    ]
    assert tier_a.recall[0].fpr_negatives == pytest.approx(13 / 3000)


def test_flattened_names_of_the_test_data_are_read_too() -> None:
    results = read_d06_results(PUBLISHED_DIR)
    assert results.layout == "flat"
    assert list(results.grids) == ["no_poisson"] and list(results.bright_arcs) == ["baseline"]
    assert results.tier_a is not None and results.poisson_pairs is not None


def test_extra_variants_are_discovered_and_a_complete_directory_misses_nothing(
    tmp_path: Path,
) -> None:
    root = complete_layout(tmp_path / "D06")
    extra = read_json(root, "ba_baseline/bright_arc_results.json")
    write_json(root, "ba_gain_2000/bright_arc_results.json", extra)
    results = read_d06_results(root)
    assert results.missing == ()
    assert list(results.grids) == ["no_poisson", "poisson"]
    assert list(results.bright_arcs) == [*BRIGHT_ARC_VARIANTS, "gain_2000"]
    assert results.grids["poisson"].add_poisson_noise
    assert results.embeddings.tier_a_is_mock.sum() == 10
    assert set(results.embeddings.scores) == set(results.embeddings.embeddings)


def test_a_prefixed_object_store_reads_like_a_directory(tmp_path: Path) -> None:
    from stronglens_assets.resources.object_store import LocalObjectStore

    published_layout(tmp_path / "storage" / "results" / "D06")
    source = PrefixedSource(LocalObjectStore(tmp_path / "storage"), "results/D06")
    results = read_d06_results(source)
    assert results.location.endswith("results/D06")
    assert list(results.bright_arcs) == ["baseline"] and results.tier_a.recall[0].k == 100


def test_s3_results_directory(tmp_path: Path, s3_server: str, s3_bucket: str) -> None:
    import boto3

    from stronglens_assets.resources.object_store import S3ObjectStore, make_s3_client

    root = published_layout(tmp_path / "D06")
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-2")
    for path in sorted(root.rglob("*")):
        if path.is_file():
            key = "published/D06/" + path.relative_to(root).as_posix()
            client.put_object(Bucket=s3_bucket, Key=key, Body=path.read_bytes())
    store = S3ObjectStore(
        make_s3_client(endpoint_url=s3_server, region_name="us-east-2"), s3_bucket, "published/D06"
    )
    results = read_d06_results(store)
    assert results.location == f"s3://{s3_bucket}/published/D06"
    local = read_d06_results(root)
    assert [(i.key, i.sha256) for i in results.inputs] == [(i.key, i.sha256) for i in local.inputs]
    assert [m.key for m in results.missing] == [m.key for m in local.missing]
    assert results.grids["no_poisson"].table.equals(local.grids["no_poisson"].table)


def test_a_missing_directory_and_an_unsupported_uri_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_d06_results(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="ResultsSource"):
        read_d06_results("s3://bucket/prefix")
    with pytest.raises(ValueError, match="invalid results key"):
        DirectorySource(tmp_path).read_bytes("../etc/passwd")


# --------------------------------------------------------------------------------------------
# Malformed files: an error naming the file and the field
# --------------------------------------------------------------------------------------------

GRID = "grid_no_poisson/selection_function.csv"
META = "grid_no_poisson/selection_function_meta.json"
ARCS = "ba_baseline/bright_arc_results.json"
PAIRS = "poisson_diagnostics/mcnemar_results.json"
TIER_A = "tier_a_scoring/real_lens_scoring_results.json"
PROBE = "linear_probe/feature_space_results.json"
SIGNIFICANCE = "linear_probe/permutation_bootstrap_results.json"


def _csv(change: Callable[[pd.DataFrame], pd.DataFrame | None]) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        table = pd.read_csv(root / GRID, dtype=str, keep_default_na=False)
        changed = change(table)
        (changed if changed is not None else table).to_csv(root / GRID, index=False)

    return apply


def _json(key: str, change: Callable[[dict], None]) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        data = read_json(root, key)
        change(data)
        write_json(root, key, data)

    return apply


def _set(row: int, column: str, value: str) -> Callable[[pd.DataFrame], None]:
    def change(table: pd.DataFrame) -> None:
        table.loc[row, column] = value

    return change


# row 15 of the table: a non-empty cell with k = 0 (theta_E 0.5, PSF 0.9, depth 24.0)
MALFORMED = [
    (GRID, _csv(lambda t: t.drop(columns=["n_detected"])), "n_detected"),
    (GRID, _csv(_set(15, "theta_e", "half")), "theta_e"),
    (GRID, _csv(_set(15, "n_detected", "999")), "n_detected"),
    (GRID, _csv(_set(15, "n_injections", "-1")), "n_injections"),
    (GRID, _csv(_set(15, "completeness", "0.5")), "completeness"),
    (GRID, _csv(_set(15, "ci95_hi", "1.5")), "ci95_hi"),
    (GRID, _csv(_set(15, "threshold_type", "best")), "threshold_type"),
    (GRID, _csv(_set(15, "fpr_target", "0.01")), "fpr_target"),
    (GRID, _csv(_set(15, "source_mag_bin", "bright")), "source_mag_bin"),
    (GRID, _csv(_set(15, "sufficient", "maybe")), "sufficient"),
    (GRID, _csv(_set(0, "mean_score", "0.2")), "mean_score"),
    (GRID, _csv(lambda t: pd.concat([t, t.iloc[[15]]])), "source_mag_bin"),
    (GRID, lambda root: (root / GRID).write_bytes(b"\x00\xff\xfe not a table"), "<csv>"),
    (META, _json(META, lambda d: d.update(total_injections_ok=109999)), "total_injections_ok"),
    (META, _json(META, lambda d: d["thresholds"].pop()), "thresholds"),
    (META, _json(META, lambda d: d["grid"]["theta_e"].pop()), "grid.theta_e"),
    (META, _json(META, lambda d: d.update(n_empty_cells=1)), "n_empty_cells"),
    (META, _json(META, lambda d: d.update(add_poisson_noise="no")), "add_poisson_noise"),
    (META, _json(META, lambda d: d.update(add_poisson_noise=True)), "gain_e_per_nmgy"),
    (
        META,
        _json(META, lambda d: d["fpr_derived_thresholds"].update({"0.001": 0.8})),
        "fpr_derived_thresholds.0.001",
    ),
    (META, _json(META, lambda d: d.pop("seed")), "seed"),
    (META, _json(META, lambda d: d.update(failure_rate_pct=2.5)), "failure_rate_pct"),
    (
        ARCS,
        _json(ARCS, lambda d: d["results_by_bin"]["18-19"].update(detection_rate_p03=0.2917)),
        "results_by_bin.18-19.detection_rate_p03",
    ),
    (
        ARCS,
        _json(ARCS, lambda d: d["results_by_bin"]["19-20"].update(n_scored="200")),
        "results_by_bin.19-20.n_scored",
    ),
    (ARCS, _json(ARCS, lambda d: d["magnitude_bins"].append("26-27")), "results_by_bin.26-27"),
    (ARCS, _json(ARCS, lambda d: d.update(n_failed=3)), "n_total_injections"),
    (ARCS, _json(ARCS, lambda d: d["phase1_config"].pop("theta_e")), "phase1_config.theta_e"),
    (
        PAIRS,
        _json(PAIRS, lambda d: d["per_bin"]["21-22"].update(gained_b=28)),
        "per_bin.21-22.n_paired",
    ),
    (
        PAIRS,
        _json(PAIRS, lambda d: d["per_bin"]["21-22"].update(poisson_det_rate=0.5)),
        "per_bin.21-22.poisson_det_rate",
    ),
    (
        PAIRS,
        _json(PAIRS, lambda d: d["aggregate_20_23"].update(total_gained=70)),
        "aggregate_20_23.total_gained",
    ),
    (
        TIER_A,
        _json(TIER_A, lambda d: d["recall_by_tier"]["tier_A"]["p>0.3"].update(n_detected=99)),
        "recall_by_tier.tier_A.p>0.3.recall",
    ),
    (
        TIER_A,
        _json(TIER_A, lambda d: d["real_lens"]["recall_at_thresholds"].update({"p=0.3": 0.9})),
        "real_lens.recall_at_thresholds.p=0.3",
    ),
    (
        TIER_A,
        _json(TIER_A, lambda d: d["negatives"]["fpr_at_thresholds"].update({"p>0.3": 0.00431})),
        "negatives.fpr_at_thresholds.p>0.3",
    ),
    (
        PROBE,
        _json(PROBE, lambda d: d["linear_probe"].update(cv_auc_mean="high")),
        "linear_probe.cv_auc_mean",
    ),
    (PROBE, _json(PROBE, lambda d: d.pop("median_scores")), "median_scores"),
    (
        SIGNIFICANCE,
        _json(SIGNIFICANCE, lambda d: d["permutation_test"].update(n_exceeding=1001)),
        "permutation_test.n_exceeding",
    ),
    (
        SIGNIFICANCE,
        _json(SIGNIFICANCE, lambda d: d.update(observed_auc_mean=0.9)),
        "observed_auc_mean",
    ),
    (TIER_A, lambda root: (root / TIER_A).write_text("{not json"), "<json>"),
]


@pytest.mark.parametrize(
    ("key", "corrupt", "field"), MALFORMED, ids=[f"{k.split('/')[-1]}:{f}" for k, _, f in MALFORMED]
)
def test_a_malformed_file_fails_naming_the_file_and_the_field(
    layout: Path, key: str, corrupt: Callable[[Path], None], field: str
) -> None:
    corrupt(layout)
    with pytest.raises(ResultsFormatError) as error:
        read_d06_results(layout)
    assert error.value.file == str(layout / key)
    assert error.value.field == field
    assert str(layout / key) in str(error.value) and repr(field) in str(error.value)


def test_a_grid_table_without_its_metadata_is_an_error(layout: Path) -> None:
    (layout / META).unlink()
    with pytest.raises(ResultsFormatError, match=r"selection_function.csv.*metadata"):
        read_d06_results(layout)


def test_malformed_per_object_inputs_are_named(tmp_path: Path) -> None:
    root = complete_layout(tmp_path / "D06")
    with np.load(root / "linear_probe/embeddings.npz") as archive:
        arrays = dict(archive)
    arrays["inj_low_bf"] = arrays["inj_low_bf"][:10]
    np.savez(root / "linear_probe/embeddings.npz", **arrays)
    with pytest.raises(ResultsFormatError) as error:
        read_d06_results(root)
    assert error.value.field == "inj_low_bf" and "500" in str(error.value)
    (root / "linear_probe/embeddings.npz").write_bytes(b"not a zip archive")
    with pytest.raises(ResultsFormatError, match=r"embeddings.npz.*<npz>"):
        read_d06_results(root)
    (root / "linear_probe/embeddings.npz").unlink()
    lenses = pd.read_parquet(root / "tier_a_scoring/tier_a_scores.parquet")
    lenses.loc[3, "source"] = "simulated"
    lenses.to_parquet(root / "tier_a_scoring/tier_a_scores.parquet")
    with pytest.raises(ResultsFormatError, match=r"tier_a_scores.parquet.*'source'"):
        read_d06_results(root)


def test_nan_and_wrong_types_in_json_are_named(layout: Path) -> None:
    data = json.loads((layout / ARCS).read_text())
    data["results_by_bin"]["20-21"]["median_arc_snr"] = float("inf")
    (layout / ARCS).write_text(json.dumps(data))
    with pytest.raises(ResultsFormatError, match=r"results_by_bin\.20-21\.median_arc_snr.*finite"):
        read_d06_results(layout)
