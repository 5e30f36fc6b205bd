"""D06 injection-recovery assets, to the published protocol (PROTOCOL.md; science in
``science/experiments/``).

=======================  =====================  ==============================================
asset                    partitions             result set under ``results/D06/``
=======================  =====================  ==============================================
``injection_priors``     -                      (value: the validated priors and sha256)
``d06_hosts``            -                      host cache (``d06/hosts`` shard set)
``grid_completeness``    no_poisson, poisson    ``grid_<p>/``: ``selection_function.csv``,
                                                ``selection_function_meta.json``,
                                                ``injections.parquet``, ``completeness.png``
``bright_arc``           6 variants             ``ba_<v>/``: ``bright_arc_results.json``,
                                                ``injections.parquet``, ``cutouts.npz``
``linear_probe``         -                      ``linear_probe/``: ``feature_space_results.json``,
                                                ``permutation_bootstrap_results.json``,
                                                ``embeddings.npz``
``tier_a_scoring``       -                      ``tier_a_scoring/``:
                                                ``real_lens_scoring_results.json``,
                                                ``tier_a_scores.parquet``
``poisson_diagnostics``  -                      ``poisson_diagnostics/``: ``mcnemar_results.json``,
                                                ``score_changes.png``, ``gain_sweep.json``,
                                                ``per_host_gains.csv``
=======================  =====================  ==============================================

Every result set is written atomically (:mod:`~stronglens_assets.resources.result_sets`: a new
version folder, then one pointer), in the published file shapes, so
:func:`~stronglens_assets.science.reporting.d06_results.read_d06_results` reads our results
(through :class:`~stronglens_assets.resources.result_sets.ResultSetSource`) as it reads the
published directory. The model assets (one factory, :func:`_model_asset`) load the frozen
model of ``configs/d06.yaml`` ``model_config``, its evaluation thresholds (contract 2:
``load_model_thresholds``; an unresolved FPR target is skipped and listed, or an error when
``unresolved_fpr: error``), validate their inputs before writing anything, record
``checkpoint_sha256`` and ``priors_sha256``, and are GPU-tagged.
"""

import io
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd

from stronglens_assets.assets.metadata import ui_metadata
from stronglens_assets.assets.shared import (
    MODEL_CHECKPOINT,
    frozen_check_spec,
    frozen_model_check,
    load_frozen_model,
    load_model_thresholds,
    recorded_checkpoint_sha,
)
from stronglens_assets.config import ConfigError
from stronglens_assets.errors import StronglensError
from stronglens_assets.mock_survey.config import load_demo_sky
from stronglens_assets.partitions import bright_arc_variant_partitions, grid_variant_partitions
from stronglens_assets.project import Project
from stronglens_assets.resources.compute import GPU_POOL, ComputeResource, gpu_op_tags
from stronglens_assets.resources.object_store import ObjectNotFoundError
from stronglens_assets.resources.result_sets import (
    ResultSet,
    read_result_set,
    result_pointer_key,
    verify_result_set,
    write_result_set,
)
from stronglens_assets.resources.serialization import encode
from stronglens_assets.resources.shards import (
    pointer_key,
    read_index,
    read_shard,
    read_shard_set,
    write_shard_set,
)
from stronglens_assets.resources.storage import StorageResource
from stronglens_assets.science.catalogs.bricks import PIXEL_SCALE_ARCSEC
from stronglens_assets.science.core.hashing import sha256_file
from stronglens_assets.science.core.npz import encode_npz
from stronglens_assets.science.core.units import sky_nanomaggies_per_pixel
from stronglens_assets.science.experiments.bright_arcs import (
    bin_labels,
    bright_arc_results,
    detection_rates,
    gain_sweep_rates,
    paired_mcnemar,
)
from stronglens_assets.science.experiments.config import (
    D06_CONFIG_FILENAME,
    D06Config,
    derived_rng,
    load_d06_config,
)
from stronglens_assets.science.experiments.grid import (
    GridError,
    grid_cells,
    marginal_rates,
    selection_function_table,
)
from stronglens_assets.science.experiments.hosts import (
    HostError,
    host_table,
    manifest_lenses,
    manifest_negatives,
    read_host_arrays,
)
from stronglens_assets.science.experiments.injections import InjectionRun, run_injections
from stronglens_assets.science.experiments.probe import (
    brightness_features,
    frechet_distance,
    linear_probe_auc,
    probe_significance,
)
from stronglens_assets.science.experiments.scoring import (
    real_lens_scoring,
    threshold_specs,
)
from stronglens_assets.science.imaging.gain import DECAM_DARK_SKY_MAG_ARCSEC2, host_gains
from stronglens_assets.science.lensing.priors import (
    InjectionPriors,
    load_priors,
    priors_file_sha256,
    priors_sha256,
)
from stronglens_assets.science.reporting.labels import is_mock_environment
from stronglens_assets.science.reporting.plots import (
    completeness_grid_png,
    png_data_uri_markdown,
    score_change_png,
)
from stronglens_assets.science.stats.thresholds import ThresholdSpec
from stronglens_assets.storage_keys import (
    BRIGHT_ARC_SET,
    CHECKPOINT_KEY,
    D06_HOST_CACHE_PREFIX,
    D06_ROOT,
    GRID_SET,
    POISSON_DIAGNOSTICS_SET,
    PROBE_SET,
    TIER_A_SET,
)

D06_GROUP = "d06"
EVALUATION_THRESHOLDS = "evaluation_thresholds"
"""The evaluation asset writing a model's thresholds file (contract 2)."""
HOST_CACHE_PARTITION = "cache"
HOST_CACHE_ROWS = 2048
"""Hosts per shard of the host cache."""
PER_HOST_GAIN_FIELD = f"configs/{D06_CONFIG_FILENAME} poisson_diagnostics.per_host_gain"
PER_HOST_GAINS_FILE = "per_host_gains.csv"
"""``poisson_diagnostics`` file: each bright-arc host's own gain per band (e-/nmgy)."""


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
    model_name: str
    checkpoint_sha256: str
    d06_config_sha256: str
    thresholds: list[ThresholdSpec]
    unresolved: list[dict[str, Any]]
    device: Any
    xp: Any
    store: Any
    manifest: pd.DataFrame
    hosts: pd.DataFrame
    host_arrays: dict[str, np.ndarray]
    _host_scores: dict[int, float] = field(default_factory=dict)

    def checkpoint_label(self) -> str:
        return f"{CHECKPOINT_KEY.format(name=self.model_name)} (sha256 {self.checkpoint_sha256})"

    def provenance(self) -> dict[str, Any]:
        return {
            "model_config": self.model_name,
            "checkpoint_sha256": self.checkpoint_sha256,
            "priors_sha256": self.priors_sha256,
            "d06_config_sha256": self.d06_config_sha256,
            "prior": self.config.prior,
        }

    def preprocessing(self, clip: float | None = None) -> dict[str, Any]:
        """The model's preprocessing (contract 3), with the clip range ``clip`` if given."""
        from stronglens_assets.science.learning.scoring import model_preprocessing

        settings = model_preprocessing(self.model, None if clip is None else {"clip": clip})
        return {
            "mode": settings.method,
            "crop": settings.method == "crop_robust",
            "clip_range": float(settings.clip),
            "settings": settings.model_dump(mode="json"),
        }

    def score(self, images: np.ndarray, clip: float | None = None) -> np.ndarray:
        """p(lens) of raw cutouts; ``clip`` overrides the preprocessing clip range on purpose
        (the clip20 variants)."""
        from stronglens_assets.science.learning.scoring import score_cutouts

        if len(images) == 0:
            return np.zeros(0, np.float32)
        return score_cutouts(
            self.model,
            images,
            batch_size=self.config.batch_size,
            device=self.device,
            preprocessing_override=None if clip is None else {"clip": clip},
        )

    def embed(self, images: np.ndarray) -> np.ndarray:
        from stronglens_assets.science.learning.scoring import embed_cutouts

        return embed_cutouts(
            self.model, images, batch_size=self.config.batch_size, device=self.device
        )

    def host_scores(self, rows: np.ndarray, clip: float | None = None) -> np.ndarray:
        """p(lens) of hosts (rows of the host cache) without an arc (the false-positive
        floor), each host scored once per run and clip."""
        rows = np.asarray(rows, dtype=np.int64)
        key = (lambda r: (int(r), clip)) if clip is not None else int
        todo = np.unique([r for r in rows if key(r) not in self._host_scores])
        if len(todo):
            scores = self.score(self.host_arrays["cutout"][todo], clip=clip)
            self._host_scores.update({key(r): float(s) for r, s in zip(todo, scores, strict=True)})
        return np.array([self._host_scores[key(r)] for r in rows], dtype=np.float64)

    def write(self, name: str, files: dict[str, bytes]) -> ResultSet:
        return write_result_set(self.store, D06_ROOT, name, files)


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


def load_frozen(
    store: Any, name: str, project: Project, expected_sha256: str | None = None
) -> tuple[Any, str]:
    """The frozen model of config ``name`` and its checkpoint sha256 (clear error if none);
    with ``expected_sha256`` (``model_checkpoint``'s record) the bytes are checked before
    anything is scored."""
    key = CHECKPOINT_KEY.format(name=name)
    if not store.exists(key):
        raise D06Error(
            f"model config {name!r} (configs/{D06_CONFIG_FILENAME} model_config) has no "
            f"checkpoint at {store.uri(key)}; materialize {MODEL_CHECKPOINT}[{name}] first"
        )
    try:
        return load_frozen_model(
            store,
            name,
            project.settings.config_dir,
            profile=project.settings.profile,
            expected_sha256=expected_sha256,
        )
    except ObjectNotFoundError as exc:  # pragma: no cover - raced with a delete
        raise D06Error(f"model config {name!r}: {exc}") from exc


def model_thresholds(
    storage: StorageResource, config: D06Config
) -> tuple[list[ThresholdSpec], list[dict[str, Any]]]:
    """The fixed thresholds plus the model's resolved FPR-derived ones (contract 2)."""
    resolved, unresolved = load_model_thresholds(storage, config.model_config_name)
    if unresolved and config.unresolved_fpr == "error":
        reasons = "; ".join(f"{u.get('label')}: {u.get('reason')}" for u in unresolved)
        raise D06Error(f"unresolved FPR thresholds ({reasons}) and d06.yaml unresolved_fpr: error")
    return threshold_specs(config.fixed_thresholds, resolved), list(unresolved)


def load_host_cache(store: Any) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """The host table and arrays of ``d06_hosts`` (clear error if it was never written)."""
    try:
        shard_set = read_shard_set(store, D06_HOST_CACHE_PREFIX, HOST_CACHE_PARTITION)
    except ObjectNotFoundError as exc:
        raise D06Error("no D06 host cache: materialize d06_hosts first") from exc
    table = read_index(store, shard_set)
    parts = [read_shard(store, record) for record in shard_set.shards]
    arrays = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    arrays["usable"] = arrays["usable"].astype(bool)
    return table, arrays


def _run_context(
    project: Project,
    config: D06Config,
    injection_priors: dict[str, Any],
    training_manifest: pd.DataFrame,
    storage: StorageResource,
    compute: ComputeResource,
    *,
    needs_thresholds: bool = True,
    expected_checkpoint_sha256: str | None = None,
) -> RunContext:
    priors, sha = priors_from_value(injection_priors)
    if config.prior not in priors.priors:
        raise ConfigError(
            f"invalid config {project.settings.config_dir / D06_CONFIG_FILENAME}:\n"
            f"  prior: {config.prior!r} is not a prior of injection_priors.yaml "
            f"({sorted(priors.priors)})"
        )
    store = storage.object_store()
    model, checkpoint_sha = load_frozen(
        store, config.model_config_name, project, expected_checkpoint_sha256
    )
    thresholds, unresolved = (
        model_thresholds(storage, config)
        if needs_thresholds
        else (threshold_specs(config.fixed_thresholds, []), [])
    )
    hosts, arrays = load_host_cache(store)
    return RunContext(
        config=config,
        priors=priors,
        priors_sha256=sha,
        model=model,
        model_name=config.model_config_name,
        checkpoint_sha256=checkpoint_sha,
        d06_config_sha256=sha256_file(project.settings.config_dir / D06_CONFIG_FILENAME),
        thresholds=thresholds,
        unresolved=unresolved,
        device=compute.torch_device(),
        xp=compute.array_module(),
        store=store,
        manifest=training_manifest,
        hosts=hosts,
        host_arrays=arrays,
    )


def _encoded(value: Any, extension: str) -> bytes:
    data, got = encode(value)
    if got != extension:
        raise D06Error(f"expected a {extension} value, got one encoded as {got}")
    return data


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=2, allow_nan=True) + "\n").encode()


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _check_model_config(project: Project, config: D06Config) -> None:
    path = project.settings.config_dir / "models" / f"{config.model_config_name}.yaml"
    if not path.exists():
        raise ConfigError(
            f"invalid config {project.settings.config_dir / D06_CONFIG_FILENAME}:\n"
            f"  model_config: no model config {config.model_config_name!r} ({path} is missing)"
        )


def _injection_table(run: RunContext, inj: InjectionRun, **columns: Any) -> pd.DataFrame:
    """One row per injection: parameters, host, truth (lensed r mag, r arc S/N)."""
    table = pd.DataFrame({k: v for k, v in inj.params.arrays().items() if v.ndim == 1})
    for j, band in enumerate(run.priors.bands):
        table[f"source_mag_{band}"] = inj.params.mags[:, j]
    table.insert(0, "slot", inj.slot)
    table.insert(1, "host_object_id", run.hosts["object_id"].astype(str).to_numpy()[inj.host_row])
    table.insert(2, "host_psf_fwhm", run.hosts["psf_fwhm"].to_numpy()[inj.host_row])
    table.insert(3, "host_depth_5sig", run.hosts["depth_5sig"].to_numpy()[inj.host_row])
    table["lensed_mag"] = inj.lensed_mag
    table["arc_snr"] = inj.arc_snr
    for name, value in columns.items():
        table[name] = value
    return table


# --------------------------------------------------------------------------------------------
# Runs (Dagster-free apart from the log)
# --------------------------------------------------------------------------------------------


def build_host_cache(
    config: D06Config, manifest: pd.DataFrame, store: Any
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Choose and bin the hosts, read their cutouts once, write the cache shard set."""
    design = config.grid
    negatives = manifest_negatives(manifest, config.hosts.splits)
    table, counts = host_table(
        negatives,
        psf_fwhm=design.psf_fwhm,
        depth=design.depth_5sig,
        max_hosts=config.hosts.max_hosts,
        rng=derived_rng(config.hosts.seed, "hosts"),
    )
    arrays = read_host_arrays(store.read_bytes, table)
    table["usable"] = arrays["usable"]
    shards = [
        {
            "cutout": arrays["cutout"][s],
            "invvar": arrays["invvar"][s],
            "psfsize": arrays["psfsize"][s],
            "usable": arrays["usable"][s].astype(np.uint8),
        }
        for s in (
            slice(i, min(i + HOST_CACHE_ROWS, len(table)))
            for i in range(0, len(table), HOST_CACHE_ROWS)
        )
    ]
    keep = [
        c
        for c in (
            "object_id",
            "split",
            "cutout_key",
            "cutout_row",
            "ra",
            "dec",
            "mag_r",
            "shape_r",
            "psf_fwhm",
            "depth_5sig",
            "psf_bin",
            "depth_bin",
            "usable",
        )
        if c in table.columns
    ]
    shard_set = write_shard_set(
        store, D06_HOST_CACHE_PREFIX, HOST_CACHE_PARTITION, shards, table[keep]
    )
    cells = table[(table["psf_bin"] >= 0) & (table["depth_bin"] >= 0)]
    n_conditions = int(cells.groupby(["psf_bin", "depth_bin"]).ngroups)
    summary = {
        **counts,
        "n_unusable_cutouts": int((~arrays["usable"]).sum()),
        "host_splits": list(config.hosts.splits),
        "occupied_psf_depth_bins": n_conditions,
        "pointer_version": shard_set.version,
    }
    return summary, table


def run_grid(run: RunContext, variant: str, *, log: Any) -> tuple[dict[str, Any], dict]:
    """One grid partition: inject and score every non-empty cell; write the result set."""
    if variant not in ("no_poisson", "poisson"):
        raise D06Error(f"unknown grid variant {variant!r}")
    start = time.perf_counter()
    cfg, design = run.config, run.config.grid
    gain = design.poisson_gain if variant == "poisson" else None
    cells = grid_cells(design.theta_e, design.psf_fwhm, design.depth_5sig)
    psf_bin = run.hosts["psf_bin"].to_numpy()
    depth_bin = run.hosts["depth_bin"].to_numpy()
    frames, failed, failures, retries = [], {}, [], 0
    for cell in cells.itertuples(index=False):
        candidates = np.flatnonzero((psf_bin == cell.psf_bin) & (depth_bin == cell.depth_bin))
        if len(candidates) == 0:
            continue
        inj = run_injections(
            run.priors,
            run.host_arrays,
            candidates,
            design.injections_per_cell,
            prior=cfg.prior,
            theta_e=cell.theta_e,
            source_mag=tuple(design.source_mag),
            beta_frac=None,
            params_rng=derived_rng(design.seed, "grid", int(cell.cell)),
            noise_rng=derived_rng(design.seed, "grid-noise", int(cell.cell)),
            poisson_gain=gain,
            max_retries=design.max_retries,
            chunk_size=cfg.chunk_size,
            xp=run.xp,
        )
        scores = run.score(inj.images)
        frame = _injection_table(
            run,
            inj,
            cell=int(cell.cell),
            cell_theta_e=cell.theta_e,
            cell_psf_fwhm=cell.psf_fwhm,
            cell_depth_5sig=cell.depth_5sig,
            score=scores.astype(np.float64),
            host_score=run.host_scores(inj.host_row),
        )
        frames.append(frame)
        failed[int(cell.cell)] = inj.n_failed
        failures += inj.failures[: max(0, 20 - len(failures))]
        retries += inj.n_retries
    if not frames:
        raise GridError(
            f"every grid cell is empty: none of the {len(run.hosts)} hosts falls in a PSF bin of "
            f"{design.psf_fwhm} and a depth bin of {design.depth_5sig} "
            f"(configs/{D06_CONFIG_FILENAME} grid.psf_fwhm / grid.depth_5sig)"
        )
    injections = pd.concat(frames, ignore_index=True)
    table = selection_function_table(
        cells,
        injections,
        failed,
        run.thresholds,
        source_mag_bins=design.source_mag_bins,
        lensed_mag_bins=design.lensed_mag_bins,
        sufficient_min=design.sufficient_min_injections,
    )
    all_rows = table[
        (table["source_mag_bin"] == "all") & (table["threshold"] == run.thresholds[0].value)
    ]
    n_ok = int(injections.shape[0])
    n_failed = int(sum(failed.values()))
    fpr = [s for s in run.thresholds if s.fpr_target is not None]
    overall = marginal_rates(table, run.thresholds)
    meta = {
        "timestamp_utc": _now(),
        "checkpoint": run.checkpoint_label(),
        **run.provenance(),
        "host_split": ",".join(cfg.hosts.splits),
        "host_max": cfg.hosts.max_hosts,
        "thresholds": [s.value for s in run.thresholds],
        "threshold_labels": [s.label for s in run.thresholds],
        "unresolved_thresholds": run.unresolved,
        "injections_per_cell": design.injections_per_cell,
        "grid": {
            "theta_e": list(design.theta_e),
            "psf_fwhm": list(design.psf_fwhm),
            "depth_5sig": list(design.depth_5sig),
        },
        "source_mag_range": list(design.source_mag),
        "preprocessing": run.preprocessing()["mode"],
        "preprocessing_settings": run.preprocessing()["settings"],
        "crop": run.preprocessing()["crop"],
        "pixscale": 0.262,
        "seed": design.seed,
        "n_cells": len(cells),
        "n_sufficient_cells": int(all_rows["sufficient"].sum()),
        "n_empty_cells": int((all_rows["n_injections"] == 0).sum()),
        "total_injections_ok": n_ok,
        "total_injections_failed": n_failed,
        "failure_rate_pct": 100.0 * n_failed / max(n_ok + n_failed, 1),
        "retries": retries,
        "max_retries_per_injection": design.max_retries,
        "failure_log_sample": failures,
        "fpr_targets": [s.fpr_target for s in fpr],
        "fpr_derived_thresholds": {f"{s.fpr_target:g}": s.value for s in fpr},
        "fpr_n_negatives": {s.label: s.n_negatives for s in fpr},
        "add_poisson_noise": gain is not None,
        "gain_e_per_nmgy": gain,
        "add_sky_noise": False,
        "save_cutouts": False,
        "injection_engine": "SIE+shear (science.lensing.injection.render_arcs)",
        "source_model": f"Sersic, prior {cfg.prior} (clumps per the prior)",
        "marginal_completeness": overall,
        "marginal_by_theta_e": marginal_rates(table, run.thresholds, "theta_e"),
        "notes": [
            "Detection is p > threshold (strict).",
            "Per-cell intervals: equal-tailed Jeffreys, Beta(k + 1/2, n - k + 1/2) at 68% and 95%.",
            "Marginal rates: Wilson 95% (marginal_completeness).",
            "n_host_detected / host_only_rate: the same injections' hosts scored without an arc.",
            "Failed injections are retried with new hosts of the cell; only successful ones count.",
            'mean_arc_snr: r-band annulus S/N (|r - theta_E| <= 0.75") against the host invvar.',
        ],
    }
    primary = run.thresholds[0]
    plot = completeness_grid_png(
        table,
        primary.value,
        f"grid_completeness [{variant}]: {n_ok} injections, p > {primary.value:g}",
    )
    files = {
        "selection_function.csv": table.to_csv(index=False).encode(),
        "selection_function_meta.json": _json_bytes(meta),
        "injections.parquet": _encoded(injections, "parquet"),
        "completeness.png": plot,
    }
    result = run.write(GRID_SET.format(variant=variant), files)
    primary = primary.label
    log.info(f"grid {variant}: {n_ok} injections, {n_failed} failed")
    value = {
        **run.provenance(),
        "result_set": result.to_json(),
        "variant": variant,
        "completeness": {label: r for label, r in overall.items() if label != "rule"},
        "n_injections": n_ok,
        "n_failed": n_failed,
        "unresolved_thresholds": run.unresolved,
    }
    metadata = {
        "n_injections": n_ok,
        "n_failed": n_failed,
        "non_empty_cells": int((all_rows["n_injections"] > 0).sum()),
        "completeness": dg.MetadataValue.md(_rates_markdown(overall)),
        "completeness_plot": dg.MetadataValue.md(
            png_data_uri_markdown(plot, f"completeness vs theta_E, {variant}")
        ),
        f"completeness_{primary}": overall[primary]["rate"],
        "host_only_rate": overall[primary]["host_rate"],
        "unresolved_thresholds": ", ".join(u.get("label", "?") for u in run.unresolved) or "none",
        "checkpoint_sha256": run.checkpoint_sha256,
        "priors_sha256": run.priors_sha256,
        "d06_config_sha256": run.d06_config_sha256,
        "seconds": round(time.perf_counter() - start, 2),
    }
    return value, metadata


def _rates_markdown(rates: dict[str, Any]) -> str:
    lines = [
        "| threshold | k / n | completeness | Wilson 95% | host-only |",
        "|---|---|---|---|---|",
    ]
    for label, r in rates.items():
        if label == "rule" or not r["n"]:
            continue
        lo, hi = r["wilson95"]
        lines.append(
            f"| {label} | {r['k']} / {r['n']} | {100 * r['rate']:.2f}% | "
            f"[{100 * lo:.2f}, {100 * hi:.2f}]% | {100 * (r['host_rate'] or 0):.2f}% |"
        )
    return "\n".join(lines)


def bright_arc_hosts(run: RunContext) -> np.ndarray:
    """The paired design's hosts: ``n_hosts`` usable host rows (seeded), shared by every bin
    and variant."""
    design = run.config.bright_arc
    usable = np.flatnonzero(run.host_arrays["usable"])
    if len(usable) == 0:
        raise HostError("no usable host (every host cutout has NaN pixels or a bad psfsize)")
    rng = derived_rng(design.seed, "bright_arc_hosts")
    return rng.choice(usable, size=design.n_hosts, replace=design.n_hosts > len(usable))


def bright_arc_injections(
    run: RunContext,
    *,
    beta: list[float],
    gain: float | None,
    clip: float | None,
    keep_images: int | None = None,
    host_gain: np.ndarray | None = None,
) -> tuple[pd.DataFrame, np.ndarray, int]:
    """Inject and score the paired bright-arc design (every bin) with Poisson ``gain``
    (None: none) or each host's own gain ``host_gain`` (``(hosts, bands)`` e-/nmgy per host
    row) and preprocessing clip ``clip``; per-injection table, the first ``keep_images``
    (default: the design's gallery size) injected images, failures."""
    design = run.config.bright_arc
    keep = design.gallery_images if keep_images is None else keep_images
    hosts = bright_arc_hosts(run)
    all_hosts = np.flatnonzero(run.host_arrays["usable"])
    labels = bin_labels(design.mag_bins)
    frames, images, n_failed = [], [], 0
    for b, (lo, hi) in enumerate(itertools.pairwise(design.mag_bins)):
        n = design.injections_per_bin
        inj = run_injections(
            run.priors,
            run.host_arrays,
            all_hosts,
            n,
            prior=run.config.prior,
            theta_e=design.theta_e,
            source_mag=(lo, hi),
            beta_frac=(beta[0], beta[1]),
            params_rng=derived_rng(design.seed, "bright_arc", b, f"{beta[0]:g}", f"{beta[1]:g}"),
            noise_rng=derived_rng(design.seed, "bright_arc-noise", b),
            poisson_gain=gain,
            host_gain=host_gain,
            hosts=hosts[np.arange(n) % len(hosts)],
            max_retries=run.config.grid.max_retries,
            chunk_size=run.config.chunk_size,
            xp=run.xp,
        )
        scores = run.score(inj.images, clip=clip)
        frames.append(
            _injection_table(
                run,
                inj,
                mag_bin=labels[b],
                bin_index=b,
                score=scores.astype(np.float64),
                host_score=run.host_scores(inj.host_row, clip=clip),
            )
        )
        images.append(inj.images[: max(0, keep - sum(len(i) for i in images))])
        n_failed += inj.n_failed
    return pd.concat(frames, ignore_index=True), np.concatenate(images), n_failed


def run_bright_arc(run: RunContext, variant: str, *, log: Any) -> tuple[dict, dict]:
    """One bright-arc variant of the paired design; write ``ba_<variant>``."""
    start = time.perf_counter()
    design = run.config.bright_arc
    if variant not in design.variants:
        raise D06Error(f"unknown bright-arc variant {variant!r}; known: {sorted(design.variants)}")
    spec = design.variants[variant]
    beta = spec.beta_frac or design.beta_frac
    table, images, n_failed = bright_arc_injections(
        run, beta=beta, gain=spec.poisson_gain, clip=spec.preprocessing_clip
    )
    labels = bin_labels(design.mag_bins)
    header = {
        "timestamp_utc": _now(),
        "checkpoint": run.checkpoint_label(),
        **run.provenance(),
        "variant": variant,
        "description": spec.description,
        "clip_range_override": spec.preprocessing_clip,
        "preprocessing": run.preprocessing(spec.preprocessing_clip),
        "phase1_config": {
            "host_split": ",".join(run.config.hosts.splits),
            "n_hosts": design.n_hosts,
            "theta_e": design.theta_e,
            "beta_frac_range": list(beta),
            "add_poisson_noise": spec.poisson_gain is not None,
            "gain_e_per_nmgy": spec.poisson_gain,
            "add_sky_noise": False,
            "seed": design.seed,
            "clip_range": spec.preprocessing_clip,
        },
        "notes": [
            "Paired design: the same hosts and, per geometry, the same arcs in every variant.",
            "median_arc_snr: r-band annulus S/N; host_only_rate_p03: hosts without an arc.",
        ],
    }
    results = bright_arc_results(
        labels=labels,
        bin_index=table["bin_index"].to_numpy(),
        scores=table["score"].to_numpy(),
        arc_snr=table["arc_snr"].to_numpy(),
        host_scores=table["host_score"].to_numpy(),
        n_failed=n_failed,
        header=header,
    )
    gallery = images
    m = len(gallery)
    cutouts = {
        "images": gallery,
        "scores": table["score"].to_numpy(np.float32)[:m],
        "theta_e": table["theta_e"].to_numpy()[:m],
        "source_mag": table["source_mag"].to_numpy()[:m],
        "lensed_mag": table["lensed_mag"].to_numpy()[:m],
        "beta_frac": table["beta_frac"].to_numpy()[:m],
        "host_object_id": table["host_object_id"].to_numpy().astype(np.str_)[:m],
    }
    files = {
        "bright_arc_results.json": _json_bytes(results),
        "injections.parquet": _encoded(table, "parquet"),
        "cutouts.npz": encode_npz(cutouts),
    }
    result = run.write(BRIGHT_ARC_SET.format(variant=variant), files)
    log.info(f"bright_arc {variant}: {len(table)} scored, {n_failed} failed")
    by_bin = results["results_by_bin"]
    value = {
        **run.provenance(),
        "result_set": result.to_json(),
        "variant": variant,
        "rate_p03": {k: v["detection_rate_p03"] for k, v in by_bin.items()},
    }
    metadata = {
        "n_scored": results["n_scored"],
        "n_failed": n_failed,
        "by_bin": dg.MetadataValue.md(
            "| bin | n | p > 0.3 | p > 0.5 | median score | median arc S/N | host-only |\n"
            "|---|---|---|---|---|---|---|\n"
            + "\n".join(
                f"| {k} | {v['n_scored']} | {v['detection_rate_p03']:.3f} | "
                f"{v['detection_rate_p05']:.3f} | {v['median_score'] or 0:.3g} | "
                f"{v['median_arc_snr'] or 0:.3g} | {v['host_only_rate_p03']:.3f} |"
                for k, v in by_bin.items()
            )
        ),
        "checkpoint_sha256": run.checkpoint_sha256,
        "priors_sha256": run.priors_sha256,
        "d06_config_sha256": run.d06_config_sha256,
        "seconds": round(time.perf_counter() - start, 2),
    }
    return value, metadata


def run_linear_probe(run: RunContext, *, log: Any) -> tuple[dict, dict]:
    """Embeddings of Tier-A, low/high-beta_frac injections and negatives; probe, significance,
    brightness-only baseline, Tier-A vs Tier-B, Fréchet distances, median scores."""
    start = time.perf_counter()
    cfg, probe = run.config, run.config.linear_probe
    lenses = cfg.lenses
    tier_a = manifest_lenses(run.manifest, lenses.splits, ["A"], lenses.sources)
    tier_b = manifest_lenses(run.manifest, lenses.splits, ["B"], lenses.sources)
    if len(tier_a) < 2 or len(tier_b) < 2:
        raise D06Error(
            f"the linear probe needs >= 2 Tier-A and Tier-B lenses; got {len(tier_a)} and "
            f"{len(tier_b)} (splits {lenses.splits}, sources {lenses.sources})"
        )
    a_arrays = read_host_arrays(run.store.read_bytes, tier_a, ("cutout", "invvar"))
    b_arrays = read_host_arrays(run.store.read_bytes, tier_b, ("cutout",))
    for name, arrays, table in (("Tier-A", a_arrays, tier_a), ("Tier-B", b_arrays, tier_b)):
        if not arrays["usable"].all():
            bad = table["object_id"].astype(str).to_numpy()[~arrays["usable"]]
            raise HostError(f"{name} lens cutout(s) with NaN pixels: {list(bad[:5])}")
    usable = np.flatnonzero(run.host_arrays["usable"])
    groups: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for name, beta in (("inj_low_bf", probe.beta_frac_low), ("inj_high_bf", probe.beta_frac_high)):
        inj = run_injections(
            run.priors,
            run.host_arrays,
            usable,
            probe.injections,
            prior=cfg.prior,
            theta_e=probe.theta_e,
            source_mag=(probe.source_mag, probe.source_mag),
            beta_frac=(beta[0], beta[1]),
            params_rng=derived_rng(probe.seed, "probe", name),
            max_retries=cfg.grid.max_retries,
            chunk_size=cfg.chunk_size,
            xp=run.xp,
        )
        invvar = run.host_arrays["invvar"][inj.host_row]
        groups[name] = (inj.images, invvar, inj.host_row)
    neg_rows = derived_rng(probe.seed, "probe", "negatives").choice(
        usable, size=min(probe.negatives, len(usable)), replace=False
    )
    images = {
        "real_tier_a": a_arrays["cutout"],
        "inj_low_bf": groups["inj_low_bf"][0],
        "inj_high_bf": groups["inj_high_bf"][0],
        "negatives": run.host_arrays["cutout"][neg_rows],
    }
    embeddings = {name: run.embed(x) for name, x in images.items()}
    scores = {name: run.score(x) for name, x in images.items()}
    emb_b = run.embed(b_arrays["cutout"])
    kwargs = {"n_folds": probe.folds, "seed": probe.seed, "C": probe.C, "max_iter": probe.max_iter}
    main = linear_probe_auc(embeddings["real_tier_a"], embeddings["inj_low_bf"], **kwargs)
    significance = probe_significance(
        embeddings["real_tier_a"],
        embeddings["inj_low_bf"],
        n_permutations=probe.permutations,
        n_bootstrap=probe.bootstrap,
        test_fraction=probe.test_fraction,
        **kwargs,
    )
    ref = run.priors.bands.index(run.priors.reference_band)
    bright_a = brightness_features(
        a_arrays["cutout"], a_arrays["invvar"], band=ref, theta_e=probe.theta_e
    )
    bright_low = brightness_features(
        groups["inj_low_bf"][0], groups["inj_low_bf"][1], band=ref, theta_e=probe.theta_e
    )
    brightness = linear_probe_auc(bright_a, bright_low, **kwargs)
    tier_ab = linear_probe_auc(
        embeddings["real_tier_a"],
        emb_b,
        positive_groups=tier_a["object_id"].astype(str).to_numpy(),
        negative_groups=tier_b["object_id"].astype(str).to_numpy(),
        **kwargs,
    )
    reg = probe.frechet_regularisation
    frechet = {
        "real_vs_low_bf": frechet_distance(
            embeddings["real_tier_a"], embeddings["inj_low_bf"], regularisation=reg
        )["distance"],
        "real_vs_high_bf": frechet_distance(
            embeddings["real_tier_a"], embeddings["inj_high_bf"], regularisation=reg
        )["distance"],
        "interpretation": "Higher FD = more different in feature space (penultimate embedding)",
    }
    from stronglens_assets.science.learning.scoring import block_features

    per_block = {
        name: block_features(
            run.model,
            images[name],
            probe.feature_blocks,
            batch_size=cfg.batch_size,
            device=run.device,
        )
        for name in ("real_tier_a", "inj_low_bf")
    }
    frechet_per_block = {
        block: frechet_distance(
            per_block["real_tier_a"][block], per_block["inj_low_bf"][block], regularisation=reg
        )["distance"]
        for block in probe.feature_blocks
    }
    feature_space = {
        "timestamp_utc": _now(),
        **run.provenance(),
        "n_real_tier_a": len(tier_a),
        "n_inj_low_bf": len(images["inj_low_bf"]),
        "n_inj_high_bf": len(images["inj_high_bf"]),
        "n_negatives": len(neg_rows),
        "target_mag": probe.source_mag,
        "theta_e": probe.theta_e,
        "add_sky_noise": False,
        "add_poisson_noise": False,
        "gain_e_per_nmgy": None,
        "linear_probe": {
            "task": "real_tier_a vs inj_low_bf",
            "cv_auc_mean": main["auc_mean"],
            "cv_auc_std": main["auc_std"],
            "details": main,
        },
        "brightness_only_baseline": {
            "task": "real_tier_a vs inj_low_bf",
            "features": "r-band annulus magnitude and S/N measured on the cutouts "
            '(|r - theta_E| <= 0.75", background: median at r >= 5")',
            "cv_auc_mean": brightness["auc_mean"],
            "cv_auc_std": brightness["auc_std"],
            "details": brightness,
        },
        "tier_a_vs_tier_b": {
            "task": "real_tier_a vs real_tier_b, folds grouped by galaxy",
            "cv_auc_mean": tier_ab["auc_mean"],
            "cv_auc_std": tier_ab["auc_std"],
            "details": tier_ab,
        },
        "frechet_distance_per_layer": frechet_per_block,
        "frechet_distance": frechet,
        "median_scores": {name: float(np.median(s)) for name, s in scores.items()},
        "notes": [
            "frechet_distance_per_layer: Tier-A vs low-beta_frac injections, globally pooled "
            "outputs of the named model blocks; frechet_distance: the penultimate embedding.",
        ],
    }
    is_mock = (tier_a["source"].astype(str) == "mock").to_numpy()
    arrays = {
        **{name: e.astype(np.float32) for name, e in embeddings.items()},
        **{f"{name}_score": s.astype(np.float64) for name, s in scores.items()},
        "real_tier_a_is_mock": is_mock,
        "real_tier_b": emb_b.astype(np.float32),
        "real_tier_a_object_id": tier_a["object_id"].astype(str).to_numpy().astype(np.str_),
    }
    files = {
        "feature_space_results.json": _json_bytes(feature_space),
        "permutation_bootstrap_results.json": _json_bytes(significance),
        "embeddings.npz": encode_npz(arrays),
    }
    result = run.write(PROBE_SET, files)
    log.info(
        f"linear_probe: AUC {main['auc_mean']:.3f}, brightness-only {brightness['auc_mean']:.3f}"
    )
    value = {
        **run.provenance(),
        "result_set": result.to_json(),
        "auc": main["auc_mean"],
        "brightness_only_auc": brightness["auc_mean"],
        "tier_a_vs_tier_b_auc": tier_ab["auc_mean"],
        "permutation_p": significance["permutation_test"]["p_value"],
        "bootstrap_ci95": [
            significance["bootstrap_ci"]["ci_95_lower"],
            significance["bootstrap_ci"]["ci_95_upper"],
        ],
    }
    metadata = {
        **{k: v for k, v in value.items() if k not in ("result_set", "bootstrap_ci95")},
        "bootstrap_ci95": str(value["bootstrap_ci95"]),
        "n_tier_a": len(tier_a),
        "seconds": round(time.perf_counter() - start, 2),
    }
    return value, metadata


def run_tier_a_scoring(run: RunContext, *, log: Any) -> tuple[dict, dict]:
    """Scores of the Tier-A lenses and of held-out negatives at every threshold."""
    cfg = run.config
    tier_a = manifest_lenses(run.manifest, cfg.lenses.splits, ["A"], cfg.lenses.sources)
    if len(tier_a) == 0:
        raise D06Error(f"no Tier-A lens in the splits {cfg.lenses.splits} to score")
    arrays = read_host_arrays(run.store.read_bytes, tier_a, ("cutout",))
    valid = arrays["usable"]
    scores = run.score(arrays["cutout"][valid])
    usable = np.flatnonzero(run.host_arrays["usable"])
    neg_rows = derived_rng(cfg.hosts.seed, "tier_a_negatives").choice(
        usable, size=min(cfg.lenses.scoring_negatives, len(usable)), replace=False
    )
    neg_scores = run.host_scores(neg_rows)
    results = real_lens_scoring(
        scores,
        n_errors=int((~valid).sum()),
        negative_scores=neg_scores,
        n_negative_errors=0,
        thresholds=run.thresholds,
    )
    results = {"timestamp_utc": _now(), **run.provenance(), **results}
    results["unresolved_thresholds"] = run.unresolved
    columns = [
        c
        for c in ("object_id", "cutout_key", "cutout_row", "tier", "ra", "dec", "mag_r", "z_lens")
        if c in tier_a.columns
    ]
    table = tier_a.loc[valid, columns].reset_index(drop=True).copy()
    table.insert(1, "score", scores.astype(np.float64))
    table["source"] = np.where(tier_a.loc[valid, "source"].astype(str) == "mock", "mock", "real")
    files = {
        "real_lens_scoring_results.json": _json_bytes(results),
        "tier_a_scores.parquet": _encoded(table, "parquet"),
    }
    result = run.write(TIER_A_SET, files)
    recall = results["real_lens"]["recall_at_thresholds"]
    log.info(f"tier_a_scoring: {len(table)} Tier-A lenses scored")
    value = {**run.provenance(), "result_set": result.to_json(), "n": len(table), "recall": recall}
    metadata = {
        "n": len(table),
        **{f"recall {k}": v for k, v in recall.items()},
        "checkpoint_sha256": run.checkpoint_sha256,
    }
    return value, metadata


def run_poisson_diagnostics(
    run: RunContext,
    *,
    log: Any,
    sky: tuple[dict[str, float] | None, str],
) -> tuple[dict, dict]:
    """Paired Poisson vs baseline bright arcs: McNemar per bin and pooled, score changes; and
    the gain sweep: the baseline design again with Poisson noise at each gain of
    ``poisson_diagnostics.gain_sweep`` (the same arcs and hosts), its rates per bin and its
    pooled McNemar test against the baseline, so the dependence on the gain is visible; with
    ``per_host_gain`` on, once more at each host's own gain (sky ``sky``: per-band AB mag /
    arcsec^2 and its source, :func:`per_host_sky`), written beside the fixed gains."""
    store, config = run.store, run.config
    with_per_host_gain = config.poisson_diagnostics.per_host_gain.enabled
    sky_mag = _checked_sky(run, sky) if with_per_host_gain else None  # before any injection
    tables = {}
    for variant in ("baseline", "poisson"):
        name = BRIGHT_ARC_SET.format(variant=variant)
        try:
            result = read_result_set(store, D06_ROOT, name)
        except ObjectNotFoundError as exc:
            raise D06Error(f"no bright_arc[{variant}] result: materialize it first") from exc
        data = store.read_bytes(result.key("injections.parquet"))
        tables[variant] = pd.read_parquet(io.BytesIO(data))
    base, pois = tables["baseline"], tables["poisson"]
    merged = base.merge(pois, on=["bin_index", "slot"], suffixes=("_base", "_pois"))
    if len(merged) == 0:
        raise D06Error("bright_arc baseline and poisson share no injection to pair")
    labels = bin_labels(config.bright_arc.mag_bins)
    pools = {name: list(bins) for name, bins in config.poisson_diagnostics.pools.items()}
    pools["all"] = labels
    index = merged["bin_index"].to_numpy()
    results = paired_mcnemar(
        labels, index, merged["score_base"] > 0.3, merged["score_pois"] > 0.3, pools
    )
    results["threshold"] = 0.3
    results["n_paired_total"] = len(merged)
    delta = merged["score_pois"].to_numpy() - merged["score_base"].to_numpy()
    results["score_change"] = {
        "median": float(np.median(delta)),
        "mean": float(np.mean(delta)),
        "by_bin_median": {
            labels[b]: float(np.median(delta[index == b])) for b in sorted(set(index))
        },
    }
    sweep = []
    for gain in config.poisson_diagnostics.gain_sweep:
        noisy, _, failed = bright_arc_injections(
            run, beta=config.bright_arc.beta_frac, gain=gain, clip=None, keep_images=0
        )
        sweep.append(
            {"gain_e_per_nmgy": gain, "n_failed": failed, **gain_sweep_rates(labels, base, noisy)}
        )
        log.info(f"poisson_diagnostics: gain {gain:g}: p > 0.3 rate {sweep[-1]['rate_p03']:.3f}")
    per_host, per_host_table, per_host_seconds = None, None, 0.0
    if sky_mag is not None:
        started = time.perf_counter()
        per_host, per_host_table = per_host_gain_sweep(
            run, base, labels, (sky_mag, sky[1]), log=log
        )
        per_host_seconds = time.perf_counter() - started
    png = score_change_png(
        merged["score_base"].to_numpy(),
        merged["score_pois"].to_numpy(),
        config.poisson_diagnostics.histogram_bins,
    )
    baseline_rates = detection_rates(base)
    files = {
        "mcnemar_results.json": _json_bytes(results),
        "gain_sweep.json": _json_bytes(
            {
                **run.provenance(),
                "baseline_rate_p03": baseline_rates["rate_p03"],
                "gains": sweep,
                "note": "the baseline bright-arc design (same arcs and hosts) with Poisson noise "
                "at each gain; the paper's 150 e-/nmgy is an order-of-magnitude estimate",
                "baseline_rate_p05": baseline_rates["rate_p05"],
                "baseline_rate_p03_by_bin": baseline_rates["rate_p03_by_bin"],
                "baseline_rate_p05_by_bin": baseline_rates["rate_p05_by_bin"],
                "per_host_gain": per_host,
            }
        ),
        "score_changes.png": png,
    }
    if per_host_table is not None:
        files[PER_HOST_GAINS_FILE] = per_host_table.to_csv(index=False).encode()
    result = run.write(POISSON_DIAGNOSTICS_SET, files)
    pooled = results["aggregate_all"]
    value = {**run.provenance(), "result_set": result.to_json(), "pooled": pooled}
    metadata = {
        "pooled_b": pooled["total_gained"],
        "pooled_c": pooled["total_lost"],
        "pooled_p_exact": pooled["mcnemar_p_exact"],
        "n_paired": len(merged),
        "score_changes": dg.MetadataValue.md(
            png_data_uri_markdown(png, "score change, Poisson - baseline")
        ),
        "gain_sweep": dg.MetadataValue.md(
            "| gain (e-/nmgy) | p > 0.3 | b | c | p exact |\n|---|---|---|---|---|\n"
            + "\n".join(
                f"| {g['gain_e_per_nmgy']:g} | {g['rate_p03']:.3f} | "
                f"{g['pooled_vs_baseline']['total_gained']} | "
                f"{g['pooled_vs_baseline']['total_lost']} | "
                f"{g['pooled_vs_baseline']['mcnemar_p_exact']:.3g} |"
                for g in sweep
            )
            + (
                f"\n| per host ({_gain_ranges_text(per_host)}) | {per_host['rate_p03']:.3f} | "
                f"{per_host['pooled_vs_baseline']['total_gained']} | "
                f"{per_host['pooled_vs_baseline']['total_lost']} | "
                f"{per_host['pooled_vs_baseline']['mcnemar_p_exact']:.3g} |"
                if per_host
                else ""
            )
        ),
    }
    if per_host:
        metadata["per_host_gain_seconds"] = round(per_host_seconds, 2)
        metadata["per_host_gain_sky"] = per_host["sky_source"]
    return value, metadata


def _gain_ranges_text(per_host: dict[str, Any]) -> str:
    """``g 1.2e+04 [1.1e+04, 1.3e+04]; r ...``: median and range of the per-host gains."""
    return "; ".join(
        f"{band} {s['median']:.3g} [{s['min']:.3g}, {s['max']:.3g}]"
        for band, s in per_host["host_gain_e_per_nmgy"].items()
    )


def per_host_sky(config: D06Config, settings: Any) -> tuple[dict[str, float] | None, str]:
    """Sky surface brightness per band (AB mag / arcsec^2) of the per-host gain and where it
    comes from: ``poisson_diagnostics.per_host_gain.sky_mag_arcsec2`` if given; else the
    embedded default's own sky (``demo_sky.yaml`` bands) on the mock survey, the dark-time
    DECam sky on survey data. ``None`` when the per-host gain is off."""
    option = config.poisson_diagnostics.per_host_gain
    if not option.enabled:
        return None, "off"
    if isinstance(option.sky_mag_arcsec2, dict):
        return dict(option.sky_mag_arcsec2), (
            f"configs/{D06_CONFIG_FILENAME} poisson_diagnostics.per_host_gain.sky_mag_arcsec2"
        )
    if is_mock_environment(settings.env):
        sky = load_demo_sky(settings.config_dir / "demo_sky.yaml")
        return (
            {band: cfg.sky_mag_arcsec2 for band, cfg in sky.bands.items()},
            "configs/demo_sky.yaml bands (the embedded default's own sky)",
        )
    return dict(DECAM_DARK_SKY_MAG_ARCSEC2), (
        "dark-time DECam default (real per-host sky would come from the survey's CCD tables, "
        "not shipped)"
    )


def _checked_sky(run: RunContext, sky: tuple[dict[str, float] | None, str]) -> dict[str, float]:
    """The per-host gain's sky per band, checked to give exactly the priors' bands."""
    sky_mag, source = sky
    bands = list(run.priors.bands)
    if sky_mag is None or set(sky_mag) != set(bands):
        raise D06Error(
            f"{PER_HOST_GAIN_FIELD}.sky_mag_arcsec2 must give exactly the bands {bands}, got "
            f"{sorted(sky_mag or {})} (from {source})"
        )
    return sky_mag


def per_host_gain_sweep(
    run: RunContext,
    base: pd.DataFrame,
    labels: list[str],
    sky: tuple[dict[str, float], str],
    *,
    log: Any,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """The baseline bright-arc design again (same arcs, hosts and noise stream as the gain
    sweep) with Poisson noise at each host's own gain ``g_b = S_b median(invvar_b)``: the
    ``per_host_gain`` entry of ``gain_sweep.json`` and the per-host gains table."""
    sky_mag, source = sky  # checked by run_poisson_diagnostics before any injection
    bands = list(run.priors.bands)
    rows = np.unique(bright_arc_hosts(run))
    names = run.hosts["object_id"].astype(str).to_numpy()
    sky_per_pixel = sky_nanomaggies_per_pixel([sky_mag[b] for b in bands], PIXEL_SCALE_ARCSEC)
    try:
        gains = host_gains(
            run.host_arrays["invvar"][rows], sky_per_pixel, bands=bands, names=names[rows]
        )
    except ValueError as exc:
        raise D06Error(f"{PER_HOST_GAIN_FIELD}: {exc}") from exc
    host_gain = np.full((len(names), len(bands)), np.nan)
    host_gain[rows] = gains
    noisy, _, failed = bright_arc_injections(
        run,
        beta=run.config.bright_arc.beta_frac,
        gain=None,
        clip=None,
        keep_images=0,
        host_gain=host_gain,
    )
    entry = {
        "gain_e_per_nmgy": None,
        "gain": "per_host",
        "formula": "g_b = S_b x median(invvar_b over the stamp's finite positive pixels), "
        "S_b = 10^(-0.4 (sky_mag_arcsec2_b - 22.5)) x pixscale^2 (e-/nmgy)",
        "sky_mag_arcsec2": {b: sky_mag[b] for b in bands},
        "sky_source": source,
        "pixel_scale_arcsec": PIXEL_SCALE_ARCSEC,
        "n_hosts": len(rows),
        "host_gain_e_per_nmgy": {
            b: {
                "median": float(np.median(gains[:, j])),
                "min": float(gains[:, j].min()),
                "max": float(gains[:, j].max()),
            }
            for j, b in enumerate(bands)
        },
        "n_failed": failed,
        **gain_sweep_rates(labels, base, noisy),
    }
    table = pd.DataFrame({"host_object_id": names[rows]})
    for j, b in enumerate(bands):
        table[f"gain_{b}"] = gains[:, j]
    log.info(
        f"poisson_diagnostics: per-host gain ({_gain_ranges_text(entry)}): "
        f"p > 0.3 rate {entry['rate_p03']:.3f}"
    )
    return entry, table


# --------------------------------------------------------------------------------------------
# Assets
# --------------------------------------------------------------------------------------------


def _result_set_check(store: Any, value: dict[str, Any], name: str) -> dg.AssetCheckResult:
    result = ResultSet.from_json(value["result_set"])
    problems = verify_result_set(store, result)
    return dg.AssetCheckResult(
        check_name="result_set_complete",
        asset_key=name,
        passed=not problems,
        metadata=ui_metadata(
            {"version": result.version, "files": len(result.files), "problems": problems[:10]}
        ),
    )


def build_assets(project: Project) -> list:
    settings = project.settings
    config = load_d06_config(settings.config_dir, settings.profile)
    _check_model_config(project, config)
    model_name = config.model_config_name
    one_model = dg.SpecificPartitionsPartitionMapping([model_name])
    checkpoint_dep = dg.AssetDep(MODEL_CHECKPOINT, partition_mapping=one_model)
    thresholds_dep = dg.AssetDep(EVALUATION_THRESHOLDS, partition_mapping=one_model)
    gpu = {"pool": GPU_POOL, "op_tags": gpu_op_tags(settings.config_dir)}

    @dg.asset(group_name=D06_GROUP, kinds={"yaml"})
    def injection_priors() -> dg.Output[dict]:
        """The validated injection priors (``configs/injection_priors.yaml``, profile applied)
        with ``sha256`` of the resolved priors (recorded by every D06 output) and the file's
        ``file_sha256``; D06 draws from the named prior ``configs/d06.yaml`` ``prior``."""
        priors = load_priors(settings.config_dir, settings.profile)
        if config.prior not in priors.priors:
            raise ConfigError(
                f"invalid config {settings.config_dir / D06_CONFIG_FILENAME}:\n  prior: "
                f"{config.prior!r} is not a prior of injection_priors.yaml "
                f"({sorted(priors.priors)})"
            )
        sha = priors_sha256(priors)
        value = {
            **priors.model_dump(mode="json"),
            "sha256": sha,
            "file_sha256": priors_file_sha256(settings.config_dir),
            "profile": settings.profile,
        }
        return dg.Output(
            value,
            metadata=ui_metadata(
                {"sha256": sha, "version": priors.version, "d06_prior": config.prior}
            ),
        )

    @dg.asset(group_name=D06_GROUP, kinds={"numpy", "parquet"})
    def d06_hosts(
        training_manifest: pd.DataFrame, storage: dg.ResourceParam[StorageResource]
    ) -> dg.Output[dict]:
        """The D06 hosts, read once: non-lenses of ``hosts.splits`` (the validation split), at
        most ``hosts.max_hosts`` (seeded), with PSF FWHM (psfsize_r) and 5-sigma depth (from
        psfdepth_r) binned to the grid; their cutouts, invvar and psfsize cached as a shard set
        (``d06/hosts``) so D06 runs do not re-read every cutout shard."""
        store = storage.object_store()
        summary, table = build_host_cache(config, training_manifest, store)
        binned = table[(table["psf_bin"] >= 0) & (table["depth_bin"] >= 0)]
        counts = binned.groupby(["psf_bin", "depth_bin"]).size()
        markdown = "| PSF FWHM | depth | hosts |\n|---|---|---|\n" + "\n".join(
            f"| {config.grid.psf_fwhm[p]:g} | {config.grid.depth_5sig[d]:g} | {n} |"
            for (p, d), n in counts.items()
        )
        pointer = store.uri(pointer_key(D06_HOST_CACHE_PREFIX, HOST_CACHE_PARTITION))
        return dg.Output(
            summary,
            metadata=ui_metadata(
                {
                    **summary,
                    "bins": dg.MetadataValue.md(markdown),
                    "host_cache": dg.MetadataValue.path(pointer),
                }
            ),
        )

    def _model_asset(
        name: str,
        doc: str,
        runner: Callable[[RunContext, str | None, Any], tuple[dict, dict]],
        partitions: dg.PartitionsDefinition | None = None,
        needs_thresholds: bool = True,
        extra_deps: list[dg.AssetDep] | None = None,
    ):
        """A model-using D06 asset: builds the run context, runs, checks, freeze check."""

        @dg.asset(
            name=name,
            partitions_def=partitions,
            group_name=D06_GROUP,
            deps=[
                checkpoint_dep,
                *([thresholds_dep] if needs_thresholds else []),
                *(extra_deps or []),
            ],
            kinds={"pytorch", "numpy"},
            check_specs=[
                dg.AssetCheckSpec(
                    "result_set_complete",
                    asset=name,
                    description="Every file of the result set this run wrote is in storage "
                    "with the size its pointer records, so the paper and the provenance "
                    "read a complete set.",
                ),
                frozen_check_spec(name),
            ],
            description=doc,
            **gpu,
        )
        def _asset(
            context: dg.AssetExecutionContext,
            injection_priors: dict,
            training_manifest: pd.DataFrame,
            d06_hosts: dict,
            storage: dg.ResourceParam[StorageResource],
            compute: dg.ResourceParam[ComputeResource],
        ):
            run = _run_context(
                project,
                config,
                injection_priors,
                training_manifest,
                storage,
                compute,
                needs_thresholds=needs_thresholds,
                expected_checkpoint_sha256=recorded_checkpoint_sha(
                    context.instance, config.model_config_name
                ),
            )
            partition = context.partition_key if partitions is not None else None
            value, metadata = runner(run, partition, context.log)
            result = ResultSet.from_json(value["result_set"])
            pointer = result_pointer_key(result.root, result.name)
            metadata["result_set"] = dg.MetadataValue.path(run.store.uri(pointer))
            yield dg.Output(value, metadata=ui_metadata(metadata))
            yield _result_set_check(run.store, value, name)
            yield frozen_model_check(context, model_name, run.checkpoint_sha256)

        return _asset

    grid_completeness = _model_asset(
        "grid_completeness",
        "Completeness over theta_E x PSF FWHM x 5-sigma depth (published protocol): per "
        "non-empty cell, injections into hosts of the cell's observing conditions, scored; "
        "selection_function.csv in the published schema (Jeffreys 68/95 per cell), meta with "
        "Wilson 95 marginals, per-injection Parquet, host-only false-positive floor. "
        "`poisson`: the same hosts and arcs with Poisson noise at gain 150 e-/nmgy.",
        lambda run, partition, log: run_grid(run, partition, log=log),
        grid_variant_partitions,
    )
    bright_arc = _model_asset(
        "bright_arc",
        "Bright arcs of one variant, paired design (the same hosts for every bin and "
        "variant): detection at p > 0.3 / 0.5, median score and arc S/N per source-magnitude "
        "bin (bright_arc_results.json, published shape).",
        lambda run, partition, log: run_bright_arc(run, partition, log=log),
        bright_arc_variant_partitions,
        needs_thresholds=False,
    )
    linear_probe = _model_asset(
        "linear_probe",
        "Linear probe on the penultimate embedding: Tier-A vs low-beta_frac injections "
        "(5-fold CV AUC, permutation test, bootstrap CI), brightness-only baseline, Tier-A vs "
        "Tier-B (grouped folds), Fréchet distances, median scores.",
        lambda run, partition, log: run_linear_probe(run, log=log),
        needs_thresholds=False,
    )
    tier_a_scoring = _model_asset(
        "tier_a_scoring",
        "Tier-A recall at every threshold (Wilson 95%) and the held-out negatives' FPR; "
        "per-lens scores (missed-lens table).",
        lambda run, partition, log: run_tier_a_scoring(run, log=log),
    )

    poisson_diagnostics = _model_asset(
        "poisson_diagnostics",
        "Poisson vs baseline bright arcs, paired per injection: McNemar per bin and pooled "
        "(mcnemar_results.json, published shape), score-change histogram; a gain sweep of the "
        "baseline design (gain_sweep.json), at fixed gains and at each host's own gain from its "
        "invvar and sky (per_host_gains.csv), shows how much the Poisson result depends on the "
        "gain.",
        lambda run, partition, log: run_poisson_diagnostics(
            run, log=log, sky=per_host_sky(config, settings)
        ),
        needs_thresholds=False,
        extra_deps=[dg.AssetDep("bright_arc")],
    )

    return [
        injection_priors,
        d06_hosts,
        grid_completeness,
        bright_arc,
        linear_probe,
        tier_a_scoring,
        poisson_diagnostics,
    ]


__all__ = ["D06Error", "RunContext", "build_assets", "build_host_cache", "load_host_cache"]
