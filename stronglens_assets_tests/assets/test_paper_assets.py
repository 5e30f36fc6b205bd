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
from stronglens_assets.assets.metadata import round_significant
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
from stronglens_assets.resources.object_store import LocalObjectStore
from stronglens_assets.resources.result_sets import read_result_set, write_result_set
from stronglens_assets.science.core.npz import encode_npz
from stronglens_assets.science.lensing.priors import load_priors, priors_sha256
from stronglens_assets.settings import PROJECT_ROOT, load_settings
from stronglens_assets_tests.harness import TEST_BRICKS, AssetHarness, local_resources, require_tool
from stronglens_assets_tests.paper_tools import (
    load_in_chromium,
    pdf_page_count,
    png_size,
)
from stronglens_assets_tests.science.reporting.published import (
    add_bright_arc_variants,
    add_per_object_inputs,
    add_poisson_grid,
    published_layout,
)
from stronglens_assets_tests.test_paper_command import PUBLISHED_TABLES

MODEL = "paperIV_bottlenecked_resnet"
CHECKPOINT_KEY = keys.CHECKPOINT_KEY.format(name=MODEL)
CHECKPOINT = b"frozen weights v1"
PRIORS_SHA = priors_sha256(load_priors(PROJECT_ROOT / "configs", "demo"))
D06_CONFIG_SHA = hashlib.sha256((PROJECT_ROOT / "configs" / "d06.yaml").read_bytes()).hexdigest()
N_IMAGES = 7
SHARD = "cutouts/positives/hpx-nest16-1105/v1/shard-00000.npz"


def _cutouts(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:101, :101] - 50.0
    galaxy = np.exp(-np.hypot(x, y) / 4.0)
    base = np.stack([0.2 * galaxy, 0.6 * galaxy, galaxy])
    return (base[None] + rng.normal(0, 0.01, (n, 3, 101, 101))).astype(np.float32)


def _summary(**extra) -> dict:
    return {
        "checkpoint_sha256": hashlib.sha256(CHECKPOINT).hexdigest(),
        "priors_sha256": PRIORS_SHA,
        "d06_config_sha256": D06_CONFIG_SHA,
        **extra,
    }


def _files(layout: Path, folder: str) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((layout / folder).iterdir()) if p.is_file()}


def fake_d06_assets(layout: Path) -> list[dg.AssetsDefinition]:
    """Stand-ins for the D06 / training / evaluation assets: the D06 ones write the published
    files (complete layout of the test data) as result sets, as assets/d06.py does."""

    def write(storage, name: str, files: dict[str, bytes]) -> None:
        write_result_set(storage.object_store(), keys.D06_ROOT, name, files)

    @dg.asset(partitions_def=grid_variant_partitions)
    def grid_completeness(context, storage: dg.ResourceParam[LocalStorageResource]) -> dict:
        variant = context.partition_key
        write(storage, f"grid_{variant}", _files(layout, f"grid_{variant}"))
        return _summary(variant=variant)

    @dg.asset(partitions_def=bright_arc_variant_partitions)
    def bright_arc(context, storage: dg.ResourceParam[LocalStorageResource]) -> dict:
        variant = context.partition_key
        i = BRIGHT_ARC_VARIANTS.index(variant)
        files = _files(layout, f"ba_{variant}")
        arrays = {
            "scores": np.random.default_rng(i).uniform(size=N_IMAGES),
            "theta_e": np.full(N_IMAGES, 1.5),
            "source_mag": np.linspace(18.5, 25.5, N_IMAGES),
            "images": _cutouts(N_IMAGES, seed=10 + i),
            "host_object_id": np.array([f"host-{j}" for j in range(N_IMAGES)]),
        }
        files["cutouts.npz"] = encode_npz(arrays)
        write(storage, f"ba_{variant}", files)
        return _summary(variant=variant)

    @dg.asset
    def linear_probe(storage: dg.ResourceParam[LocalStorageResource]) -> dict:
        write(storage, "linear_probe", _files(layout, "linear_probe"))
        return _summary()

    @dg.asset
    def tier_a_scoring(storage: dg.ResourceParam[LocalStorageResource]) -> dict:
        files = _files(layout, "tier_a_scoring")
        table = pd.read_parquet(io.BytesIO(files["tier_a_scores.parquet"]))
        storage.write_bytes(SHARD, encode_npz({"cutout": _cutouts(len(table) + 1, seed=3)}))
        table["cutout_key"] = SHARD
        table["cutout_row"] = np.arange(1, len(table) + 1)
        buffer = io.BytesIO()
        table.to_parquet(buffer, index=False)
        files["tier_a_scores.parquet"] = buffer.getvalue()
        write(storage, "tier_a_scoring", files)
        return _summary()

    @dg.asset
    def poisson_diagnostics(storage: dg.ResourceParam[LocalStorageResource]) -> dict:
        write(storage, "poisson_diagnostics", _files(layout, "poisson_diagnostics"))
        return {}

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
        self.layout = published_layout(tmp_path / "published")
        add_poisson_grid(self.layout)
        add_bright_arc_variants(self.layout)
        add_per_object_inputs(self.layout)
        self.harness = AssetHarness(
            [*fake_d06_assets(self.layout), *paper.build_assets(self.project)],
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


FIGURES = ["fig1_completeness", "fig2_embedding", "fig3_scores", "fig4_bright_arcs"]


def test_figures_and_summary_come_from_the_published_layout_reader(graph):
    figures = graph.root / "paper" / "figures"
    for name in FIGURES:
        assert pdf_page_count((figures / f"{name}.pdf").read_bytes()) == 1
        assert png_size((figures / f"{name}.png").read_bytes())[0] > 100
        assert f"figures/{name}.pdf" in (figures / f"{name}.tex").read_text()
    # the published counts travel through our result sets to the paper's summary
    summary = json.loads((graph.root / "paper" / "summary.json").read_text())
    rate = summary["completeness"]["no_poisson"]["p>0.3"]
    assert (rate["k"], rate["n"]) == (5697, 110000)
    assert [round(100 * v, 2) for v in rate["wilson95"]] == [5.05, 5.31]
    manifest = json.loads((graph.root / "paper" / "manifest.json").read_text())
    skipped = {s["output"] for s in manifest["skipped_outputs"]}
    assert "figures/fig5_real_vs_injection" in skipped  # no real_vs_injection cutouts
    metadata = graph.result.asset_materializations_for_node("paper_figures")[0].metadata
    assert metadata["fig1_completeness"].value.startswith("![fig1_completeness](data:image/png")
    # shown to 4 significant digits (the full value is in summary.json, checked above)
    assert metadata["completeness_no_poisson"].value == round_significant(5697 / 110000)


def test_tables_hold_the_upstream_numbers(graph):
    tables = graph.root / "paper" / "tables"
    names = {p.stem for p in tables.glob("*.tex")}
    assert PUBLISHED_TABLES | {"missed_tier_a", "calibration"} <= names
    thresholds = (tables / "completeness_thresholds.tex").read_text()
    assert r"$p > 0.3$ & 5,697/110,000 & 5.18 [5.05, 5.31]" in thresholds
    assert r"all & -- & 500 & 0.0123 & 0.0456" in (tables / "calibration.tex").read_text()
    assert "figures/fig1_completeness" not in (tables / "skipped.tex").read_text()
    # the local environment is the embedded default: every table says so
    for table in tables.glob("*.tex"):
        if table.name != "skipped.tex":
            assert table.read_text().startswith("% Data: embedded default (mock DR10)")
    # ... and every figure caption and the manifest (visible in the PDF, not only in a comment)
    figures = sorted((graph.root / "paper" / "figures").glob("fig*.tex"))
    assert figures
    for figure in figures:
        assert "Data: embedded default (mock DR10)" in figure.read_text(), figure.name
    manifest = json.loads((graph.root / "paper" / "manifest.json").read_text())
    assert manifest["data"].startswith("Data: embedded default (mock DR10)")


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
    config = paper.load_paper_config(PROJECT_ROOT / "configs")
    # Tier-A lenses (112, at most html_max_real) + the baseline variant's stored images
    expected = min(112, config.gallery.html_max_real) + N_IMAGES
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


def test_malformed_result_fails_clearly_and_keeps_previous_outputs(graph):
    figure = graph.root / "paper" / "figures" / "fig1_completeness.pdf"
    before = figure.read_bytes()
    pointer = read_result_set(LocalObjectStore(graph.root), keys.D06_ROOT, "linear_probe")
    probe = graph.root / pointer.key("permutation_bootstrap_results.json")
    saved = probe.read_bytes()
    probe.write_text('{"observed_auc_folds": "not a list"}')
    try:
        result = graph.materialize(["paper_figures"])
        assert not result.success
        (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
        message = failure.step_failure_data.error.cause.message
        assert "permutation_bootstrap_results.json" in message
        assert figure.read_bytes() == before
    finally:
        probe.write_bytes(saved)


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


def test_provenance_refuses_results_computed_with_another_d06_config(graph):
    """Issue 23 item 1: d06.yaml edited after the D06 run (e.g. another seed): the provenance
    does not record the new config's sha256 for results made with the old one."""
    provenance = graph.root / keys.PROVENANCE_KEY
    before = provenance.read_bytes()
    config = graph.config_dir / "d06.yaml"
    original = config.read_text()
    config.write_text(original + "\n# edited after the D06 run\n")
    try:
        result = graph.materialize(["d06_provenance"])
        assert not result.success
        (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
        message = failure.step_failure_data.error.cause.message
        assert "d06.yaml" in message and "re-materialize" in message, message
        assert provenance.read_bytes() == before
    finally:
        config.write_text(original)


def test_tampered_result_file_is_refused_by_provenance_and_paper(graph):
    """Issue 23 item 1: a D06 result file edited after it was written (k 90 -> 162 style) no
    longer matches the sha256 its pointer records: d06_provenance and paper_tables fail and
    leave their previous outputs byte-identical."""
    provenance = graph.root / keys.PROVENANCE_KEY
    table = graph.root / "paper" / "tables" / "completeness_thresholds.tex"
    before = provenance.read_bytes(), table.read_bytes()
    pointer = read_result_set(LocalObjectStore(graph.root), keys.D06_ROOT, "grid_no_poisson")
    csv = graph.root / pointer.key("selection_function.csv")
    saved = csv.read_bytes()
    csv.write_bytes(saved.replace(b"5697", b"9999", 1) if b"5697" in saved else saved + b"\n")
    try:
        for asset in ("d06_provenance", "paper_tables"):
            result = graph.materialize([asset])
            assert not result.success, asset
            (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
            error = failure.step_failure_data.error
            text = str(error) + str(error.cause)
            assert "selection_function.csv" in text and "sha256" in text, (asset, text)
        assert (provenance.read_bytes(), table.read_bytes()) == before
    finally:
        csv.write_bytes(saved)


@pytest.mark.slow
def test_demo_writes_the_paper_outputs(demo_run, tmp_path):
    """The shared demo run: figures, gallery (in chromium), tables, provenance and its check,
    and the paper PDF built from what the demo wrote."""
    assert demo_run.returncode == 0, demo_run.stdout[-3000:]
    root = demo_run.storage
    figures = root / "paper" / "figures"
    for name in FIGURES:
        assert pdf_page_count((figures / f"{name}.pdf").read_bytes()) == 1
    source = paper.d06_source(LocalStorageResource(root=str(root)))
    tier_a = pd.read_parquet(io.BytesIO(source.read_bytes("tier_a_scoring/tier_a_scores.parquet")))
    with np.load(io.BytesIO(source.read_bytes("ba_baseline/cutouts.npz"))) as arrays:
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
