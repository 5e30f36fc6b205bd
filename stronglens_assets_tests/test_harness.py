"""The test harness itself: the missing-dependency policy and the in-process runner."""

from __future__ import annotations

import sys

import dagster as dg
import pytest

from stronglens_assets.resources import LocalStorageResource
from stronglens_assets_tests.harness import (
    AssetHarness,
    failure_message,
    local_resources,
    open_database_connections,
    require_module,
    require_tool,
)


def test_a_missing_package_skips_locally_and_fails_in_ci(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "no_such_pkg_for_the_harness", None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="not installed; why"):
        require_module("no_such_pkg_for_the_harness", "why")
    with pytest.raises(pytest.skip.Exception):
        require_tool("no-such-tool-for-the-harness", "why")
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        require_module("no_such_pkg_for_the_harness.sub", "why")
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        require_tool("no-such-tool-for-the-harness", "why")


def test_a_broken_install_is_never_skipped(monkeypatch, tmp_path) -> None:
    """An installed package whose own import fails raises, with or without CI."""
    package = tmp_path / "broken_pkg_for_the_harness"
    package.mkdir()
    (package / "__init__.py").write_text("import no_such_dependency_of_broken_pkg\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(ModuleNotFoundError, match="no_such_dependency_of_broken_pkg"):
        require_module("broken_pkg_for_the_harness", "why")
    assert require_module("json", "stdlib").dumps([1]) == "[1]"


def test_asset_harness_runs_on_one_instance_and_collects_checks(tmp_path, dagster_instance) -> None:
    @dg.asset(check_specs=[dg.AssetCheckSpec("positive", asset="number")])
    def number():
        yield dg.Output({"n": 3})
        yield dg.AssetCheckResult(passed=True)

    @dg.asset
    def double(number: dict) -> dict:
        if number["n"] > 100:
            raise ValueError("too large")
        return {"n": 2 * number["n"]}

    storage = LocalStorageResource(root=str(tmp_path))
    harness = AssetHarness([number, double], local_resources(storage), dagster_instance)
    assert harness.run("number").success
    assert harness.run(["double"]).success
    assert harness.checks == {"number:positive": True}
    assert storage.read_value("double.json") == {"n": 6}
    assert dagster_instance.get_latest_materialization_event(dg.AssetKey("double"))
    storage.write_bytes("number.json", b'{"n": 101}')
    failed = harness.run(dg.AssetSelection.assets("double"))
    assert not failed.success and "too large" in failure_message(failed)


def test_an_undisposed_instance_is_found() -> None:
    before = open_database_connections()
    instance = dg.DagsterInstance.ephemeral()
    try:
        leaked = open_database_connections()
        assert len(leaked) == len(before) + 2  # its run and event-log storages
        assert any("runs-" in url for url in leaked) and any("events-" in url for url in leaked)
    finally:
        instance.dispose()
    assert open_database_connections() == before
