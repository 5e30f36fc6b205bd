"""D06 injection-recovery assets (seeds, Reproducibility Guide 4.1 to 4.5).

``injection_priors`` validates ``configs/injection_priors.yaml``; the other five run the
frozen model (``configs/d06.yaml`` ``model_config``, default ``paperIV_bottlenecked_resnet``)
on injections into real validation-split hosts and on real lenses:

=======================  =====================  ===============================================
asset                    partitions             outputs under ``results/D06/``
=======================  =====================  ===============================================
``grid_completeness``    no_poisson, poisson    ``grid_<v>/grid_results.json``,
                                                ``grid_<v>/selection_function.parquet``,
                                                ``grid_<v>/cutouts/cell<NNNN>.npz``
``bright_arc``           6 variants             ``ba_<v>/results.json``, ``ba_<v>/cutouts.npz``
``linear_probe``         -                      ``linear_probe/linear_probe_results.json``,
                                                ``linear_probe/embeddings.npz``
``tier_a_scoring``       -                      ``tier_a_scoring/tier_a_scores.parquet``
``poisson_diagnostics``  -                      ``poisson_diagnostics/poisson_diagnostics.json``
                                                and ``.png``
=======================  =====================  ===============================================

Every output records ``checkpoint_sha256`` (of ``best.pt``) and ``priors_sha256``; the
IO-managed value of each asset is a JSON summary with the storage keys. Model assets are
GPU-tagged (pool ``gpu``, dagster-k8s GPU request) and take the device and array module from
the ``compute`` resource. Inputs are validated before anything is written (bad priors, a
model config without a checkpoint, a host cutout with NaNs: clear errors, previous outputs
untouched). A grid run writes its cell files first and ``grid_results.json`` (which lists
each cell file's sha256) last.
"""

import json
import time
from dataclasses import dataclass
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd

from stronglens_assets.assets.shared import (
    MODEL_CHECKPOINT,
    frozen_check_spec,
    frozen_model_check,
    load_frozen_model,
)
from stronglens_assets.config import ConfigError
from stronglens_assets.errors import StronglensError
from stronglens_assets.partitions import bright_arc_variant_partitions, grid_variant_partitions
from stronglens_assets.project import Project
from stronglens_assets.resources.compute import GPU_POOL, ComputeResource, gpu_op_tags
from stronglens_assets.resources.object_store import ObjectNotFoundError
from stronglens_assets.resources.serialization import encode
from stronglens_assets.resources.storage import StorageResource
from stronglens_assets.science.core.hashing import sha256_bytes
from stronglens_assets.science.core.npz import decode_npz, encode_npz
from stronglens_assets.science.experiments import (
    D06_CONFIG_FILENAME,
    D06Config,
    HostPool,
    derived_rng,
    detection_rates,
    draw_hosts,
    grid_summary,
    host_match_summary,
    host_pool,
    load_d06_config,
    make_injections,
    poisson_diagnostics_png,
    poisson_noise_diagnostics,
    read_cutouts,
    render_injection_arcs,
    selection_function,
    threshold_rates,
    validation_lenses,
    validation_negatives,
)
from stronglens_assets.science.lensing.priors import (
    PARAMETERS,
    InjectionPriors,
    bright_arc_distributions,
    grid_cells,
    load_priors,
    priors_file_sha256,
    priors_sha256,
    probe_distributions,
    sample_parameters,
)
from stronglens_assets.science.probe import frechet_distance, linear_probe_auc
from stronglens_assets.science.reporting.plots import png_data_uri_markdown
from stronglens_assets.science.stats.detection import count_detected
from stronglens_assets.storage_keys import (
    CHECKPOINT_KEY,
    POISSON_DIAGNOSTICS_KEY,
    POISSON_DIAGNOSTICS_PLOT_KEY,
    PROBE_EMBEDDINGS_KEY,
    PROBE_RESULTS_KEY,
    TIER_A_SCORES_KEY,
    ba_keys,
    cell_key,
    grid_keys,
)

D06_GROUP = "d06"
HOST_MODES = ("random", "tier_a_matched")


class D06Error(StronglensError, RuntimeError):
    """A D06 experiment cannot run on these inputs; the message says which and why."""


# --------------------------------------------------------------------------------------------
# Shared run context
# --------------------------------------------------------------------------------------------


@dataclass
class RunContext:
    """Everything a D06 model asset needs, validated before anything is written."""

    config: D06Config
    priors: InjectionPriors
    priors_sha256: str
    model: Any
    checkpoint_sha256: str
    device: Any
    xp: Any
    store: Any
    manifest: pd.DataFrame

    def provenance(self) -> dict[str, Any]:
        return {
            "model_config": self.config.model_config_name,
            "checkpoint_sha256": self.checkpoint_sha256,
            "priors_sha256": self.priors_sha256,
            "priors_version": self.priors.version,
            "seed": self.config.seed,
        }

    def sha_arrays(self) -> dict[str, np.ndarray]:
        """The two sha256 as (1,) string arrays (provenance inside ``.npz`` outputs)."""
        return {
            "checkpoint_sha256": np.asarray([self.checkpoint_sha256], dtype=np.str_),
            "priors_sha256": np.asarray([self.priors_sha256], dtype=np.str_),
        }

    def score(self, images: np.ndarray) -> np.ndarray:
        from stronglens_assets.science.learning.scoring import score_cutouts

        return score_cutouts(
            self.model, images, batch_size=self.config.batch_size, device=self.device
        )

    def embed(self, images: np.ndarray) -> np.ndarray:
        from stronglens_assets.science.learning.scoring import embed_cutouts

        return embed_cutouts(
            self.model, images, batch_size=self.config.batch_size, device=self.device
        )

    def tier_a(self) -> pd.DataFrame:
        lenses = self.config.lenses
        return validation_lenses(self.manifest, lenses.splits, ["A"], lenses.sources)

    def pool(self, mode: str) -> HostPool:
        """Host pool of ``mode`` (the same for every asset: stream ``(seed, "hosts", mode)``)."""
        hosts = self.config.hosts
        negatives = validation_negatives(self.manifest, hosts.splits)
        tier_a = self.tier_a() if mode == "tier_a_matched" else None
        return host_pool(
            negatives,
            tier_a,
            mode=mode,
            k_nearest=hosts.k_nearest,
            max_pool=hosts.max_pool,
            rng=derived_rng(self.config.seed, "hosts", mode),
        )

    def arrays(self, table: pd.DataFrame, members=("cutout", "psfsize")) -> dict[str, np.ndarray]:
        return read_cutouts(self.store.read_bytes, table, members)


def priors_from_value(value: dict[str, Any]) -> tuple[InjectionPriors, str]:
    """Rebuild the priors from the ``injection_priors`` value; check its sha256."""
    fields = {k: v for k, v in value.items() if k in InjectionPriors.model_fields}
    priors = InjectionPriors.model_validate(fields)
    sha = priors_sha256(priors)
    if sha != value.get("sha256"):
        raise D06Error(
            f"injection_priors value does not match its sha256 ({value.get('sha256')} vs {sha}); "
            "re-materialize injection_priors"
        )
    return priors, sha


def load_frozen(store: Any, name: str, project: Project) -> tuple[Any, str]:
    """The frozen model of config ``name`` and its checkpoint sha256 (clear error if none)."""
    settings = project.settings
    key = CHECKPOINT_KEY.format(name=name)
    if not store.exists(key):
        raise D06Error(
            f"model config {name!r} (configs/{D06_CONFIG_FILENAME} model_config) has no "
            f"checkpoint at {store.uri(key)}; materialize {MODEL_CHECKPOINT}[{name}] first"
        )
    try:
        return load_frozen_model(store, name, settings.config_dir, profile=settings.profile)
    except ObjectNotFoundError as exc:  # pragma: no cover - raced with a delete
        raise D06Error(f"model config {name!r}: {exc}") from exc


def _run_context(
    project: Project,
    config: D06Config,
    injection_priors: dict[str, Any],
    training_manifest: pd.DataFrame,
    storage: StorageResource,
    compute: ComputeResource,
) -> RunContext:
    priors, sha = priors_from_value(injection_priors)
    store = storage.object_store()
    model, checkpoint_sha = load_frozen(store, config.model_config_name, project)
    device = compute.torch_device()
    return RunContext(
        config=config,
        priors=priors,
        priors_sha256=sha,
        model=model,
        checkpoint_sha256=checkpoint_sha,
        device=device,
        xp=compute.array_module(),
        store=store,
        manifest=training_manifest,
    )


def _encoded(value: Any, extension: str) -> bytes:
    data, got = encode(value)
    if got != extension:
        raise D06Error(f"expected a {extension} value, got one encoded as {got}")
    return data


def _json_bytes(value: Any) -> bytes:
    return _encoded(value, "json")


def _parquet_bytes(table: pd.DataFrame) -> bytes:
    return _encoded(table, "parquet")


def _id_array(values: pd.Series) -> np.ndarray:
    return np.asarray(values.astype(str).to_numpy(), dtype=np.str_)


def _check_model_config(project: Project, config: D06Config) -> None:
    path = project.settings.config_dir / "models" / f"{config.model_config_name}.yaml"
    if not path.exists():
        raise ConfigError(
            f"invalid config {project.settings.config_dir / D06_CONFIG_FILENAME}:\n"
            f"  model_config: no model config {config.model_config_name!r} ({path} is missing)"
        )


# --------------------------------------------------------------------------------------------
# Assets
# --------------------------------------------------------------------------------------------


def build_assets(project: Project) -> list:
    settings = project.settings
    config = load_d06_config(settings.config_dir, settings.profile)
    _check_model_config(project, config)
    model_name = config.model_config_name
    checkpoint_dep = dg.AssetDep(
        MODEL_CHECKPOINT,
        partition_mapping=dg.SpecificPartitionsPartitionMapping([model_name]),
    )

    gpu = {"pool": GPU_POOL, "op_tags": gpu_op_tags(settings.config_dir)}
    common = {"group_name": D06_GROUP, "deps": [checkpoint_dep], "kinds": {"pytorch", "numpy"}}

    @dg.asset(group_name=D06_GROUP, kinds={"yaml"})
    def injection_priors() -> dg.Output[dict]:
        """The validated injection priors (``configs/injection_priors.yaml``, profile applied):
        distributions, grid axes, source colours, gains, bright-arc variants; plus ``sha256``
        of the resolved priors (recorded by every D06 output) and the file's ``file_sha256``."""
        priors = load_priors(settings.config_dir, settings.profile)
        sha = priors_sha256(priors)
        value = {
            **priors.model_dump(mode="json"),
            "sha256": sha,
            "file_sha256": priors_file_sha256(settings.config_dir),
            "profile": settings.profile,
        }
        variants = "\n".join(
            f"| `{name}` | {v.poisson} | {v.gain or ''} | {v.clip or ''} | {v.restricted} | "
            f"{v.description} |"
            for name, v in priors.bright_arc.variants.items()
        )
        return dg.Output(
            value,
            metadata={
                "sha256": sha,
                "version": priors.version,
                "grid_cells": priors.grid.n_cells,
                "bright_arc_variants": dg.MetadataValue.md(
                    "| variant | poisson | gain | clip (mag) | restricted | meaning |\n"
                    "|---|---|---|---|---|---|\n" + variants
                ),
            },
        )

    @dg.asset(
        partitions_def=grid_variant_partitions,
        check_specs=[
            dg.AssetCheckSpec("counts_match_cell_files", asset="grid_completeness"),
            frozen_check_spec("grid_completeness"),
        ],
        **common,
        **gpu,
    )
    def grid_completeness(
        context: dg.AssetExecutionContext,
        injection_priors: dict,
        training_manifest: pd.DataFrame,
        storage: dg.ResourceParam[StorageResource],
        compute: dg.ResourceParam[ComputeResource],
    ):
        """Completeness of the frozen model over the injection grid (seeds 4.1): every cell of
        the priors' grid gets ``injections_per_cell`` injections into real hosts, scored;
        ``no_poisson`` adds the noiseless arcs, ``poisson`` the same arcs with Poisson noise
        (same parameters and hosts). Completeness at p > threshold per cell (Wilson 68%),
        overall and marginal per axis, at every configured threshold."""
        variant = context.partition_key
        run = _run_context(project, config, injection_priors, training_manifest, storage, compute)
        result, checks = run_grid(run, variant, log=context.log)
        yield dg.Output(result["value"], metadata=result["metadata"])
        yield checks
        yield frozen_model_check(context, model_name, run.checkpoint_sha256)

    @dg.asset(
        partitions_def=bright_arc_variant_partitions,
        check_specs=[frozen_check_spec("bright_arc")],
        **common,
        **gpu,
    )
    def bright_arc(
        context: dg.AssetExecutionContext,
        injection_priors: dict,
        training_manifest: pd.DataFrame,
        storage: dg.ResourceParam[StorageResource],
        compute: dg.ResourceParam[ComputeResource],
    ):
        """Bright-arc detection rates of one variant (seeds 4.2; variants defined in the
        priors): bright sources in restricted (arc-forming) geometry, per source-magnitude bin
        and threshold, with the score distribution and a gallery of the first injections."""
        run = _run_context(project, config, injection_priors, training_manifest, storage, compute)
        value, metadata = run_bright_arc(run, context.partition_key, log=context.log)
        yield dg.Output(value, metadata=metadata)
        yield frozen_model_check(context, model_name, run.checkpoint_sha256)

    @dg.asset(check_specs=[frozen_check_spec("linear_probe")], **common, **gpu)
    def linear_probe(
        context: dg.AssetExecutionContext,
        injection_priors: dict,
        training_manifest: pd.DataFrame,
        storage: dg.ResourceParam[StorageResource],
        compute: dg.ResourceParam[ComputeResource],
    ):
        """Linear separability of real lenses and injections in the model's embedding (seeds
        4.3): logistic-regression AUC (stratified k-fold) for Tier-A vs low-beta_frac
        injections (hosts random and Tier-A matched) and Tier-A vs Tier-B; Fréchet distances."""
        run = _run_context(project, config, injection_priors, training_manifest, storage, compute)
        value, metadata = run_linear_probe(run, log=context.log)
        yield dg.Output(value, metadata=metadata)
        yield frozen_model_check(context, model_name, run.checkpoint_sha256)

    @dg.asset(check_specs=[frozen_check_spec("tier_a_scoring")], **common, **gpu)
    def tier_a_scoring(
        context: dg.AssetExecutionContext,
        injection_priors: dict,
        training_manifest: pd.DataFrame,
        storage: dg.ResourceParam[StorageResource],
        compute: dg.ResourceParam[ComputeResource],
    ):
        """Scores of every Tier-A validation lens (seeds 4.4) by the frozen model."""
        run = _run_context(project, config, injection_priors, training_manifest, storage, compute)
        value, metadata = run_tier_a_scoring(run, log=context.log)
        yield dg.Output(value, metadata=metadata)
        yield frozen_model_check(context, model_name, run.checkpoint_sha256)

    @dg.asset(check_specs=[frozen_check_spec("poisson_diagnostics")], **common, **gpu)
    def poisson_diagnostics(
        context: dg.AssetExecutionContext,
        injection_priors: dict,
        training_manifest: pd.DataFrame,
        storage: dg.ResourceParam[StorageResource],
        compute: dg.ResourceParam[ComputeResource],
    ):
        """Noise of injected arcs per band (seeds 4.5): Poisson noise added at the priors'
        gain against its expectation (arc/gain) and against the hosts' invvar noise."""
        run = _run_context(project, config, injection_priors, training_manifest, storage, compute)
        value, metadata = run_poisson_diagnostics(run, log=context.log)
        yield dg.Output(value, metadata=metadata)
        yield frozen_model_check(context, model_name, run.checkpoint_sha256)

    return [
        injection_priors,
        grid_completeness,
        bright_arc,
        linear_probe,
        tier_a_scoring,
        poisson_diagnostics,
    ]


# --------------------------------------------------------------------------------------------
# Runs (Dagster-free apart from the log; called by the assets above)
# --------------------------------------------------------------------------------------------


def run_grid(run: RunContext, variant: str, *, log: Any) -> tuple[dict[str, Any], Any]:
    """Run one grid partition; write cell files, the selection function and grid_results."""

    if variant not in ("no_poisson", "poisson"):
        raise D06Error(f"unknown grid variant {variant!r}")
    start = time.perf_counter()
    cfg = run.config
    mode = cfg.hosts.matching
    pool = run.pool(mode)
    hosts = run.arrays(pool.table)  # validated (finite) before any write
    cells = grid_cells(run.priors.grid)
    n = cfg.grid.injections_per_cell
    gain = run.priors.gain_array() if variant == "poisson" else None
    keys = grid_keys(variant)
    scores_by_cell: list[np.ndarray] = []
    cell_files = []
    all_hosts = []
    seconds_scoring = 0.0
    for row in cells.itertuples(index=False):
        cell = int(row.cell)
        fixed = {name: float(getattr(row, name)) for name in PARAMETERS}
        batch = make_injections(
            run.priors,
            pool,
            hosts,
            n,
            seed=cfg.seed,
            tags=("grid", cell),
            noise_tags=("grid-noise", variant, cell),
            fixed=fixed,
            poisson_gain=gain,
            chunk_size=cfg.chunk_size,
            xp=run.xp,
        )
        t0 = time.perf_counter()
        scores = run.score(batch.images)
        seconds_scoring += time.perf_counter() - t0
        arrays = {
            **batch.params.arrays(),
            "host_index": batch.host_index.astype(np.int64),
            "host_object_id": _id_array(pool.table["object_id"].iloc[batch.host_index]),
            "scores": scores.astype(np.float32),
            "bands": np.asarray(run.priors.bands, dtype=np.str_),
            **run.sha_arrays(),
        }
        if cfg.grid.store_images:
            arrays["images"] = batch.images
        data = encode_npz(arrays)
        key = cell_key(variant, cell)
        run.store.write_bytes(key, data)
        scores_by_cell.append(scores)
        all_hosts.append(batch.host_index)
        cell_files.append({"cell": cell, "key": key, "sha256": sha256_bytes(data)})
        k = count_detected(scores, cfg.threshold)
        log.info(
            f"grid {variant}: cell {cell + 1}/{len(cells)} "
            + " ".join(f"{name}={fixed[name]:g}" for name in PARAMETERS)
            + f": {k}/{n} with p > {cfg.threshold:g}"
        )
    summary = grid_summary(
        cells,
        scores_by_cell,
        thresholds=cfg.thresholds,
        threshold=cfg.threshold,
        confidence_level=cfg.confidence_level,
    )
    table = selection_function(cells, scores_by_cell, cfg.threshold, cfg.confidence_level)
    for entry, files in zip(summary["cells"], cell_files, strict=True):
        entry["file"] = files["key"]
        entry["sha256"] = files["sha256"]
    results = {
        "variant": variant,
        "poisson": gain is not None,
        "poisson_gain": None
        if gain is None
        else dict(zip(run.priors.bands, gain.tolist(), strict=True)),
        "injections_per_cell": n,
        "host_matching": mode,
        "host_pool_size": len(pool.table),
        **run.provenance(),
        **summary,
    }
    run.store.write_bytes(keys["selection_function_key"], _parquet_bytes(table))
    run.store.write_bytes(keys["results_key"], _json_bytes(results))
    seconds = time.perf_counter() - start
    hosts_info = host_match_summary(pool, np.concatenate(all_hosts), run.tier_a())
    value = {
        **keys,
        **run.provenance(),
        "variant": variant,
        "n_injections": summary["n_injections"],
        "n_cells": summary["n_cells"],
        "threshold": cfg.threshold,
        "k": summary["k"],
        "completeness": summary["completeness"],
        "ci_low": summary["ci_low"],
        "ci_high": summary["ci_high"],
        "hosts": hosts_info,
    }
    metadata = {
        "completeness": summary["completeness"],
        "k": summary["k"],
        "n_injections": summary["n_injections"],
        "ci_low": summary["ci_low"],
        "ci_high": summary["ci_high"],
        "checkpoint_sha256": run.checkpoint_sha256,
        "priors_sha256": run.priors_sha256,
        "seconds": round(seconds, 2),
        "seconds_scoring": round(seconds_scoring, 2),
        "injections_per_s": round(summary["n_injections"] / max(seconds, 1e-9), 1),
        "device": str(run.device),
        "results": dg.MetadataValue.path(run.store.uri(keys["results_key"])),
        "selection_function": dg.MetadataValue.md(_marginal_markdown(summary, cfg.threshold)),
    }
    check = verify_grid_files(run.store, variant, table)
    return {"value": value, "metadata": metadata}, check


def verify_grid_files(store: Any, variant: str, table: pd.DataFrame) -> dg.AssetCheckResult:
    """Re-read every cell file: its stored scores give the table's k and n at the threshold."""
    results = json.loads(store.read_bytes(grid_keys(variant)["results_key"]))
    threshold = results["threshold"]
    mismatched = []
    for row in table.itertuples(index=False):
        scores = decode_npz(store.read_bytes(cell_key(variant, int(row.cell))), ("scores",))[
            "scores"
        ]
        if len(scores) != row.n or count_detected(scores, threshold) != row.k:
            mismatched.append(int(row.cell))
    return dg.AssetCheckResult(
        check_name="counts_match_cell_files",
        passed=not mismatched,
        metadata={"cells": len(table), "mismatched_cells": mismatched[:20]},
    )


def _marginal_markdown(summary: dict[str, Any], threshold: float) -> str:
    marginal = summary["marginal"][f"{threshold:g}"]
    lines = [f"Completeness at p > {threshold:g} per axis value (k/n, Wilson 68%)", ""]
    for axis, rows in marginal.items():
        cells = ", ".join(
            f"{r['value']:g}: {r['k']}/{r['n']} = {100 * r['completeness']:.1f}%" for r in rows
        )
        lines.append(f"- **{axis}**: {cells}")
    return "\n".join(lines)


def run_bright_arc(run: RunContext, variant: str, *, log: Any) -> tuple[dict, dict]:
    """One bright-arc variant: inject, score, rates per magnitude bin; results + cutouts."""
    start = time.perf_counter()
    cfg = run.config
    spec = run.priors.bright_arc.variants[variant]
    mode = cfg.hosts.matching
    pool = run.pool(mode)
    hosts = run.arrays(pool.table)
    n = cfg.bright_arc.injections
    gain = run.priors.gain_array(spec.gain) if spec.poisson else None
    geometry = "restricted" if spec.restricted else "unrestricted"
    batch = make_injections(
        run.priors,
        pool,
        hosts,
        n,
        seed=cfg.seed,
        tags=("bright_arc", geometry),  # variants of one geometry share arcs and hosts
        noise_tags=("bright_arc-noise", variant),
        distributions=bright_arc_distributions(run.priors, variant),
        poisson_gain=gain,
        clip=spec.clip,
        chunk_size=cfg.chunk_size,
        xp=run.xp,
    )
    scores = run.score(batch.images)
    log.info(f"bright_arc {variant}: {n} injections scored")
    rates = detection_rates(
        scores,
        batch.params.source_mag,
        thresholds=cfg.thresholds,
        mag_bins=run.priors.bright_arc.mag_bins,
        confidence_level=cfg.confidence_level,
    )
    keys = ba_keys(variant)
    results = {
        "variant": variant,
        "definition": spec.model_dump(mode="json"),
        "host_matching": mode,
        "threshold": cfg.threshold,
        **run.provenance(),
        **rates,
    }
    gallery = min(cfg.bright_arc.gallery_images, n)
    arrays = {
        **batch.params.arrays(),
        "host_index": batch.host_index.astype(np.int64),
        "host_object_id": _id_array(pool.table["object_id"].iloc[batch.host_index]),
        "scores": scores.astype(np.float32),
        "images": batch.images[:gallery],
        "bands": np.asarray(run.priors.bands, dtype=np.str_),
        **run.sha_arrays(),
    }
    run.store.write_bytes(keys["cutouts_key"], encode_npz(arrays))
    run.store.write_bytes(keys["results_key"], _json_bytes(results))
    primary = rates["rates"][f"{cfg.threshold:g}"]
    value = {
        **keys,
        **run.provenance(),
        "variant": variant,
        "n": n,
        "rates": {t: r["completeness"] for t, r in rates["rates"].items()},
    }
    metadata = {
        "detection_rate": primary["completeness"],
        "k": primary["k"],
        "n": n,
        "checkpoint_sha256": run.checkpoint_sha256,
        "priors_sha256": run.priors_sha256,
        "seconds": round(time.perf_counter() - start, 2),
        "by_source_mag": dg.MetadataValue.md(
            f"| source mag | n | rate (p > {cfg.threshold:g}) |\n|---|---|---|\n"
            + "\n".join(
                f"| {b['mag_low']:g}-{b['mag_high']:g} | {b['rates'][f'{cfg.threshold:g}']['n']} "
                f"| {_pct(b['rates'][f'{cfg.threshold:g}']['completeness'])} |"
                for b in rates["by_source_mag"]
            )
        ),
    }
    return value, metadata


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def run_linear_probe(run: RunContext, *, log: Any) -> tuple[dict, dict]:
    """Embeddings of Tier-A, Tier-B and low-beta_frac injections; probes and distances."""
    start = time.perf_counter()
    cfg = run.config
    lenses = cfg.lenses
    tier_a = run.tier_a()
    tier_b = validation_lenses(run.manifest, lenses.splits, ["B"], lenses.sources)
    if len(tier_a) < 2 or len(tier_b) < 2:
        raise D06Error(
            f"the linear probe needs >= 2 Tier-A and Tier-B validation lenses; got "
            f"{len(tier_a)} and {len(tier_b)} (splits {lenses.splits}, sources {lenses.sources})"
        )
    emb_a = run.embed(run.arrays(tier_a, ("cutout",))["cutout"])
    emb_b = run.embed(run.arrays(tier_b, ("cutout",))["cutout"])
    probe = cfg.linear_probe
    kwargs = {"n_folds": probe.folds, "seed": cfg.seed, "C": probe.C, "max_iter": probe.max_iter}
    by_mode: dict[str, Any] = {}
    injection_embeddings: dict[str, np.ndarray] = {}
    for mode in HOST_MODES:
        pool = run.pool(mode)
        hosts = run.arrays(pool.table)
        batch = make_injections(
            run.priors,
            pool,
            hosts,
            probe.injections,
            seed=cfg.seed,
            tags=("probe", mode),
            distributions=probe_distributions(run.priors),
            chunk_size=cfg.chunk_size,
            xp=run.xp,
        )
        emb = run.embed(batch.images)
        injection_embeddings[mode] = emb
        by_mode[mode] = {
            # folds never split a host's injections (nor a lens): no score from known hosts
            "tier_a_vs_injections": linear_probe_auc(
                emb_a,
                emb,
                positive_groups=tier_a["object_id"].to_numpy(),
                negative_groups=pool.table["object_id"].to_numpy()[batch.host_index],
                **kwargs,
            ),
            "frechet_tier_a_vs_injections": frechet_distance(
                emb_a, emb, regularisation=probe.frechet_regularisation
            ),
            "hosts": host_match_summary(pool, batch.host_index, tier_a),
        }
        log.info(
            f"linear_probe: hosts {mode}: Tier-A vs injections AUC "
            f"{by_mode[mode]['tier_a_vs_injections']['auc_mean']:.3f}"
        )
    headline = cfg.hosts.matching
    tier_ab = linear_probe_auc(emb_a, emb_b, **kwargs)
    results = {
        "tier_a_vs_injections": {**by_mode[headline]["tier_a_vs_injections"], "hosts": headline},
        "tier_a_vs_tier_b": tier_ab,
        "frechet": {
            "tier_a_vs_injections": by_mode[headline]["frechet_tier_a_vs_injections"],
            "tier_a_vs_tier_b": frechet_distance(
                emb_a, emb_b, regularisation=probe.frechet_regularisation
            ),
        },
        "by_host_matching": by_mode,
        "injections": {
            "n": probe.injections,
            "beta_frac": probe_distributions(run.priors).beta_frac.model_dump(mode="json"),
        },
        "n_tier_a": len(tier_a),
        "n_tier_b": len(tier_b),
        **run.provenance(),
    }
    keys = {
        "results_key": PROBE_RESULTS_KEY,
        "embeddings_key": PROBE_EMBEDDINGS_KEY,
    }
    run.store.write_bytes(
        keys["embeddings_key"],
        encode_npz(
            {
                "tier_a": emb_a,
                "tier_b": emb_b,
                "injections": injection_embeddings[headline],
                **{f"injections_{m}": e for m, e in injection_embeddings.items()},
                "tier_a_object_id": _id_array(tier_a["object_id"]),
                "tier_b_object_id": _id_array(tier_b["object_id"]),
                **run.sha_arrays(),
            }
        ),
    )
    run.store.write_bytes(keys["results_key"], _json_bytes(results))
    value = {
        **keys,
        **run.provenance(),
        "tier_a_vs_injections_auc": results["tier_a_vs_injections"]["auc_mean"],
        "tier_a_vs_tier_b_auc": tier_ab["auc_mean"],
        "by_host_matching_auc": {
            m: r["tier_a_vs_injections"]["auc_mean"] for m, r in by_mode.items()
        },
    }
    metadata = {
        **{
            f"auc_tier_a_vs_injections_{m}": r["tier_a_vs_injections"]["auc_mean"]
            for m, r in by_mode.items()
        },
        "auc_tier_a_vs_tier_b": tier_ab["auc_mean"],
        "frechet_tier_a_vs_injections": results["frechet"]["tier_a_vs_injections"]["distance"],
        "frechet_tier_a_vs_tier_b": results["frechet"]["tier_a_vs_tier_b"]["distance"],
        "n_tier_a": len(tier_a),
        "n_tier_b": len(tier_b),
        "checkpoint_sha256": run.checkpoint_sha256,
        "priors_sha256": run.priors_sha256,
        "seconds": round(time.perf_counter() - start, 2),
    }
    return value, metadata


def run_tier_a_scoring(run: RunContext, *, log: Any) -> tuple[dict, dict]:
    """Scores of every Tier-A validation lens; Parquet table plus rates at the thresholds."""
    cfg = run.config
    tier_a = run.tier_a()
    if len(tier_a) == 0:
        raise D06Error("no Tier-A lens in the validation split to score")
    scores = run.score(run.arrays(tier_a, ("cutout",))["cutout"])
    columns = [
        c
        for c in (
            "object_id",
            "cutout_key",
            "cutout_row",
            "tier",
            "source",
            "split",
            "ra",
            "dec",
            "mag_r",
            "shape_r",
            "psfsize_g",
            "psfsize_r",
            "psfsize_z",
        )
        if c in tier_a.columns
    ]
    table = tier_a[columns].reset_index(drop=True).copy()
    table.insert(1, "score", scores.astype(np.float32))
    table["checkpoint_sha256"] = run.checkpoint_sha256
    table["priors_sha256"] = run.priors_sha256
    key = TIER_A_SCORES_KEY
    run.store.write_bytes(key, _parquet_bytes(table))
    rates = threshold_rates(scores, cfg.thresholds, cfg.confidence_level)
    log.info(f"tier_a_scoring: {len(table)} Tier-A lenses scored")
    value = {
        "scores_key": key,
        **run.provenance(),
        "n": len(table),
        "recall": {t: r["completeness"] for t, r in rates.items()},
        "median_score": float(np.median(scores)),
    }
    metadata = {
        "n": len(table),
        "median_score": float(np.median(scores)),
        **{f"recall_p_gt_{t}": r["completeness"] for t, r in rates.items()},
        "checkpoint_sha256": run.checkpoint_sha256,
        "priors_sha256": run.priors_sha256,
    }
    return value, metadata


def run_poisson_diagnostics(run: RunContext, *, log: Any) -> tuple[dict, dict]:
    """Poisson noise of bright injected arcs against arc/gain and against the host invvar."""
    from stronglens_assets.science.lensing.injection import inject

    cfg = run.config
    pool = run.pool(cfg.hosts.matching)
    hosts = run.arrays(pool.table, ("cutout", "psfsize", "invvar"))
    n = cfg.poisson_diagnostics.injections
    rng = derived_rng(cfg.seed, "poisson_diagnostics")
    params = sample_parameters(
        run.priors, n, rng, distributions=bright_arc_distributions(run.priors, "baseline")
    )
    index = draw_hosts(pool, n, rng)
    arcs = np.asarray(
        render_injection_arcs(params, hosts["psfsize"][index], size=hosts["cutout"].shape[-1])
    )
    gain = run.priors.gain_array()
    noisy = inject(np.zeros_like(arcs), arcs, poisson_gain=gain, rng=rng)
    residual = np.asarray(noisy, dtype=np.float64) - arcs
    invvar = hosts["invvar"][index]
    diagnostics = poisson_noise_diagnostics(
        arcs, residual, invvar, gain, run.priors.bands, arc_sigma=cfg.poisson_diagnostics.arc_sigma
    )
    png = poisson_diagnostics_png(
        arcs, residual, invvar, gain, run.priors.bands, arc_sigma=cfg.poisson_diagnostics.arc_sigma
    )
    keys = {
        "results_key": POISSON_DIAGNOSTICS_KEY,
        "plot_key": POISSON_DIAGNOSTICS_PLOT_KEY,
    }
    results = {
        "n_injections": n,
        "distributions": "bright_arc baseline",
        **run.provenance(),
        **diagnostics,
    }
    run.store.write_bytes(keys["plot_key"], png)
    run.store.write_bytes(keys["results_key"], _json_bytes(results))
    log.info(f"poisson_diagnostics: {n} injections")
    value = {**keys, **run.provenance(), "bands": diagnostics["bands"]}
    metadata: dict[str, Any] = {
        "checkpoint_sha256": run.checkpoint_sha256,
        "priors_sha256": run.priors_sha256,
        "plot": dg.MetadataValue.md(png_data_uri_markdown(png, "Poisson diagnostics")),
    }
    for band, entry in diagnostics["bands"].items():
        for name in ("chi2_per_pixel", "poisson_to_sky_variance_median"):
            if name in entry:
                metadata[f"{band}_{name}"] = entry[name]
    return value, metadata
