"""Kubernetes deployment: GPU step tags parsed by dagster-k8s itself, the production instance
and Helm values are consistent."""

from __future__ import annotations

import dagster as dg
import pytest
import yaml
from dagster_k8s.job import (
    DagsterK8sJobConfig,
    UserDefinedDagsterK8sConfig,
    construct_dagster_k8s_job,
    get_user_defined_k8s_config,
)

from stronglens_assets.automation import executor_from_env, load_pool_limits
from stronglens_assets.config import ConfigError
from stronglens_assets.definitions import build_definitions
from stronglens_assets.resources.compute import GPU_POOL, load_compute_config
from stronglens_assets.settings import PROJECT_ROOT, load_settings

DEPLOY = PROJECT_ROOT / "deploy"


def _gpu_assets(defs: dg.Definitions) -> dict[str, dg.AssetsDefinition]:
    graph = defs.resolve_asset_graph()
    found = {}
    for key in graph.materializable_asset_keys:
        assets_def = graph.assets_def_for_key(key)
        if assets_def.node_def.pool == GPU_POOL:
            found[key.to_user_string()] = assets_def
    return found


@pytest.mark.parametrize("environ", [{}, {"STRONGLENS_ENV": "s3", "STRONGLENS_S3_BUCKET": "b-1"}])
def test_every_gpu_asset_gets_a_gpu_container_from_dagster_k8s(environ) -> None:
    import os

    defs = build_definitions(load_settings({**os.environ, **environ}))
    gpu_assets = _gpu_assets(defs)
    assert "model_checkpoint" in gpu_assets, sorted(gpu_assets)
    gpu = load_compute_config().gpu
    job_config = DagsterK8sJobConfig(
        job_image="registry.invalid/stronglens-assets:test",
        dagster_home="/opt/dagster/dagster_home",
        instance_config_map="dagster-instance",
    )
    for name, assets_def in gpu_assets.items():
        user_config = get_user_defined_k8s_config(assets_def.node_def.tags)
        assert isinstance(user_config, UserDefinedDagsterK8sConfig)
        job = construct_dagster_k8s_job(
            job_config,
            args=["dagster", "api", "execute_step"],
            job_name=f"step-{name.replace('_', '-')}",
            user_defined_k8s_config=user_config,
            component="step_worker",
        )
        pod = job.spec.template.spec
        (container,) = pod.containers
        limits = container.resources.limits or {}
        assert limits.get("nvidia.com/gpu") == str(gpu.count), (name, limits)
        assert int(limits["nvidia.com/gpu"]) >= 1
        assert pod.node_selector == dict(gpu.node_selector), name
        tolerations = [t.to_dict() if hasattr(t, "to_dict") else t for t in pod.tolerations]
        assert any(t["key"] == "nvidia.com/gpu" for t in tolerations), (name, tolerations)


def test_cpu_assets_request_no_gpu() -> None:
    defs = build_definitions(load_settings())
    graph = defs.resolve_asset_graph()
    for key in graph.materializable_asset_keys:
        node_def = graph.assets_def_for_key(key).node_def
        if node_def.pool == GPU_POOL:
            continue
        container = get_user_defined_k8s_config(node_def.tags).container_config
        assert "nvidia.com/gpu" not in str(container), key


def test_production_instance_yaml_has_the_required_parts() -> None:
    config = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    assert set(config["storage"]) == {"postgres"}
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["run_launcher"]["class"] == "K8sRunLauncher"
    assert config["compute_logs"]["class"] == "S3ComputeLogManager"
    assert config["concurrency"]["pools"]["granularity"] == "op"
    assert config["run_monitoring"]["enabled"] is True
    assert config["run_monitoring"]["free_slots_after_run_end_seconds"] > 0
    assert load_pool_limits(str(DEPLOY / "pools.yaml"))[GPU_POOL] >= 1
    assert "STRONGLENS_EXECUTOR=k8s" in config["run_launcher"]["config"]["env_vars"]


def test_helm_values_match_the_instance() -> None:
    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert "STRONGLENS_EXECUTOR=k8s" in values["runLauncher"]["config"]["k8sRunLauncher"]["envVars"]
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "stronglens_assets.definitions"]
    env = {e["name"]: e["value"] for e in deployment["env"]}
    assert env["STRONGLENS_ENV"] == "s3" and env["STRONGLENS_EXECUTOR"] == "k8s"
    assert values["computeLogManager"]["type"] == "S3ComputeLogManager"
    assert values["dagsterDaemon"]["runMonitoring"]["enabled"] is True
    assert values["concurrency"]["pools"]["granularity"] == "op"
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "stronglens_assets.definitions" in dockerfile
    assert "COPY deploy" in dockerfile  # pools.yaml and dagster.yaml ship in the image


def test_executor_choice() -> None:
    from dagster_k8s import k8s_job_executor

    assert executor_from_env({}) is None
    assert executor_from_env({"STRONGLENS_EXECUTOR": "k8s"}) is k8s_job_executor
    with pytest.raises(ValueError, match="STRONGLENS_EXECUTOR='celery'"):
        executor_from_env({"STRONGLENS_EXECUTOR": "celery"})


def test_bad_pool_limit_is_a_clear_error(tmp_path) -> None:
    path = tmp_path / "pools.yaml"
    path.write_text("gpu: -1\n")
    with pytest.raises(ConfigError, match="pool 'gpu': the limit must be >= 0"):
        load_pool_limits(str(path))


def test_apply_pools_command_stores_the_gpu_limit(tmp_path, monkeypatch, capsys) -> None:
    from stronglens_assets.automation import main

    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    assert main(["apply-pools", str(DEPLOY / "pools.yaml")]) == 0
    expected = load_pool_limits(str(DEPLOY / "pools.yaml"))[GPU_POOL]
    assert f"pool gpu: {expected} slots" in capsys.readouterr().out
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.event_log_storage.get_concurrency_info(GPU_POOL).slot_count == expected
