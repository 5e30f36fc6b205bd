"""`stronglens paper`: the paper's outputs from a results directory in the published layout."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
from pathlib import Path

import pytest

from stronglens_assets.cli import main
from stronglens_assets.science.core.hashing import sha256_bytes
from stronglens_assets.science.reporting.d06_results import read_d06_results
from stronglens_assets.science.reporting.paper_summary import build_summary
from stronglens_assets_tests.harness import require_tool
from stronglens_assets_tests.paper_tools import pdf_page_count, png_size
from stronglens_assets_tests.science.reporting.published import (
    PUBLISHED_DIR,
    complete_layout,
    published_layout,
)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PUBLISHED_TABLES = {
    "tier_a_recall",
    "completeness_thresholds",
    "completeness_theta_e",
    "completeness_magnitude",
    "bright_arc",
    "mcnemar",
    "probe",
    "skipped",
    "inputs",
}


@pytest.fixture(scope="module")
def published_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """``stronglens paper`` on the published files laid out as the published directory."""
    base = tmp_path_factory.mktemp("paper")
    layout = published_layout(base / "D06")
    out = base / "out"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert main(["paper", "--results", str(layout), "--out", str(out)]) == 0
    return layout, out, stdout.getvalue()


def test_paper_command_writes_what_the_published_files_allow(published_run) -> None:
    layout, out, stdout = published_run
    tables = {p.stem for p in (out / "tables").glob("*.tex")}
    assert tables == PUBLISHED_TABLES
    figures = sorted(p.name for p in (out / "figures").iterdir())
    assert figures == [
        f"{n}.{e}" for n in ("fig1_completeness", "fig4_bright_arcs") for e in ("pdf", "png", "tex")
    ]
    for name in ("fig1_completeness", "fig4_bright_arcs"):
        assert pdf_page_count((out / "figures" / f"{name}.pdf").read_bytes()) == 1
        width, height = png_size((out / "figures" / f"{name}.png").read_bytes())
        assert width == 1005 and height > 800  # 3.35 in at 300 dpi
    summary = json.loads((out / "summary.json").read_text())
    assert summary == json.loads(json.dumps(build_summary(read_d06_results(layout))))
    assert summary["completeness"]["no_poisson"]["p>0.3"]["k"] == 5697
    # it says what it skipped and why
    for text in (
        "grid_poisson/selection_function.csv",
        "ba_unrestricted/bright_arc_results.json",
        "figures/fig2_embedding: needs the per-object embeddings linear_probe/embeddings.npz",
        "figures/fig3_scores: needs per-object scores",
        "figures/fig5_real_vs_injection: needs cutouts",
        "tables/missed_tier_a.tex: needs the per-lens scores",
        "26 of 26 agree",
    ):
        assert text in stdout, text
    skipped = (out / "tables" / "skipped.tex").read_text()
    assert "fig2\\_embedding" in skipped and "embeddings.npz" in skipped


def test_manifest_records_inputs_checks_and_outputs(published_run) -> None:
    layout, out, _ = published_run
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["results"] == str(layout.resolve()) and manifest["layout"] == "nested"
    for item in manifest["inputs"]:
        assert item["sha256"] == sha256_bytes((layout / item["key"]).read_bytes())
    assert len(manifest["inputs"]) == 7 and len(manifest["missing_inputs"]) == 10
    assert all(check["ok"] for check in manifest["checks"])
    for path, digest in manifest["outputs"].items():
        assert sha256_bytes((out / path).read_bytes()) == digest, path
    assert {s["output"] for s in manifest["skipped_outputs"]} >= {"figures/fig2_embedding"}


def test_same_inputs_give_the_same_bytes(published_run, tmp_path: Path) -> None:
    layout, out, _ = published_run
    again = tmp_path / "again"
    assert main(["paper", "--results", str(layout), "--out", str(again)]) == 0
    first = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    second = {p.relative_to(again): p.read_bytes() for p in again.rglob("*") if p.is_file()}
    assert first == second


def test_the_flat_test_data_and_a_comparison(tmp_path: Path, capsys) -> None:
    layout = published_layout(tmp_path / "D06")
    out = tmp_path / "out"
    code = main(
        ["paper", "--results", str(layout), "--out", str(out), "--compare", str(PUBLISHED_DIR)]
    )
    assert code == 0
    stdout = capsys.readouterr().out
    assert f"comparing with {PUBLISHED_DIR}" in stdout
    comparison = json.loads((out / "comparison.json").read_text())
    rows = comparison["rows"]
    assert len(rows) > 40 and all(r["difference"] in (0, 0.0, None) for r in rows)
    assert all(r["intervals_overlap"] in (True, None) for r in rows)
    assert "Published vs this run" in (out / "tables" / "comparison.tex").read_text()


def test_a_malformed_input_fails_naming_it_and_keeps_the_previous_outputs(
    published_run, tmp_path: Path, capsys
) -> None:
    _, out, _ = published_run
    broken = published_layout(tmp_path / "D06")
    data = json.loads((broken / "ba_baseline/bright_arc_results.json").read_text())
    data["results_by_bin"]["22-23"]["detection_rate_p03"] = 1.7
    (broken / "ba_baseline/bright_arc_results.json").write_text(json.dumps(data))
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert main(["paper", "--results", str(broken), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "ba_baseline/bright_arc_results.json" in err
    assert "results_by_bin.22-23.detection_rate_p03" in err and "above 1.0" in err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert main(["paper", "--results", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["paper", "--results", str(tmp_path / "empty"), "--out", str(out)]) == 2
    assert "no D06 results in" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_outputs_of_inputs_now_absent_are_removed(tmp_path: Path, capsys) -> None:
    complete = complete_layout(tmp_path / "complete")
    out = tmp_path / "out"
    (out / "notes").mkdir(parents=True)
    (out / "notes" / "mine.txt").write_text("kept")
    assert main(["paper", "--results", str(complete), "--out", str(out), "--embedding", "pca"]) == 0
    stdout = capsys.readouterr().out
    assert "skipped 1:" in stdout and "no reference directory" in stdout
    figures = {p.stem for p in (out / "figures").glob("*.pdf")}
    assert figures == {
        "fig1_completeness",
        "fig2_embedding",
        "fig3_scores",
        "fig4_bright_arcs",
        "fig5_real_vs_injection",
    }
    assert (out / "tables" / "missed_tier_a.tex").is_file()
    assert "Principal-component map" in (out / "figures" / "fig2_embedding.tex").read_text()
    published = published_layout(tmp_path / "published")
    assert main(["paper", "--results", str(published), "--out", str(out)]) == 0
    assert {p.stem for p in (out / "figures").glob("*.pdf")} == {
        "fig1_completeness",
        "fig4_bright_arcs",
    }
    assert not (out / "tables" / "missed_tier_a.tex").exists()
    assert (out / "notes" / "mine.txt").read_text() == "kept"
    assert not list(out.glob(".paper-*"))


def test_s3_results(tmp_path: Path, s3_server: str, s3_bucket: str, monkeypatch) -> None:
    import boto3

    layout = published_layout(tmp_path / "D06")
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-2")
    for path in layout.rglob("*"):
        if path.is_file():
            client.put_object(
                Bucket=s3_bucket,
                Key="dl/D06/" + path.relative_to(layout).as_posix(),
                Body=path.read_bytes(),
            )
    monkeypatch.setenv("STRONGLENS_S3_ENDPOINT_URL", s3_server)
    out = tmp_path / "out"
    assert main(["paper", "--results", f"s3://{s3_bucket}/dl/D06", "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["results"] == f"s3://{s3_bucket}/dl/D06"
    local = tmp_path / "local"
    assert main(["paper", "--results", str(layout), "--out", str(local)]) == 0
    assert (out / "summary.json").read_bytes() == (local / "summary.json").read_bytes()
    assert (out / "figures/fig1_completeness.pdf").read_bytes() == (
        local / "figures/fig1_completeness.pdf"
    ).read_bytes()


def test_check_tex_covers_the_results_document() -> None:
    require_tool("kpsewhich", "paper/check-tex needs TeX Live (Debian packages)")
    result = subprocess.run(
        [str(PROJECT_ROOT / "paper" / "check-tex")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "results.tex" in result.stdout


@pytest.mark.slow
def test_paper_build_makes_a_pdf_from_the_command_outputs(published_run, tmp_path: Path) -> None:
    require_tool("latexmk", "paper/build needs latexmk and TeX Live (Debian packages)")
    _, out, _ = published_run
    build = tmp_path / "build"
    result = subprocess.run(
        [str(PROJECT_ROOT / "paper" / "build"), "--generated", str(out), "--out", str(build)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    pdfinfo = require_tool("pdfinfo", "page counts of the built paper need poppler-utils")
    info = subprocess.run([pdfinfo, str(build / "main.pdf")], capture_output=True, text=True)
    pages = int(next(x for x in info.stdout.splitlines() if x.startswith("Pages:")).split()[1])
    assert pages >= 5
    log = (build / "main.log").read_text(errors="replace")
    assert "Reference" not in log or "undefined" not in log
    assert (
        "Tables and figures regenerated from a D06 results directory"
        in (build / "main.tex").read_text()
    )
