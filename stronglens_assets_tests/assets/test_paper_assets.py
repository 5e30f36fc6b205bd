"""Paper assets on hand-made D06 outputs: figures, tables, gallery (in a real browser),
provenance and its drift check, the LaTeX build, and bad input.

Stand-in upstream assets with the real keys (``grid_completeness``, ``bright_arc``, ...)
write small D06 results in the contract's storage layout, so these tests exercise the paper
assets' wiring without training a model. The end-to-end test reads the shared demo run.
"""

import hashlib
import io
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from stronglens_assets import storage_keys as keys
from stronglens_assets.assets import paper
from stronglens_assets.config import Footprint
from stronglens_assets.partitions import (
    BRIGHT_ARC_VARIANTS,
    GRID_VARIANTS,
    bright_arc_variant_partitions,
    grid_variant_partitions,
    static_partitions_def,
)
from stronglens_assets.project import Project
from stronglens_assets.resources import LocalStorageResource
from stronglens_assets.science.core.npz import encode_npz
from stronglens_assets.science.lensing.priors import load_priors, priors_sha256
from stronglens_assets.settings import PROJECT_ROOT, load_settings
from stronglens_assets_tests.harness import TEST_BRICKS, AssetHarness, local_resources, require_tool
from stronglens_assets_tests.paper_tools import (
    load_in_chromium,
    pdf_page_count,
    png_size,
)

MODEL = "paperIV_bottlenecked_resnet"
CHECKPOINT_KEY = keys.CHECKPOINT_KEY.format(name=MODEL)
CHECKPOINT = b"frozen weights v1"
PRIORS_SHA = priors_sha256(load_priors(PROJECT_ROOT / "configs", "demo"))
THETA = (0.75, 1.5, 2.5)
MAGS = (20.0, 22.0, 24.0)
N_CELL = 10
N_REAL = 5
N_IMAGES = 7


def _cutouts(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:101, :101] - 50.0
    galaxy = np.exp(-np.hypot(x, y) / 4.0)
    base = np.stack([0.2 * galaxy, 0.6 * galaxy, galaxy])
    return (base[None] + rng.normal(0, 0.01, (n, 3, 101, 101))).astype(np.float32)


def _selection(variant: str) -> pd.DataFrame:
    """3 theta_E x 3 mags x 2 beta_frac cells; k known from a fixed rule."""
    rows = []
    for i, (theta, mag, beta) in enumerate(
        (t, m, b) for t in THETA for m in MAGS for b in (0.2, 0.6)
    ):
        k = (i * 3 + (variant == "poisson")) % (N_CELL + 1)
        rows.append(
            {
                "cell": i,
                "theta_e": theta,
                "source_mag": mag,
                "beta_frac": beta,
                "n_sersic": 1.0,
                "r_eff": 0.3,
                "axis_ratio": 0.8,
                "n": N_CELL,
                "k": k,
            }
        )
    table = pd.DataFrame(rows)
    table["completeness"] = table["k"] / table["n"]
    return table


def _summary(**extra) -> dict:
    return {
        "checkpoint_sha256": hashlib.sha256(CHECKPOINT).hexdigest(),
        "priors_sha256": PRIORS_SHA,
        **extra,
    }


def fake_d06_assets() -> list[dg.AssetsDefinition]:
    """Stand-ins for the D06 / training / evaluation assets writing the contract's files."""

    @dg.asset(partitions_def=grid_variant_partitions)
    def grid_completeness(context, storage: dg.ResourceParam[LocalStorageResource]) -> dict:
        variant = context.partition_key
        table = _selection(variant)
        buffer = io.BytesIO()
        table.to_parquet(buffer, index=False)
        storage.write_bytes(keys.SELECTION_KEY.format(variant=variant), buffer.getvalue())
        total = int(table["n"].sum())
        overall = {
            f"{t:g}": {
                "k": int(table["k"].sum()) if t == 0.3 else int(table["k"].sum()) // 2,
                "n": total,
            }
            for t in (0.3, 0.5)
        }
        results = {"threshold": 0.3, "overall": overall, "n_injections": total}
        storage.write_bytes(
            keys.GRID_RESULTS_KEY.format(variant=variant), json.dumps(results).encode()
        )
        return _summary(variant=variant)

    @dg.asset(partitions_def=bright_arc_variant_partitions)
    def bright_arc(context, storage: dg.ResourceParam[LocalStorageResource]) -> dict:
        variant = context.partition_key
        i = BRIGHT_ARC_VARIANTS.index(variant)
        rng = np.random.default_rng(i)
        scores = rng.uniform(size=40) ** (1 + i)
        counts, edges = np.histogram(scores, bins=20, range=(0, 1))
        results = {
            "n": 40,
            "rates": {f"{t:g}": {"k": int((scores > t).sum()), "n": 40} for t in (0.3, 0.5, 0.9)},
            "score_histogram": {"edges": edges.tolist(), "counts": counts.tolist()},
        }
        storage.write_bytes(
            keys.BRIGHT_ARC_RESULTS_KEY.format(variant=variant), json.dumps(results).encode()
        )
        arrays = {
            "scores": scores,
            "theta_e": np.linspace(1, 2, 40),
            "source_mag": np.full(40, 19.5),
            "images": _cutouts(N_IMAGES, seed=10 + i),
            "host_object_id": np.array([f"host-{j}" for j in range(40)]),
            "bands": np.array(["g", "r", "z"]),
        }
        storage.write_bytes(keys.BRIGHT_ARC_CUTOUTS_KEY.format(variant=variant), encode_npz(arrays))
        return _summary(variant=variant)

    @dg.asset
    def linear_probe(storage: dg.ResourceParam[LocalStorageResource]) -> dict:
        rng = np.random.default_rng(5)
        auc = {"auc_mean": 0.99, "auc_std": 0.01, "n_folds": 3}
        by_mode = {
            mode: {
                "tier_a_vs_injections": {**auc, "auc_mean": 0.99 if mode != "random" else 0.98},
                "frechet_tier_a_vs_injections": {"distance": 12.0 + (mode == "random")},
                "hosts": {"mode": mode, "distinct_hosts": 4},
            }
            for mode in ("random", "tier_a_matched")
        }
        results = {  # the layout of assets/d06.py's linear_probe
            "tier_a_vs_injections": {**auc, "hosts": "tier_a_matched"},
            "tier_a_vs_tier_b": {"auc_mean": 0.75, "auc_std": 0.05, "n_folds": 3},
            "frechet": {
                "tier_a_vs_injections": {"distance": 12.0},
                "tier_a_vs_tier_b": {"distance": 2.0},
            },
            "by_host_matching": by_mode,
        }
        storage.write_bytes(keys.PROBE_RESULTS_KEY, json.dumps(results).encode())
        embeddings = {
            "tier_a": rng.normal(size=(8, 6)),
            "tier_b": rng.normal(size=(9, 6)) + 1,
            "injections": rng.normal(size=(10, 6)) - 2,
        }
        storage.write_bytes(keys.PROBE_EMBEDDINGS_KEY, encode_npz(embeddings))
        return _summary()

    @dg.asset
    def tier_a_scoring(storage: dg.ResourceParam[LocalStorageResource]) -> dict:
        shard = "cutouts/positives/hpx-nest16-1105/v1/shard-00000.npz"
        storage.write_bytes(shard, encode_npz({"cutout": _cutouts(N_REAL + 1, seed=3)}))
        table = pd.DataFrame(
            {
                "object_id": [f"DESI-{i:03d}" for i in range(N_REAL)],
                "score": np.linspace(0.1, 0.9, N_REAL),
                "cutout_key": shard,
                "cutout_row": np.arange(1, N_REAL + 1),
                "source": "lenscat",
            }
        )
        buffer = io.BytesIO()
        table.to_parquet(buffer, index=False)
        storage.write_bytes(keys.TIER_A_SCORES_KEY, buffer.getvalue())
        return _summary()

    @dg.asset
    def poisson_diagnostics() -> dict:
        return _summary()

    @dg.asset
    def injection_priors() -> dict:
        return {"sha256": PRIORS_SHA}

    models = static_partitions_def([MODEL, "resnet18_baseline_v1"])

    @dg.asset
    def training_manifest() -> dict:
        return {"rows": 3}

    @dg.asset(partitions_def=models, deps=[training_manifest])
    def model_checkpoint(context, storage: dg.ResourceParam[LocalStorageResource]) -> dict:
        key = f"checkpoints/{context.partition_key}/best.pt"
        storage.write_bytes(key, CHECKPOINT)
        return {
            "model_config": context.partition_key,
            "checkpoint_key": key,
            "sha256": hashlib.sha256(CHECKPOINT).hexdigest(),
        }

    @dg.asset(partitions_def=models)
    def calibration_report() -> dict:
        return {
            "ece": 0.0123,
            "mce": 0.0456,
            "n_bins": 15,
            "convention": "binary: p(lens) against the label",
            "n": 500,
            "by_stratum": {"tier": {"A": {"n": 20, "ece": 0.05, "mce": 0.2}}},
        }

    return [
        training_manifest,
        grid_completeness,
        bright_arc,
        linear_probe,
        tier_a_scoring,
        poisson_diagnostics,
        injection_priors,
        model_checkpoint,
        calibration_report,
    ]


PAPER_KEYS = ["paper_figures", "paper_tables", "comparison_gallery", "d06_provenance"]


class PaperGraph:
    """Fake D06 upstream + the real paper assets on a private config dir and storage."""

    def __init__(self, tmp_path: Path, instance: dg.DagsterInstance):
        self.config_dir = tmp_path / "configs"
        shutil.copytree(PROJECT_ROOT / "configs", self.config_dir)
        settings = load_settings(
            {
                "STRONGLENS_HOME": str(tmp_path / "home"),
                "STRONGLENS_CONFIG_DIR": str(self.config_dir),
            }
        )
        self.project = Project(
            settings=settings, footprint=Footprint(partition_nside=16, bricks=TEST_BRICKS)
        )
        self.storage = LocalStorageResource(root=str(tmp_path / "storage"))
        self.root = Path(self.storage.root)
        self.harness = AssetHarness(
            [*fake_d06_assets(), *paper.build_assets(self.project)],
            local_resources(self.storage),
            instance,
        )
        self.resources = self.harness.resources
        self.assets = self.harness.assets
        self.instance = self.harness.instance

    def materialize(self, selection, partition_key=None) -> dg.ExecuteInProcessResult:
        return self.harness.run(selection, partition_key)

    def materialize_upstream(self) -> None:
        assert self.materialize(["training_manifest"]).success
        for variant in GRID_VARIANTS:
            assert self.materialize(["grid_completeness"], variant).success
        for variant in BRIGHT_ARC_VARIANTS:
            assert self.materialize(["bright_arc"], variant).success
        for name in (MODEL, "resnet18_baseline_v1"):
            assert self.materialize(["model_checkpoint", "calibration_report"], name).success
        assert self.materialize(
            ["linear_probe", "tier_a_scoring", "poisson_diagnostics", "injection_priors"]
        ).success

    def check_only(self) -> dg.AssetCheckEvaluation:
        result = self.materialize(dg.AssetSelection.checks_for_assets("d06_provenance"))
        (evaluation,) = result.get_asset_check_evaluations()
        return evaluation


@pytest.fixture(scope="module")
def graph(tmp_path_factory) -> Iterator[PaperGraph]:
    with dg.DagsterInstance.ephemeral() as instance:
        graph = PaperGraph(tmp_path_factory.mktemp("paper"), instance)
        graph.materialize_upstream()
        result = graph.materialize(PAPER_KEYS)
        assert result.success, [e.message for e in result.all_events if e.is_failure]
        graph.result = result
        yield graph


def test_figures_have_their_panels_pages_sizes_and_captions(graph):
    figures = graph.root / "paper" / "figures"
    names = sorted(p.stem for p in figures.glob("fig[1-4]_*.json"))
    assert names == [
        "fig1_completeness_no_poisson",
        "fig2_completeness_poisson",
        "fig3_linear_probe",
        "fig4_bright_arc",
    ]
    for name in names:
        sidecar = json.loads((figures / f"{name}.json").read_text())
        assert len(sidecar["caption"]) > 80
        assert pdf_page_count((figures / f"{name}.pdf").read_bytes()) == 1
        width, height = sidecar["size_inches"]
        dpi = sidecar["png_dpi"]
        assert png_size((figures / f"{name}.png").read_bytes()) == (
            round(width * dpi),
            round(height * dpi),
        )
    # two panels side by side: the figures are wider than tall
    assert all(
        json.loads((figures / f"{n}.json").read_text())["size_inches"][0]
        > json.loads((figures / f"{n}.json").read_text())["size_inches"][1]
        for n in names
    )
    # the caption of Figure 1 reports the overall completeness of the table it drew
    table = _selection("no_poisson")
    caption = json.loads((figures / f"{names[0]}.json").read_text())["caption"]
    assert f"{int(table['k'].sum())} of {int(table['n'].sum())}" in caption
    tex = (figures / "figures.tex").read_text()
    assert tex.count(r"\begin{figure*}") == 4 and "figures/fig3_linear_probe.pdf" in tex
    metadata = graph.result.asset_materializations_for_node("paper_figures")[0].metadata
    for number in range(1, 5):
        text = metadata[f"figure_{number}"].value
        assert text.startswith(f"![Figure {number}](data:image/png;base64,")


def test_tables_hold_the_upstream_numbers(graph):
    tables = graph.root / "paper" / "tables"
    assert sorted(p.name for p in tables.glob("*.tex")) == [
        "bright_arc.tex",
        "calibration.tex",
        "completeness_source_mag.tex",
        "completeness_summary.tex",
        "completeness_theta_e.tex",
        "linear_probe.tex",
    ]
    k = int(_selection("poisson")["k"].sum())
    n = int(_selection("poisson")["n"].sum())
    summary = (tables / "completeness_summary.tex").read_text()
    assert f"poisson & $p > 0.3$ & {k} & {n} & {100 * k / n:.2f} [" in summary
    probe = (tables / "linear_probe.tex").read_text()
    assert r"Tier-A vs injections & tier\_a\_matched & $0.990 \pm 0.010$ & 3 & 12" in probe
    assert r"Tier-A vs injections & random & $0.980 \pm 0.010$ & 3 & 13" in probe
    assert r"Tier-A vs Tier-B & -- & $0.750 \pm 0.050$ & 3 & 2" in probe
    assert probe.count("Tier-A vs injections") == 2
    assert r"all & -- & 500 & 0.0123 & 0.0456" in (tables / "calibration.tex").read_text()
    assert all(v in (tables / "bright_arc.tex").read_text() for v in ("gain\\_1e12", "clip20"))
    # the local environment is the embedded default: every table says so
    for table in tables.glob("*.tex"):
        assert table.read_text().startswith("% Data: embedded default (mock DR10)")


def test_gallery_pdf_and_html_in_headless_chromium(graph, tmp_path):
    figure5 = graph.root / "results" / "D06" / "comparison_figure"
    assert pdf_page_count((figure5 / "figure5.pdf").read_bytes()) == 1
    sidecar = json.loads((figure5 / "figure5.json").read_text())
    assert "Lupton" in sidecar["caption"]
    # honest labels: lenscat lenses of the embedded default are mock, never "real"
    assert sidecar["caption"].startswith("Mock Tier-A lenses (top row")
    assert "embedded default (mock DR10)" in sidecar["caption"]
    assert "real" not in sidecar["caption"].lower().replace("realism", "")
    page = graph.root / "results" / "D06" / "gallery" / "index.html"
    html_text = page.read_text()
    assert 'data-kind="real"' not in html_text and 'data-kind="mock"' in html_text
    assert "embedded default (mock DR10)" in html_text
    expected = N_REAL + N_IMAGES  # Tier-A lenses + the baseline variant's stored images
    assert f'data-expected-thumbnails="{expected}"' in page.read_text()
    loaded = load_in_chromium(page.as_uri() + "#sort=score-desc", tmp_path / "profile")
    assert loaded.console == []
    assert f'data-thumbnails-loaded="{expected}"' in loaded.dom


def test_provenance_records_inputs_and_check_fails_on_config_drift(graph):
    record = json.loads((graph.root / keys.PROVENANCE_KEY).read_text())
    assert record["checkpoint"]["sha256"] == hashlib.sha256(CHECKPOINT).hexdigest()
    assert record["checkpoint"]["key"] == CHECKPOINT_KEY
    assert "paper.yaml" in record["configs"] and "injection_priors.yaml" in record["configs"]
    assert (
        record["configs"]["d06.yaml"]
        == hashlib.sha256((graph.config_dir / "d06.yaml").read_bytes()).hexdigest()
    )
    assert set(record["git"]) == {"commit", "dirty", "reason"}
    assert record["packages"]["dagster"] == dg.__version__
    assert record["priors_sha256"] == PRIORS_SHA
    upstream = {(u["asset"], u["partition"]): u for u in record["upstream"]}
    assert {("grid_completeness", v) for v in GRID_VARIANTS} <= set(upstream)
    assert {("bright_arc", v) for v in BRIGHT_ARC_VARIANTS} <= set(upstream)
    assert ("model_checkpoint", MODEL) in upstream and ("injection_priors", None) in upstream
    assert ("training_manifest", None) in upstream  # lineage followed beyond direct parents
    latest = graph.instance.get_latest_materialization_event(dg.AssetKey("linear_probe"))
    assert upstream[("linear_probe", None)]["run_id"] == latest.run_id
    assert all(u["data_version"] and u["timestamp"].endswith("Z") for u in upstream.values())
    assert record["run_id"] == graph.result.run_id
    (check,) = [
        e
        for e in graph.result.get_asset_check_evaluations()
        if e.asset_key.path == ["d06_provenance"]
    ]
    assert check.passed

    priors = graph.config_dir / "injection_priors.yaml"
    original = priors.read_bytes()
    priors.write_bytes(original + b"\n# edited\n")
    try:
        drifted = graph.check_only()
        assert not drifted.passed
        assert drifted.severity == dg.AssetCheckSeverity.ERROR
        assert drifted.metadata["changed_configs"].value == ["injection_priors.yaml"]
    finally:
        priors.write_bytes(original)
    assert graph.check_only().passed


def test_provenance_check_fails_when_the_checkpoint_changes(graph):
    checkpoint = graph.root / CHECKPOINT_KEY
    original = checkpoint.read_bytes()
    checkpoint.write_bytes(b"retrained weights")
    try:
        evaluation = graph.check_only()
        assert not evaluation.passed
        assert "changed" in evaluation.metadata["checkpoint"].value
    finally:
        checkpoint.write_bytes(original)
    assert graph.check_only().passed


def test_paper_builds_with_latexmk(graph, tmp_path):
    require_tool("latexmk", "paper/build needs latexmk and TeX Live (Debian packages)")
    pdfinfo = require_tool("pdfinfo", "page counts of the built paper need poppler-utils")
    out = tmp_path / "out"
    result = subprocess.run(
        [
            str(PROJECT_ROOT / "paper" / "build"),
            "--generated",
            str(graph.root / "paper"),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    info = subprocess.run([pdfinfo, str(out / "main.pdf")], capture_output=True, text=True)
    pages = int(
        next(line for line in info.stdout.splitlines() if line.startswith("Pages:")).split()[1]
    )
    assert pages >= 3
    log = (out / "main.log").read_text(errors="replace")
    assert "undefined" not in log.lower() or "Reference" not in log


def test_paper_build_says_when_outputs_are_missing(tmp_path):
    require_tool("latexmk", "paper/build needs latexmk")
    result = subprocess.run(
        [
            str(PROJECT_ROOT / "paper" / "build"),
            "--generated",
            str(tmp_path / "none"),
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 4 and "materialize them first" in result.stderr


def test_paper_build_says_when_latexmk_is_missing(tmp_path):
    bash = shutil.which("bash")
    result = subprocess.run(
        [bash, str(PROJECT_ROOT / "paper" / "build")],
        capture_output=True,
        text=True,
        env={"PATH": str(tmp_path)},  # nothing on PATH: the script's first need is latexmk
        check=False,
    )
    assert result.returncode == 3 and "latexmk is not installed" in result.stderr
    assert "command not found" not in result.stderr


def test_missing_result_fails_clearly_and_keeps_previous_outputs(graph):
    figure = graph.root / "paper" / "figures" / "fig1_completeness_no_poisson.pdf"
    before = figure.read_bytes()
    probe = graph.root / keys.PROBE_RESULTS_KEY
    saved = probe.read_bytes()
    # a changed grid table would change Figure 1, but the missing probe stops the run first
    selection = graph.root / keys.SELECTION_KEY.format(variant="no_poisson")
    saved_selection = selection.read_bytes()
    table = pd.read_parquet(selection)
    table["k"] = 0
    table.to_parquet(selection, index=False)
    probe.unlink()
    try:
        result = graph.materialize(["paper_figures"])
        assert not result.success
        (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
        message = failure.step_failure_data.error.cause.message
        assert "linear_probe_results.json is missing" in message
        assert figure.read_bytes() == before
    finally:
        probe.write_bytes(saved)
        selection.write_bytes(saved_selection)


def test_bad_paper_config_names_the_field(tmp_path):
    from stronglens_assets.config import ConfigError

    (tmp_path / "paper.yaml").write_text("gallery:\n  injection_variants: [baseline, nope]\n")
    with pytest.raises(ConfigError, match=r"paper.yaml[\s\S]*injection_variants"):
        paper.load_paper_config(tmp_path)
    (tmp_path / "paper.yaml").write_text("figures:\n  dpi: 5\n")
    with pytest.raises(ConfigError, match=r"figures.dpi"):
        paper.load_paper_config(tmp_path)


def test_provenance_refuses_results_computed_with_other_priors(graph):
    """Priors edited after the D06 run: the provenance is not rewritten to bless them."""
    provenance = graph.root / keys.PROVENANCE_KEY
    before = provenance.read_bytes()
    priors = graph.config_dir / "injection_priors.yaml"
    original = priors.read_text()
    edited = re.sub(r"^version: .*$", "version: edited_v2", original, count=1, flags=re.M)
    assert edited != original
    priors.write_text(edited)
    try:
        result = graph.materialize(["d06_provenance"])
        assert not result.success
        (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
        assert "other injection priors" in failure.step_failure_data.error.cause.message
        assert provenance.read_bytes() == before
    finally:
        priors.write_text(original)


@pytest.mark.slow
def test_demo_writes_the_paper_outputs(demo_run, tmp_path):
    """The shared demo run: figures, gallery (in chromium), tables, provenance and its check,
    and the paper PDF built from what the demo wrote."""
    assert demo_run.returncode == 0, demo_run.stdout[-3000:]
    root = demo_run.storage
    figures = root / "paper" / "figures"
    for name in (
        "fig1_completeness_no_poisson",
        "fig2_completeness_poisson",
        "fig3_linear_probe",
        "fig4_bright_arc",
    ):
        assert pdf_page_count((figures / f"{name}.pdf").read_bytes()) == 1
        sidecar = json.loads((figures / f"{name}.json").read_text())
        width, height = sidecar["size_inches"]
        assert png_size((figures / f"{name}.png").read_bytes()) == (
            round(width * sidecar["png_dpi"]),
            round(height * sidecar["png_dpi"]),
        )
    tier_a = pd.read_parquet(root / keys.TIER_A_SCORES_KEY)
    with np.load(root / keys.BRIGHT_ARC_CUTOUTS_KEY.format(variant="baseline")) as arrays:
        images = len(arrays["images"])
    config = paper.load_paper_config(PROJECT_ROOT / "configs")
    expected = min(len(tier_a), config.gallery.html_max_real) + min(
        images, config.gallery.html_max_injections
    )
    page = root / keys.GALLERY_KEY
    loaded = load_in_chromium(page.as_uri(), tmp_path / "profile")
    assert loaded.console == []
    assert f'data-thumbnails-loaded="{expected}"' in loaded.dom
    record = json.loads((root / keys.PROVENANCE_KEY).read_text())
    assert (
        record["configs"]["paper.yaml"]
        == hashlib.sha256((PROJECT_ROOT / "configs" / "paper.yaml").read_bytes()).hexdigest()
    )
    assets = {u["asset"] for u in record["upstream"]}
    assert {"grid_completeness", "bright_arc", "model_checkpoint", "negative_cutouts"} <= assets
    with dg.DagsterInstance.from_config(str(demo_run.dagster_home)) as instance:
        key = dg.AssetCheckKey(dg.AssetKey("d06_provenance"), "provenance_checksums_match")
        (latest,) = instance.event_log_storage.get_asset_check_execution_history(key, limit=1)
        assert latest.status.value == "SUCCEEDED"
        evaluation = latest.event.dagster_event.event_specific_data
        assert evaluation.passed
    require_tool("latexmk", "paper/build needs latexmk and TeX Live (Debian packages)")
    result = subprocess.run(
        [
            str(PROJECT_ROOT / "paper" / "build"),
            "--generated",
            str(root / "paper"),
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "main.pdf").stat().st_size > 10_000
