"""Declarative automation: external inputs as observable sources, code versions, conditions,
schedules and the automation sensor, applied centrally by :func:`apply_automation`.

External inputs (observable source assets; their ``DataVersion`` is a content checksum):

* ``lenscat_csv``: the lenscat ``catalog.csv`` (``configs/catalogs.yaml`` ``lenscat_csv`` or
  the installed package's), SHA-256 of its bytes. Upstream of ``lenscat_catalog``.
* ``desi_vac_file`` (``s3`` only): the DESI DR1 VAC object, its S3 ETag. Upstream of
  ``desi_dr1_vac``. Locally the mock survey's ``mock_desi_vac`` asset writes that file.
* ``dr10_coadd_cache`` (``s3`` only, HEALPix-partitioned like the cutouts): per partition,
  SHA-256 over the sorted ``key, ETag, size`` of the coadd-cache objects of its bricks, so a
  brick that appears (or is re-uploaded) in the cache changes exactly its partition's version.
  Upstream of ``positive_cutouts`` and ``negative_cutouts``.

Every asset gets, unless it sets them itself:

* ``code_version`` (:func:`code_version_of`): the first 16 hex digits of the SHA-256 of the
  asset function's source text plus the source of every ``stronglens_assets`` module that the
  function names directly (e.g. ``science.catalogs.crossmatch`` for ``crossmatch_positives``, or
  ``assets.d06`` for ``grid_completeness``, whose body calls ``run_grid`` there), plus every
  ``science``/``mock_survey`` module those modules import, transitively, at module level or
  inside functions (:func:`code_modules`): editing ``science/lensing/injection.py`` changes the
  versions of the D06 assets that render arcs through ``assets/d06.py``. Editing an asset's
  body, its wiring module or the science it runs changes its version; settings, resources and
  unrelated modules do not. The version is stable across processes and machines (source text
  only). Set ``code_version=`` on an asset to pin it by hand.
* ``automation_condition`` (:data:`AUTOMATION_CONDITION`): ``(eager | code_version_changed)
  & all_deps_blocking_checks_passed``: an asset is requested when an upstream asset was
  updated (a materialization, or an observation with a new data version) or its own code
  version changed, never while an upstream blocking check fails. Re-observing an unchanged
  input requests nothing.

Schedules (``configs/automation.yaml``; crons validated at load, status per environment):
``observe_external_inputs`` (weekly by default) observes the sources; ``graph_refresh``
requests the graph's root assets, and the eager conditions then carry the refresh through the
graph in dependency order; ``d06_refresh`` does the same from the D06 experiments' roots. They
and the ``automation`` sensor (which evaluates the conditions) are stopped in the embedded
default (``local``) and running in production (``s3``), as configured.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import types
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal

import dagster as dg
from pydantic import Field, field_validator

from stronglens_assets.config import StrictModel, load_config
from stronglens_assets.project import Project

AUTOMATION_CONFIG_FILENAME = "automation.yaml"
SOURCES_GROUP = "external_inputs"

#: Requested when an upstream changed or the code changed; never past a failed blocking check.
AUTOMATION_CONDITION = (
    dg.AutomationCondition.eager() | dg.AutomationCondition.code_version_changed()
) & dg.AutomationCondition.all_deps_blocking_checks_passed()

LENSCAT_CSV = dg.AssetKey("lenscat_csv")
DESI_VAC_FILE = dg.AssetKey("desi_vac_file")
COADD_CACHE = dg.AssetKey("dr10_coadd_cache")

#: Which existing asset reads which external input (added as a dependency when both exist).
SOURCE_CONSUMERS: dict[dg.AssetKey, tuple[dg.AssetKey, ...]] = {
    LENSCAT_CSV: (dg.AssetKey("lenscat_catalog"),),
    DESI_VAC_FILE: (dg.AssetKey("desi_dr1_vac"),),
    COADD_CACHE: (dg.AssetKey("positive_cutouts"), dg.AssetKey("negative_cutouts")),
}

#: The D06 experiments (contract item 5); ``d06_refresh`` starts from those present.
D06_ASSET_KEYS: tuple[dg.AssetKey, ...] = tuple(
    dg.AssetKey(name)
    for name in (
        "injection_priors",
        "grid_completeness",
        "bright_arc",
        "linear_probe",
        "tier_a_scoring",
        "poisson_diagnostics",
    )
)

Environment = Literal["local", "s3"]


class ScheduleConfig(StrictModel):
    """One schedule: a 5-field cron string (UTC unless ``timezone`` says otherwise) and the
    environments in which it starts running (elsewhere it is present but stopped)."""

    cron: str
    running_in: list[Environment] = Field(default_factory=lambda: ["s3"])

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        from dagster._utils.schedules import is_valid_cron_string

        if not is_valid_cron_string(value):
            raise ValueError(
                f"{value!r} is not a valid cron string (5 fields: minute hour day-of-month "
                "month day-of-week, e.g. '0 6 * * 1')"
            )
        return value


class SensorConfig(StrictModel):
    """The automation-condition sensor: environments where it runs, and its interval."""

    running_in: list[Environment] = Field(default_factory=lambda: ["s3"])
    minimum_interval_seconds: int = Field(default=300, ge=30)


class AutomationConfig(StrictModel):
    """``configs/automation.yaml``."""

    timezone: str = "UTC"
    observe_external_inputs: ScheduleConfig
    graph_refresh: ScheduleConfig
    d06_refresh: ScheduleConfig
    automation_sensor: SensorConfig = Field(default_factory=SensorConfig)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


def load_automation_config(project: Project) -> AutomationConfig:
    """Load and validate ``configs/automation.yaml`` (a bad cron raises ``ConfigError``)."""
    return load_config(project.settings.config_dir / AUTOMATION_CONFIG_FILENAME, AutomationConfig)


# --------------------------------------------------------------------------------------------
# Code versions
# --------------------------------------------------------------------------------------------
def _code_names(code: types.CodeType) -> Iterator[str]:
    yield from code.co_names
    yield from code.co_freevars
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_names(const)


def _referenced_project_modules(fn: Any) -> list[str]:
    """Names of ``stronglens_assets`` modules that ``fn`` refers to directly (sorted)."""
    modules: set[str] = set()
    namespace = dict(getattr(fn, "__globals__", {}))
    closure = getattr(fn, "__closure__", None) or ()
    for name, cell in zip(fn.__code__.co_freevars, closure, strict=False):
        try:
            namespace[name] = cell.cell_contents
        except ValueError:  # an empty cell
            continue
    for name in set(_code_names(fn.__code__)):
        value = namespace.get(name)
        if isinstance(value, types.ModuleType):
            module_name = value.__name__
        else:
            module_name = getattr(value, "__module__", None) or ""
            if not (inspect.isfunction(value) or inspect.isclass(value)):
                continue
        if module_name.startswith("stronglens_assets."):
            modules.add(module_name)
    return sorted(modules)


#: Packages whose modules count transitively in a code version: the computation itself.
_SCIENCE_PACKAGES = ("stronglens_assets.science", "stronglens_assets.mock_survey")


@functools.cache
def _imported_science_modules(module_name: str) -> frozenset[str]:
    """``science``/``mock_survey`` modules that the module's source imports (anywhere in it)."""
    import ast

    found: set[str] = set()
    for node in ast.walk(ast.parse(_module_source(module_name))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from pkg import sub` may name submodules: keep those that are modules
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name.startswith(_SCIENCE_PACKAGES) and _is_module(name):
                found.add(name)
    return frozenset(found)


@functools.cache
def _module_source(module_name: str) -> str:
    """The text of the module's source file ("" for a namespace package).

    Cached per process: a code location builds its definitions once, from the files it
    imported."""
    import importlib
    from pathlib import Path

    path = getattr(importlib.import_module(module_name), "__file__", None)
    return Path(path).read_text() if path else ""


def _is_module(name: str) -> bool:
    """Whether ``name`` is an importable module (not, e.g., a function imported from one)."""
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # the parent is a module, not a package: ``name`` is an attribute
        return False


def code_modules(assets_def: dg.AssetsDefinition) -> list[str]:
    """The ``stronglens_assets`` modules whose source enters the asset's code version (sorted):
    those its function names directly, plus the science modules they import, transitively."""
    fn = assets_def.op.compute_fn
    fn = getattr(fn, "decorated_fn", fn)
    pending = list(_referenced_project_modules(fn))
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        pending.extend(sorted(_imported_science_modules(name) - seen))
    return sorted(seen)


def code_version_of(assets_def: dg.AssetsDefinition) -> str:
    """Deterministic code version of an asset: see the module docstring."""

    fn = assets_def.op.compute_fn
    fn = getattr(fn, "decorated_fn", fn)
    digest = hashlib.sha256()
    digest.update(inspect.getsource(fn).encode())
    for module_name in code_modules(assets_def):
        digest.update(module_name.encode())
        digest.update(_module_source(module_name).encode())
    return digest.hexdigest()[:16]


# --------------------------------------------------------------------------------------------
# Observable sources
# --------------------------------------------------------------------------------------------
def _lenscat_csv_source(project: Project) -> dg.SourceAsset:
    from stronglens_assets.assets.catalogs import load_catalogs_config
    from stronglens_assets.science.catalogs import lenscat

    csv_override = load_catalogs_config(project).lenscat_csv

    @dg.observable_source_asset(key=LENSCAT_CSV, group_name=SOURCES_GROUP)
    def lenscat_csv() -> dg.ObserveResult:
        """The lenscat ``catalog.csv`` read by ``lenscat_catalog``; version = SHA-256."""
        path = csv_override or lenscat.lenscat_csv_path()
        checksum = lenscat.catalog_checksum(path)
        return dg.ObserveResult(
            data_version=dg.DataVersion(checksum),
            metadata={"path": dg.MetadataValue.path(str(path)), "sha256": checksum},
        )

    return lenscat_csv


def _desi_vac_source() -> dg.SourceAsset:
    @dg.observable_source_asset(
        key=DESI_VAC_FILE, group_name=SOURCES_GROUP, required_resource_keys={"survey"}
    )
    def desi_vac_file(context) -> dg.ObserveResult:
        """The DESI DR1 VAC object on S3 read by ``desi_dr1_vac``; version = its ETag."""
        from stronglens_assets.resources.object_store import S3ObjectStore, StorageError
        from stronglens_assets.resources.storage import s3_client_for

        survey = context.resources.survey
        store = S3ObjectStore(s3_client_for(survey.s3), survey.bucket)
        head = store.head(survey.desi_vac_key)
        if head is None:
            raise StorageError(f"DESI VAC {store.uri(survey.desi_vac_key)} does not exist")
        return dg.ObserveResult(
            data_version=dg.DataVersion(head["etag"]),
            metadata={"uri": store.uri(survey.desi_vac_key), "bytes": head["size"]},
        )

    return desi_vac_file


def coadd_cache_version(listing: Iterable[tuple[str, str, int]]) -> str:
    """SHA-256 over sorted ``(key, etag, size)`` rows of a brick listing (order-free)."""
    digest = hashlib.sha256()
    for key, etag, size in sorted(listing):
        digest.update(f"{key}\t{etag}\t{size}\n".encode())
    return digest.hexdigest()


def _coadd_cache_source(project: Project) -> dg.SourceAsset:
    @dg.observable_source_asset(
        key=COADD_CACHE,
        group_name=SOURCES_GROUP,
        partitions_def=project.healpix_partitions,
        required_resource_keys={"coadds"},
    )
    def dr10_coadd_cache(context) -> dg.DataVersionsByPartition:
        """Coadd-cache objects of each partition's bricks; version = hash of their ETags.

        A brick missing from the cache hashes as empty, so its arrival changes the version.
        """
        source = context.resources.coadds.get_source()
        versions: dict[str, str] = {}
        for partition in project.healpix_partitions.get_partition_keys():
            rows = []
            for brick in project.bricks_in_partition(partition):
                prefix = f"{source.prefix}/{brick}/" if source.prefix else f"{brick}/"
                pages = source.client.get_paginator("list_objects_v2").paginate(
                    Bucket=source.bucket, Prefix=prefix
                )
                rows += [
                    (o["Key"], o.get("ETag", ""), int(o.get("Size", 0)))
                    for page in pages
                    for o in page.get("Contents", [])
                ]
            versions[partition] = coadd_cache_version(rows)
        with warnings.catch_warnings():  # DataVersionsByPartition is a Dagster beta API
            warnings.simplefilter("ignore", dg.BetaWarning)
            return dg.DataVersionsByPartition(versions)

    return dr10_coadd_cache


def build_sources(project: Project) -> list[dg.SourceAsset]:
    """The external inputs of ``project``'s environment (see the module docstring)."""
    with warnings.catch_warnings():  # observable_source_asset is a Dagster beta API
        warnings.simplefilter("ignore", dg.BetaWarning)
        sources = [_lenscat_csv_source(project)]
        if project.settings.env == "s3":
            sources.append(_desi_vac_source())
            if not project.settings.coadd_url:
                sources.append(_coadd_cache_source(project))
    return sources


# --------------------------------------------------------------------------------------------
# Central application
# --------------------------------------------------------------------------------------------
def apply_automation(
    assets: Sequence[dg.AssetsDefinition], sources: Sequence[dg.SourceAsset]
) -> list[dg.AssetsDefinition]:
    """Add source dependencies, code versions and automation conditions to ``assets``.

    Explicit ``code_version`` / ``automation_condition`` on an asset win. Public keys and the
    existing dependencies are unchanged.
    """
    source_keys = {s.key for s in sources}
    extra_deps: dict[dg.AssetKey, list[dg.AssetKey]] = {}
    for source_key, consumers in SOURCE_CONSUMERS.items():
        if source_key in source_keys:
            for consumer in consumers:
                extra_deps.setdefault(consumer, []).append(source_key)
    result: list[dg.AssetsDefinition] = []
    for assets_def in assets:
        version = code_version_of(assets_def)

        def update(spec: dg.AssetSpec, version: str = version) -> dg.AssetSpec:
            existing = {d.asset_key for d in spec.deps}
            deps = list(spec.deps) + [
                dg.AssetDep(k) for k in extra_deps.get(spec.key, []) if k not in existing
            ]
            return spec.replace_attributes(
                deps=deps,
                code_version=spec.code_version or version,
                automation_condition=spec.automation_condition or AUTOMATION_CONDITION,
            )

        (mapped,) = dg.map_asset_specs(update, [assets_def])
        result.append(mapped)  # type: ignore[arg-type]
    return result


def _parents(assets: Sequence[dg.AssetsDefinition]) -> dict[dg.AssetKey, set[dg.AssetKey]]:
    return {spec.key: {d.asset_key for d in spec.deps} for a in assets for spec in a.specs}


def root_assets(
    assets: Sequence[dg.AssetsDefinition], within: Iterable[dg.AssetKey] | None = None
) -> list[dg.AssetKey]:
    """Keys (of ``within``, default all) with no materializable parent inside ``within``."""
    parents = _parents(assets)
    scope = set(parents) if within is None else set(within) & set(parents)
    return sorted((k for k in scope if not parents[k] & scope), key=lambda k: k.path)


def _refresh_schedule(
    name: str,
    description: str,
    roots: Sequence[dg.AssetKey],
    assets: Sequence[dg.AssetsDefinition],
    config: ScheduleConfig,
    timezone: str,
    env: str,
) -> dg.ScheduleDefinition:
    """A schedule requesting ``roots`` (every partition, one run each); the eager conditions
    then request their descendants once the roots are updated."""
    partitions = {
        spec.key: a.partitions_def for a in assets for spec in a.specs if spec.key in roots
    }

    @dg.schedule(
        name=name,
        cron_schedule=config.cron,
        execution_timezone=timezone,
        target=dg.AssetSelection.assets(*roots),
        default_status=_status(env, config.running_in, dg.DefaultScheduleStatus),
        description=description,
    )
    def refresh(context: dg.ScheduleEvaluationContext):
        stamp = context.scheduled_execution_time.isoformat()  # run keys unique per tick
        for key in roots:
            partitions_def = partitions[key]
            keys = [None] if partitions_def is None else partitions_def.get_partition_keys()
            for partition_key in keys:
                yield dg.RunRequest(
                    run_key=f"{name}:{stamp}:{key.to_user_string()}:{partition_key or ''}",
                    asset_selection=[key],
                    partition_key=partition_key,
                )

    return refresh


def _status(env: str, running_in: Sequence[str], enum: Any) -> Any:
    return enum.RUNNING if env in running_in else enum.STOPPED


def build_schedules_and_sensors(
    project: Project,
    assets: Sequence[dg.AssetsDefinition],
    sources: Sequence[dg.SourceAsset],
    config: AutomationConfig | None = None,
) -> tuple[list[dg.ScheduleDefinition], list[dg.SensorDefinition]]:
    """The three schedules and the automation sensor of ``configs/automation.yaml``."""
    config = config or load_automation_config(project)
    env = project.settings.env
    schedules = [
        dg.ScheduleDefinition(
            name="observe_external_inputs",
            cron_schedule=config.observe_external_inputs.cron,
            execution_timezone=config.timezone,
            target=dg.AssetSelection.assets(*[s.key for s in sources]),
            default_status=_status(
                env, config.observe_external_inputs.running_in, dg.DefaultScheduleStatus
            ),
            description="Observe the external inputs (lenscat CSV, DESI VAC, coadd cache).",
        ),
        _refresh_schedule(
            "graph_refresh",
            "Re-materialize the root assets; the eager conditions refresh the rest.",
            root_assets(assets),
            assets,
            config.graph_refresh,
            config.timezone,
            env,
        ),
    ]
    present = {spec.key for a in assets for spec in a.specs}
    d06 = [k for k in D06_ASSET_KEYS if k in present]
    if d06:
        schedules.append(
            _refresh_schedule(
                "d06_refresh",
                "Re-run the D06 injection-recovery experiments (their roots, then the rest).",
                root_assets(assets, d06),
                assets,
                config.d06_refresh,
                config.timezone,
                env,
            )
        )
    sensor = dg.AutomationConditionSensorDefinition(
        "automation",
        target=dg.AssetSelection.all(),
        default_status=_status(env, config.automation_sensor.running_in, dg.DefaultSensorStatus),
        minimum_interval_seconds=config.automation_sensor.minimum_interval_seconds,
        description="Evaluates every asset's automation condition (new inputs, new code).",
    )
    return schedules, [sensor]


def automated_definitions(
    project: Project,
    assets: Sequence[dg.AssetsDefinition],
    checks: Sequence[dg.AssetChecksDefinition],
    resources: dict[str, Any],
) -> dg.Definitions:
    """``Definitions`` of ``assets`` with the external inputs, code versions, conditions,
    schedules and sensor of this module (what :func:`build_definitions` returns)."""
    sources = build_sources(project)
    automated = apply_automation(assets, sources)
    schedules, sensors = build_schedules_and_sensors(project, automated, sources)
    return dg.Definitions(
        assets=[*sources, *automated],
        asset_checks=list(checks),
        resources=resources,
        schedules=schedules,
        sensors=sensors,
        executor=executor_from_env(),
    )


# --------------------------------------------------------------------------------------------
# Production: executor and concurrency-pool limits
# --------------------------------------------------------------------------------------------
def executor_from_env(environ: Mapping[str, str] | None = None) -> dg.ExecutorDefinition | None:
    """``k8s_job_executor`` (every step in its own pod, its ``dagster-k8s/config`` tag applied)
    when ``STRONGLENS_EXECUTOR=k8s`` (set by the production run launcher), else ``None``
    (Dagster's default multiprocess executor). The variable is read by
    :func:`stronglens_assets.settings.executor_name`."""
    from stronglens_assets.settings import executor_name

    if executor_name(environ) == "default":
        return None
    from dagster_k8s import k8s_job_executor

    return k8s_job_executor


class PoolLimits(StrictModel):
    """``deploy/pools.yaml``: pool name -> number of slots."""

    limits: dict[str, int]

    @field_validator("limits")
    @classmethod
    def _positive(cls, value: dict[str, int]) -> dict[str, int]:
        for name, slots in value.items():
            if not name or slots < 0:
                raise ValueError(f"pool {name!r}: the limit must be >= 0, got {slots}")
        return value


def load_pool_limits(path: str) -> dict[str, int]:
    """Read ``deploy/pools.yaml`` (``ConfigError`` naming the file and pool on bad input)."""
    from pathlib import Path

    from stronglens_assets.config import load_yaml, validate_config

    return validate_config({"limits": load_yaml(path)}, PoolLimits, Path(path)).limits


def apply_pool_limits(instance: dg.DagsterInstance, limits: dict[str, int]) -> None:
    """Store the pool limits in ``instance`` (what ``dagster instance concurrency set`` does)."""
    for pool, slots in sorted(limits.items()):
        instance.event_log_storage.set_concurrency_slots(pool, slots)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m stronglens_assets.automation apply-pools deploy/pools.yaml``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m stronglens_assets.automation")
    commands = parser.add_subparsers(dest="command", required=True)
    pools = commands.add_parser("apply-pools", help="store pool limits in $DAGSTER_HOME's instance")
    pools.add_argument("path", help="YAML mapping pool -> slots (deploy/pools.yaml)")
    args = parser.parse_args(argv)
    limits = load_pool_limits(args.path)
    with dg.DagsterInstance.get() as instance:
        apply_pool_limits(instance, limits)
    for pool, slots in sorted(limits.items()):
        print(f"pool {pool}: {slots} slots")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
