"""The UI as a user sees it: ``dagster-webserver`` on the demo's instance, its GraphQL API, and
a headless-chromium screenshot of the asset graph. Everything stays on 127.0.0.1."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import numpy as np
import pytest

from stronglens_assets.definitions import build_definitions
from stronglens_assets.settings import PROJECT_ROOT, load_settings
from stronglens_assets_tests.assets.test_metadata import significant_digits
from stronglens_assets_tests.harness import DemoRun, require_tool
from stronglens_assets_tests.paper_tools import CHROMIUM_OFFLINE_FLAGS

QUERY = """
{ assetNodes {
    assetKey { path }
    isMaterializable
    assetMaterializations(limit: 1) { runId timestamp partition }
} }
"""

#: Chromium without any traffic of its own (no updates, sync, metrics, first-run pages).
CHROMIUM_FLAGS = (
    *CHROMIUM_OFFLINE_FLAGS,
    "--disable-default-apps",
    "--disable-extensions",
    "--metrics-recording-only",
    "--hide-scrollbars",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _graphql(port: int, query: str) -> dict:
    return _graphql_vars(port, query, {})


def _graphql_vars(port: int, query: str, variables: dict) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query, "variables": variables}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        payload = json.load(response)
    assert "errors" not in payload, payload.get("errors")
    return payload["data"]


@pytest.fixture(scope="module")
def webserver(demo_run: DemoRun) -> Iterator[int]:
    """``dagster-webserver`` on 127.0.0.1 serving the demo's instance; yields its port."""
    assert demo_run.returncode == 0, demo_run.stdout[-3000:] + demo_run.stderr[-3000:]
    port = _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("STRONGLENS_", "AWS_")) and k != "DAGSTER_HOME"
    }
    env.update({"DAGSTER_HOME": str(demo_run.dagster_home), "STRONGLENS_HOME": str(demo_run.home)})
    log = (demo_run.home / "webserver.log").open("w")
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "dagster-webserver"),
            "-w",
            str(PROJECT_ROOT / "workspace.yaml"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        env=env,
        cwd=PROJECT_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                nodes = _graphql(port, "{ assetNodes { id } }")["assetNodes"]
                if nodes:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                pytest.fail(f"webserver did not come up: {(demo_run.home / 'webserver.log')}")
            time.sleep(1)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()


@pytest.mark.slow
def test_graphql_shows_every_asset_with_its_latest_materialization(
    webserver: int, demo_run: DemoRun
) -> None:
    nodes = _graphql(webserver, QUERY)["assetNodes"]
    shown = {"/".join(n["assetKey"]["path"]): n for n in nodes}
    graph = build_definitions(load_settings({"STRONGLENS_HOME": str(demo_run.home)}))
    graph = graph.resolve_asset_graph()
    expected = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert set(shown) == expected  # every asset, sources included, is in the UI
    with dg.DagsterInstance.from_config(str(demo_run.dagster_home)) as instance:
        for key in graph.materializable_asset_keys:
            node = shown[key.to_user_string()]
            assert node["isMaterializable"], key
            (latest,) = node["assetMaterializations"]
            event = instance.get_latest_materialization_event(key)
            assert event is not None
            assert latest["runId"] == event.run_id, key
            run = instance.get_run_by_id(latest["runId"])
            assert run is not None and run.status == dg.DagsterRunStatus.SUCCESS


LATEST_METADATA = """
query ($path: [String!]!) { assetOrError(assetKey: {path: $path}) { ... on Asset {
    assetMaterializations(limit: 1) { metadataEntries {
        label __typename
        ... on MarkdownMetadataEntry { mdStr }
        ... on FloatMetadataEntry { floatValue }
        ... on TableMetadataEntry { table { records } }
    } }
} } }
"""


@pytest.mark.slow
def test_asset_pages_show_plots_tables_and_rounded_numbers(webserver: int) -> None:
    """What the asset pages of the screenshots below show, read through the UI's own API:
    the plots as markdown images, per-epoch losses as a table, floats rounded."""
    shown = {}
    for asset in ("grid_completeness", "model_checkpoint", "calibration_report"):
        payload = _graphql_vars(webserver, LATEST_METADATA, {"path": [asset]})
        (latest,) = payload["assetOrError"]["assetMaterializations"]
        shown[asset] = {e["label"]: e for e in latest["metadataEntries"]}
        floats = [e["floatValue"] for e in shown[asset].values() if "floatValue" in e]
        assert floats and all(significant_digits(f) <= 6 for f in floats), (asset, floats)
    for asset, plot in (
        ("grid_completeness", "completeness_plot"),
        ("model_checkpoint", "training_curve"),
        ("calibration_report", "reliability_diagram"),
    ):
        assert (
            shown[asset][plot]["mdStr"].startswith("![")
            and "data:image/png;base64," in (shown[asset][plot]["mdStr"])
        )
    epochs = [json.loads(r) for r in shown["model_checkpoint"]["epochs"]["table"]["records"]]
    assert [r["epoch"] for r in epochs] == list(range(1, len(epochs) + 1))


@pytest.mark.slow
def test_headless_chromium_screenshot_of_the_asset_graph(
    webserver: int, demo_run: DemoRun, tmp_path: Path
) -> None:
    browser = require_tool("chromium", "the UI screenshot needs Debian's chromium")
    # dismiss the first-visit "join the community" dialog as a user's "Skip" does
    assert _graphql(webserver, "mutation { setNuxSeen }")["setNuxSeen"] is True
    location = "__repository__@stronglens_assets"
    pages = {
        "asset_graph.png": "/asset-groups",  # global lineage: every group and their links
        "catalogs_lineage.png": f"/locations/{location}/asset-groups/catalogs/lineage",
        # asset pages: description, metadata (tables, rounded numbers, plot links), checks
        "grid_completeness.png": "/assets/grid_completeness?partition=no_poisson",
        "model_checkpoint.png": "/assets/model_checkpoint",
        "calibration_report.png": "/assets/calibration_report",
    }
    width, height = 1600, 1000
    for name, path in pages.items():
        screenshot = demo_run.home / "ui" / name
        screenshot.parent.mkdir(exist_ok=True)
        result = subprocess.run(
            [
                browser,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={tmp_path / 'chromium-profile'}",
                f"--window-size={width},{height}",
                "--virtual-time-budget=30000",
                f"--screenshot={screenshot}",
                f"http://127.0.0.1:{webserver}{path}",
            ],
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        import matplotlib.image

        pixels = matplotlib.image.imread(screenshot)
        assert pixels.shape[:2] == (height, width)
        # a rendered page, not a blank one: many distinct colours (text, nodes, edges)
        colours = np.unique((pixels[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
        assert len(colours) > 50, (name, len(colours))
        print(f"screenshot: {screenshot}")
