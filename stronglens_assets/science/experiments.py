"""D06 injection-recovery experiments: hosts, injection runs, completeness, bright arcs, noise.

Pure NumPy / pandas (no Dagster). ``assets/d06.py`` wires these to storage and the frozen model.

* **Hosts** (:func:`host_pool`, :func:`draw_hosts`, :func:`read_cutouts`): real cutouts of
  validation-split non-lenses of the training manifest, each band's PSF FWHM from the
  host's ``psfsize``. ``random`` draws uniformly from (at most ``max_pool``) eligible hosts;
  ``tier_a_matched`` draws a Tier-A deflector uniformly, then one of its ``k_nearest``
  non-lenses in standardised ``(mag_r, shape_r)`` (each axis divided by its standard deviation
  over the eligible non-lenses), so host brightness and size follow the real lenses'.
* **Injections** (:func:`inject_cutouts`): the injection engine (``science/lensing/injection.py``:
  ``render_arcs`` then ``inject``) in chunks; arrays stay float32 nanomaggies.
* **Determinism**: every random stream is ``default_rng(SeedSequence([seed, *tags]))`` with
  fixed tags (:func:`derived_rng`): the parameters and hosts of grid cell ``c`` depend only on
  ``(seed, "grid", c)``, so both grid partitions see the same injections and differ only in
  the Poisson noise (tag ``("grid-noise", variant, c)``).
* **Completeness** (:func:`grid_summary`, :func:`selection_function`): ``k`` = injections
  detected (``p(lens) > threshold``, :mod:`~stronglens_assets.science.stats.detection`),
  ``n`` = injections; the interval is Wilson's score interval at ``confidence_level``
  (68.27% by default, :func:`~stronglens_assets.science.stats.intervals.wilson_interval`).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator, model_validator

from stronglens_assets.config import StrictModel, load_profiled_config
from stronglens_assets.errors import StronglensError
from stronglens_assets.science.core.arrays import to_host
from stronglens_assets.science.core.columns import require_columns
from stronglens_assets.science.core.npz import decode_npz
from stronglens_assets.science.lensing.priors import (
    PARAMETERS,
    InjectionParameters,
    InjectionPriors,
    ParameterDistributions,
    sample_parameters,
)
from stronglens_assets.science.stats.detection import DETECTION_COMPARISON, count_detected
from stronglens_assets.science.stats.intervals import wilson_interval

D06_CONFIG_FILENAME = "d06.yaml"
#: Manifest columns the D06 experiments need (contract item 1).
HOST_COLUMNS: tuple[str, ...] = (
    "object_id",
    "label",
    "tier",
    "source",
    "split",
    "cutout_key",
    "cutout_row",
    "mag_r",
    "shape_r",
)


class HostError(StronglensError, ValueError):
    """A host or lens cutout (or its manifest row) is unusable; the message names it."""


# --------------------------------------------------------------------------------------------
# Configuration (configs/d06.yaml)
# --------------------------------------------------------------------------------------------


class HostsConfig(StrictModel):
    splits: list[str] = Field(default_factory=lambda: ["val", "test"], min_length=1)
    matching: Literal["random", "tier_a_matched"] = "tier_a_matched"
    k_nearest: int = Field(default=5, ge=1)
    max_pool: int = Field(default=4096, ge=1)


class LensesConfig(StrictModel):
    splits: list[str] = Field(default_factory=lambda: ["val", "test"], min_length=1)
    sources: list[str] = Field(default_factory=lambda: ["lenscat", "mock"], min_length=1)


class GridRunConfig(StrictModel):
    injections_per_cell: int = Field(ge=1)
    store_images: bool = True


class BrightArcRunConfig(StrictModel):
    injections: int = Field(ge=1)
    gallery_images: int = Field(default=64, ge=0)


class LinearProbeConfig(StrictModel):
    injections: int = Field(ge=2)
    folds: int = Field(default=5, ge=2)
    C: float = Field(default=1.0, gt=0)
    max_iter: int = Field(default=2000, ge=1)
    frechet_regularisation: float = Field(default=1e-6, ge=0)


class PoissonDiagnosticsConfig(StrictModel):
    injections: int = Field(ge=1)
    arc_sigma: float = Field(default=1.0, gt=0)


class D06Config(StrictModel):
    """``configs/d06.yaml`` (profile overrides applied)."""

    seed: int = Field(ge=0)
    model_config_name: str = Field(alias="model_config", min_length=1)
    batch_size: int = Field(ge=1)
    chunk_size: int = Field(default=256, ge=1)
    threshold: float = 0.3
    thresholds: list[float] = Field(min_length=1)
    confidence_level: float = Field(default=0.6827, gt=0, lt=1)
    hosts: HostsConfig = Field(default_factory=HostsConfig)
    lenses: LensesConfig = Field(default_factory=LensesConfig)
    grid: GridRunConfig
    bright_arc: BrightArcRunConfig
    linear_probe: LinearProbeConfig
    poisson_diagnostics: PoissonDiagnosticsConfig

    @field_validator("thresholds")
    @classmethod
    def _thresholds(cls, value: list[float]) -> list[float]:
        if any(not 0 <= t < 1 for t in value):
            raise ValueError(f"thresholds must lie in [0, 1), got {value}")
        if len(set(value)) != len(value):
            raise ValueError(f"thresholds must be distinct, got {value}")
        return sorted(value)

    @model_validator(mode="after")
    def _primary_listed(self) -> D06Config:
        if self.threshold not in self.thresholds:
            raise ValueError(f"threshold {self.threshold} must be one of thresholds")
        return self


def load_d06_config(config_dir: Any, profile: str) -> D06Config:
    """Load ``<config_dir>/d06.yaml`` for ``profile`` (ConfigError names file and field)."""
    from pathlib import Path

    return load_profiled_config(Path(config_dir) / D06_CONFIG_FILENAME, D06Config, profile)


# --------------------------------------------------------------------------------------------
# Random streams
# --------------------------------------------------------------------------------------------


def _tag_int(tag: int | str) -> int:
    if isinstance(tag, int | np.integer):
        if tag < 0:
            raise ValueError(f"integer tags must be >= 0, got {tag}")
        return int(tag)
    return int.from_bytes(hashlib.sha256(str(tag).encode()).digest()[:8], "little")


def derived_rng(seed: int, *tags: int | str) -> np.random.Generator:
    """Independent generator for ``(seed, *tags)`` (strings hashed to 64-bit integers)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), *map(_tag_int, tags)]))


# --------------------------------------------------------------------------------------------
# Hosts and lenses
# --------------------------------------------------------------------------------------------


def check_manifest_columns(manifest: pd.DataFrame, columns: Sequence[str] = HOST_COLUMNS) -> None:
    """Raise :class:`HostError` naming the manifest columns that are missing."""
    require_columns(
        manifest.columns,
        columns,
        "training_manifest",
        hint="needed by the D06 experiments (contract item 1: cutout_key, cutout_row, mag_r, "
        "shape_r, ...)",
        error=HostError,
    )


def validation_negatives(manifest: pd.DataFrame, splits: Sequence[str]) -> pd.DataFrame:
    """Non-lenses (label 0) of the given splits, sorted by ``object_id``."""
    check_manifest_columns(manifest)
    rows = manifest[(manifest["label"] == 0) & manifest["split"].isin(list(splits))]
    return rows.sort_values("object_id", ignore_index=True)


def validation_lenses(
    manifest: pd.DataFrame, splits: Sequence[str], tiers: Sequence[str], sources: Sequence[str]
) -> pd.DataFrame:
    """Lenses (label 1) of the given splits, tiers and sources, sorted by ``object_id``."""
    check_manifest_columns(manifest)
    rows = manifest[
        (manifest["label"] == 1)
        & manifest["split"].isin(list(splits))
        & manifest["tier"].isin(list(tiers))
        & manifest["source"].isin(list(sources))
    ]
    return rows.sort_values("object_id", ignore_index=True)


@dataclass(frozen=True)
class HostPool:
    """Hosts that injections draw from.

    ``table``: the pool's manifest rows (sorted by object_id); ``neighbours``: in
    ``tier_a_matched`` mode, ``(n_tier_a, k)`` row indices into ``table`` of each Tier-A
    deflector's nearest non-lenses (None in ``random`` mode).
    """

    table: pd.DataFrame
    mode: str
    neighbours: np.ndarray | None = None


def _finite_features(table: pd.DataFrame, name: str) -> np.ndarray:
    features = table[["mag_r", "shape_r"]].to_numpy(dtype=np.float64)
    bad = ~np.isfinite(features).all(axis=1)
    if bad.all():
        raise HostError(f"no {name} row has finite mag_r and shape_r")
    return features


def host_pool(
    negatives: pd.DataFrame,
    tier_a: pd.DataFrame | None,
    *,
    mode: str,
    k_nearest: int = 5,
    max_pool: int = 4096,
    rng: np.random.Generator,
) -> HostPool:
    """Choose the hosts (see the module docstring); ``tier_a`` is needed for matching."""
    if len(negatives) == 0:
        raise HostError("no validation-split non-lens to use as a host")
    if mode == "random":
        n = min(max_pool, len(negatives))
        chosen = np.sort(rng.choice(len(negatives), size=n, replace=False))
        return HostPool(negatives.iloc[chosen].reset_index(drop=True), mode)
    if mode != "tier_a_matched":
        raise ValueError(f"unknown host matching mode {mode!r}")
    if tier_a is None or len(tier_a) == 0:
        raise HostError("tier_a_matched hosts need Tier-A lenses; none in the validation split")
    neg = _finite_features(negatives, "validation non-lens")
    usable_neg = np.isfinite(neg).all(axis=1)
    candidates = np.flatnonzero(usable_neg)
    lens = _finite_features(tier_a, "Tier-A lens")
    lens = lens[np.isfinite(lens).all(axis=1)]
    scale = neg[candidates].std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    a = neg[candidates] / scale
    b = lens / scale
    k = min(k_nearest, len(candidates))
    neighbours = np.empty((len(b), k), dtype=np.int64)
    for i, point in enumerate(b):
        dist = np.sum((a - point) ** 2, axis=1)
        order = np.lexsort((candidates, dist))  # ties broken by row: deterministic
        neighbours[i] = candidates[order[:k]]
    used = np.unique(neighbours)
    table = negatives.iloc[used].reset_index(drop=True)
    remap = np.searchsorted(used, neighbours)
    return HostPool(table, mode, remap)


def draw_hosts(pool: HostPool, n: int, rng: np.random.Generator) -> np.ndarray:
    """Row indices into ``pool.table`` of ``n`` hosts (two draws per host when matched)."""
    if pool.neighbours is None:
        return rng.integers(0, len(pool.table), size=n)
    lens = rng.integers(0, pool.neighbours.shape[0], size=n)
    which = rng.integers(0, pool.neighbours.shape[1], size=n)
    return pool.neighbours[lens, which]


def host_match_summary(
    pool: HostPool, host_index: np.ndarray, tier_a: pd.DataFrame | None
) -> dict[str, Any]:
    """Median mag_r and shape_r of the drawn hosts (and of Tier-A), for metadata."""
    drawn = pool.table.iloc[np.asarray(host_index)]
    out: dict[str, Any] = {
        "mode": pool.mode,
        "distinct_hosts": len(np.unique(host_index)),
        "pool_size": len(pool.table),
        "hosts_median_mag_r": _nanmedian(drawn["mag_r"]),
        "hosts_median_shape_r": _nanmedian(drawn["shape_r"]),
    }
    if tier_a is not None and len(tier_a):
        out["tier_a_median_mag_r"] = _nanmedian(tier_a["mag_r"])
        out["tier_a_median_shape_r"] = _nanmedian(tier_a["shape_r"])
    return out


def _nanmedian(values: pd.Series) -> float | None:
    array = np.asarray(values, dtype=np.float64)
    array = array[np.isfinite(array)]
    return float(np.median(array)) if len(array) else None


def read_cutouts(
    read_bytes: Callable[[str], bytes],
    table: pd.DataFrame,
    members: Sequence[str] = ("cutout", "psfsize"),
) -> dict[str, np.ndarray]:
    """Arrays of the manifest rows in ``table`` (in its row order), each shard read once.

    ``read_bytes(key)`` returns a shard's bytes (the storage resource's). Cutouts must be
    finite and ``psfsize`` finite and > 0: otherwise :class:`HostError` names the object and
    the shard key.
    """
    if len(table) == 0:
        raise HostError("no cutout to read")
    out: dict[str, np.ndarray] = {}
    keys = table["cutout_key"].astype(str).to_numpy()
    rows = table["cutout_row"].to_numpy(dtype=np.int64)
    for key in sorted(set(keys)):
        where = np.flatnonzero(keys == key)
        shard = decode_npz(read_bytes(key), members)
        for member in members:
            if member not in shard:
                raise HostError(f"shard {key} has no array {member!r}")
            data = shard[member]
            if rows[where].max() >= len(data) or rows[where].min() < 0:
                raise HostError(f"cutout_row out of range for shard {key} ({len(data)} rows)")
            if member not in out:
                out[member] = np.empty((len(table), *data.shape[1:]), dtype=np.float32)
            out[member][where] = data[rows[where]]
    ids = table["object_id"].astype(str).to_numpy()
    if "cutout" in out:
        finite = np.isfinite(out["cutout"]).reshape(len(table), -1).all(axis=1)
        if not finite.all():
            i = int(np.flatnonzero(~finite)[0])
            raise HostError(
                f"cutout of {ids[i]!r} (shard {keys[i]}, row {rows[i]}) contains NaN or "
                f"infinite pixels ({int((~finite).sum())} bad cutout(s) in all)"
            )
    if "psfsize" in out:
        good = np.isfinite(out["psfsize"]).all(axis=1) & (out["psfsize"] > 0).all(axis=1)
        if not good.all():
            i = int(np.flatnonzero(~good)[0])
            raise HostError(
                f"psfsize of {ids[i]!r} (shard {keys[i]}, row {rows[i]}) is not finite and > 0: "
                f"{out['psfsize'][i].tolist()}"
            )
    return out


# --------------------------------------------------------------------------------------------
# Injections
# --------------------------------------------------------------------------------------------


def _engine() -> tuple[Callable[..., Any], Callable[..., Any]]:
    from stronglens_assets.science.lensing.injection import inject, render_arcs

    return render_arcs, inject


def render_injection_arcs(
    params: InjectionParameters,
    psf_fwhm: np.ndarray,
    *,
    size: int,
    pixel_scale: float = 0.262,
    xp: Any = np,
) -> Any:
    """Lensed arcs ``(N, B, size, size)`` float32 nanomaggies of ``params`` (engine call; the
    lens and clump fields of ``params`` that are set are passed on)."""
    render_arcs, _ = _engine()
    extra = {name: xp.asarray(value) for name, value in params.render_kwargs().items()}
    return render_arcs(
        xp.asarray(params.theta_e),
        xp.asarray(params.source_x),
        xp.asarray(params.source_y),
        xp.asarray(params.r_eff),
        xp.asarray(params.n_sersic),
        xp.asarray(params.axis_ratio),
        xp.asarray(params.position_angle),
        xp.asarray(params.flux),
        xp.asarray(psf_fwhm),
        size=size,
        pixel_scale=pixel_scale,
        xp=xp,
        **extra,
    )


def inject_cutouts(
    params: InjectionParameters,
    host_cutouts: np.ndarray,
    host_psf: np.ndarray,
    *,
    poisson_gain: np.ndarray | None,
    clip: float | None,
    rng: np.random.Generator,
    chunk_size: int = 256,
    xp: Any = np,
) -> np.ndarray:
    """Injected cutouts ``(N, B, H, W)`` float32: host ``i`` plus the arc of ``params[i]``.

    ``host_cutouts``/``host_psf`` are already aligned with ``params`` (one host per
    injection). ``poisson_gain`` (B,) e-/nanomaggy or None (no noise); ``clip`` as the engine's
    ``inject``. Chunks of ``chunk_size`` injections bound the engine's temporaries.
    """
    _, inject = _engine()
    if xp is not np:  # the engine wants the array module's generator (CuPy on a GPU)
        rng = xp.random.default_rng(int(rng.integers(0, 2**63 - 1)))
    n = len(params)
    if len(host_cutouts) != n or len(host_psf) != n:
        raise ValueError(f"{n} injections but {len(host_cutouts)} hosts / {len(host_psf)} PSFs")
    out = np.empty(host_cutouts.shape, dtype=np.float32)
    size = host_cutouts.shape[-1]
    for start in range(0, n, chunk_size):
        part = slice(start, min(start + chunk_size, n))
        arcs = render_injection_arcs(params.take(part), host_psf[part], size=size, xp=xp)
        injected = inject(
            xp.asarray(host_cutouts[part]),
            arcs,
            poisson_gain=None if poisson_gain is None else xp.asarray(poisson_gain),
            clip=clip,
            rng=rng,
        )
        out[part] = to_host(injected)
    return out


@dataclass(frozen=True)
class InjectionBatch:
    """Parameters, hosts (row indices into the pool table) and injected cutouts of a run."""

    params: InjectionParameters
    host_index: np.ndarray
    images: np.ndarray


def make_injections(
    priors: InjectionPriors,
    pool: HostPool,
    host_arrays: dict[str, np.ndarray],
    n: int,
    *,
    seed: int,
    tags: tuple[int | str, ...],
    noise_tags: tuple[int | str, ...] | None = None,
    distributions: ParameterDistributions | None = None,
    fixed: dict[str, float] | None = None,
    poisson_gain: np.ndarray | None = None,
    clip: float | None = None,
    chunk_size: int = 256,
    xp: Any = np,
) -> InjectionBatch:
    """Draw ``n`` parameter sets and hosts from the stream ``(seed, *tags)`` and inject them.

    The noise (Poisson, when ``poisson_gain`` is given) uses the stream ``(seed,
    *noise_tags)`` (default ``(*tags, "noise")``), so runs differing only in noise share
    parameters and hosts.
    """
    rng = derived_rng(seed, *tags)
    params = sample_parameters(priors, n, rng, distributions=distributions, fixed=fixed)
    host_index = draw_hosts(pool, n, rng)
    noise_rng = derived_rng(seed, *(noise_tags or (*tags, "noise")))
    images = inject_cutouts(
        params,
        host_arrays["cutout"][host_index],
        host_arrays["psfsize"][host_index],
        poisson_gain=poisson_gain,
        clip=clip,
        rng=noise_rng,
        chunk_size=chunk_size,
        xp=xp,
    )
    return InjectionBatch(params, host_index, images)


# --------------------------------------------------------------------------------------------
# Completeness
# --------------------------------------------------------------------------------------------


def _threshold_key(threshold: float) -> str:
    return f"{threshold:g}"


def _rate(k: int, n: int, confidence_level: float) -> dict[str, Any]:
    if n == 0:
        return {"k": 0, "n": 0, "completeness": None, "ci_low": None, "ci_high": None}
    low, high = wilson_interval(k, n, confidence_level)
    return {
        "k": int(k),
        "n": int(n),
        "completeness": k / n,
        "ci_low": float(low),
        "ci_high": float(high),
    }


def selection_function(
    cells: pd.DataFrame,
    scores: Sequence[np.ndarray],
    threshold: float,
    confidence_level: float = 0.6827,
) -> pd.DataFrame:
    """One row per cell: ``cell``, the six axes, ``n``, ``k`` (p > threshold),
    ``completeness`` = k/n, ``ci_low``, ``ci_high`` (Wilson at ``confidence_level``)."""
    if len(scores) != len(cells):
        raise ValueError(f"{len(cells)} cells but {len(scores)} score arrays")
    n = np.array([len(s) for s in scores], dtype=np.int64)
    k = np.array([count_detected(s, threshold) for s in scores], np.int64)
    low, high = wilson_interval(k, n, confidence_level)
    table = cells[["cell", *PARAMETERS]].reset_index(drop=True).copy()
    table["n"] = n
    table["k"] = k
    table["completeness"] = k / n
    table["ci_low"] = low
    table["ci_high"] = high
    return table


def marginal_completeness(
    table: pd.DataFrame, confidence_level: float = 0.6827
) -> dict[str, list[dict[str, Any]]]:
    """Completeness per value of each axis (k and n summed over the other axes)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for axis in PARAMETERS:
        sums = table.groupby(axis, sort=True)[["k", "n"]].sum()
        out[axis] = [
            {"value": float(value), **_rate(int(row.k), int(row.n), confidence_level)}
            for value, row in sums.iterrows()
        ]
    return out


def grid_summary(
    cells: pd.DataFrame,
    scores: Sequence[np.ndarray],
    *,
    thresholds: Sequence[float],
    threshold: float,
    confidence_level: float = 0.6827,
) -> dict[str, Any]:
    """``grid_results.json`` body: overall, per-cell and marginal completeness per threshold.

    ``threshold`` is the primary one (p > 0.3 in the paper); its figures also appear at the
    top level (``k``, ``n``, ``completeness``, ``ci_low``, ``ci_high``).
    """
    tables = {t: selection_function(cells, scores, t, confidence_level) for t in thresholds}
    total = int(sum(len(s) for s in scores))
    overall = {
        _threshold_key(t): _rate(int(tab["k"].sum()), total, confidence_level)
        for t, tab in tables.items()
    }
    cell_rows = []
    for i, row in cells.reset_index(drop=True).iterrows():
        entry: dict[str, Any] = {"cell": int(row["cell"])}
        entry.update({axis: float(row[axis]) for axis in PARAMETERS})
        entry["n"] = len(scores[i])
        entry["by_threshold"] = {
            _threshold_key(t): {
                k: v
                for k, v in _rate(int(tab["k"].iat[i]), entry["n"], confidence_level).items()
                if k != "n"
            }
            for t, tab in tables.items()
        }
        cell_rows.append(entry)
    return {
        "threshold": threshold,
        "thresholds": [float(t) for t in thresholds],
        "comparison": DETECTION_COMPARISON,
        "interval": "wilson",
        "confidence_level": confidence_level,
        "n_cells": len(cells),
        "n_injections": total,
        **overall[_threshold_key(threshold)],
        "overall": overall,
        "marginal": {
            _threshold_key(t): marginal_completeness(tab, confidence_level)
            for t, tab in tables.items()
        },
        "cells": cell_rows,
    }


# --------------------------------------------------------------------------------------------
# Bright arcs
# --------------------------------------------------------------------------------------------


def threshold_rates(
    scores: np.ndarray, thresholds: Sequence[float], confidence_level: float = 0.6827
) -> dict[str, dict[str, Any]]:
    """``{"0.3": {k, n, completeness, ci_low, ci_high}, ...}``: fraction with p > t (strict)."""
    scores = np.asarray(scores, dtype=np.float64)
    return {
        _threshold_key(t): _rate(count_detected(scores, t), len(scores), confidence_level)
        for t in thresholds
    }


def detection_rates(
    scores: np.ndarray,
    source_mag: np.ndarray,
    *,
    thresholds: Sequence[float],
    mag_bins: Sequence[float],
    confidence_level: float = 0.6827,
) -> dict[str, Any]:
    """Detection rate (p > t) overall and per source-magnitude bin, plus the score
    distribution (quantiles and a 20-bin histogram on [0, 1]).

    Magnitude bins are ``[edge_i, edge_i+1)``, the last one closed.
    """
    scores = np.asarray(scores, dtype=np.float64)
    mags = np.asarray(source_mag, dtype=np.float64)
    edges = np.asarray(mag_bins, dtype=np.float64)
    which = np.clip(np.searchsorted(edges, mags, side="right") - 1, 0, len(edges) - 2)
    inside = (mags >= edges[0]) & (mags <= edges[-1])
    by_bin = []
    for b in range(len(edges) - 1):
        members = inside & (which == b)
        by_bin.append(
            {
                "mag_low": float(edges[b]),
                "mag_high": float(edges[b + 1]),
                "rates": {
                    _threshold_key(t): _rate(
                        count_detected(scores[members], t),
                        int(members.sum()),
                        confidence_level,
                    )
                    for t in thresholds
                },
            }
        )
    counts, hist_edges = np.histogram(scores, bins=20, range=(0.0, 1.0))
    quantiles = [0.05, 0.25, 0.5, 0.75, 0.95]
    return {
        "n": len(scores),
        "comparison": DETECTION_COMPARISON,
        "interval": "wilson",
        "confidence_level": confidence_level,
        "rates": threshold_rates(scores, thresholds, confidence_level),
        "by_source_mag": by_bin,
        "score_quantiles": (
            {f"q{int(q * 100):02d}": float(np.quantile(scores, q)) for q in quantiles}
            if len(scores)
            else {}
        ),
        "score_histogram": {"edges": hist_edges.tolist(), "counts": counts.tolist()},
    }


# --------------------------------------------------------------------------------------------
# Poisson diagnostics
# --------------------------------------------------------------------------------------------


def poisson_noise_diagnostics(
    arcs: np.ndarray,
    residual: np.ndarray,
    invvar: np.ndarray,
    gain: np.ndarray,
    bands: Sequence[str],
    *,
    arc_sigma: float = 1.0,
) -> dict[str, Any]:
    """Per band: the noise added to injected arcs against the expectations.

    Args:
        arcs: ``(N, B, H, W)`` noiseless arc flux (nanomaggies/pixel).
        residual: ``(N, B, H, W)`` injected-with-noise minus (host + arc): the added noise.
        invvar: ``(N, B, H, W)`` the hosts' inverse variance (1/nanomaggy^2).
        gain: ``(B,)`` e-/nanomaggy of the Poisson noise.

    Over the arc pixels (``arc > arc_sigma / sqrt(invvar)``, invvar > 0) of each band:

    * ``chi2_per_pixel``: mean of ``residual^2 / (arc / gain)``; 1 for Poisson noise of the
      arc at that gain (``variance_ratio`` is the same as a ratio of sums);
    * ``poisson_to_sky_variance_median``: median of ``(arc / gain) * invvar``, the arc's shot
      noise in units of the survey noise the host already carries;
    * ``missing_variance_fraction_median``: median of ``(arc/gain) / (1/invvar + arc/gain)``:
      the share of a real arc's expected pixel variance that a noiseless injection lacks.
    """
    arcs = np.asarray(arcs, dtype=np.float64)
    residual = np.asarray(residual, dtype=np.float64)
    invvar = np.asarray(invvar, dtype=np.float64)
    out: dict[str, Any] = {"arc_sigma": arc_sigma, "bands": {}}
    for b, band in enumerate(bands):
        arc = arcs[:, b]
        ivar = invvar[:, b]
        with np.errstate(divide="ignore", invalid="ignore"):
            sky_sigma = np.where(ivar > 0, 1.0 / np.sqrt(ivar), np.inf)
        mask = (ivar > 0) & (arc > arc_sigma * sky_sigma)
        expected = arc[mask] / float(gain[b])
        res = residual[:, b][mask]
        entry: dict[str, Any] = {"gain": float(gain[b]), "n_pixels": int(mask.sum())}
        if mask.any():
            entry.update(
                {
                    "chi2_per_pixel": float(np.mean(res**2 / expected)),
                    "variance_ratio": float(np.sum(res**2) / np.sum(expected)),
                    "residual_mean_sigma": float(np.mean(res / np.sqrt(expected))),
                    "poisson_to_sky_variance_median": float(np.median(expected * ivar[mask])),
                    "missing_variance_fraction_median": float(
                        np.median(expected / (1.0 / ivar[mask] + expected))
                    ),
                }
            )
        out["bands"][band] = entry
    return out


def poisson_diagnostics_png(
    arcs: np.ndarray,
    residual: np.ndarray,
    invvar: np.ndarray,
    gain: np.ndarray,
    bands: Sequence[str],
    *,
    arc_sigma: float = 1.0,
) -> bytes:
    """PNG: per band, the histogram of ``residual / sqrt(arc/gain)`` over arc pixels against
    N(0, 1), and the arcs' Poisson variance against the hosts' variance (1/invvar)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(bands), figsize=(4 * len(bands), 6.5), squeeze=False)
    grid = np.linspace(-5, 5, 201)
    for b, band in enumerate(bands):
        z = normalised_residuals(arcs, residual, invvar, gain, b, arc_sigma=arc_sigma)
        ax = axes[0, b]
        if len(z):
            ax.hist(np.clip(z, -5, 5), bins=50, range=(-5, 5), density=True, alpha=0.7)
        ax.plot(grid, np.exp(-0.5 * grid**2) / np.sqrt(2 * np.pi), "k-", lw=1, label="N(0, 1)")
        ax.set_title(f"{band}: residual / sqrt(arc/gain), {len(z)} px")
        ax.legend(fontsize=8)
        arc = np.asarray(arcs[:, b], np.float64)
        ivar = np.asarray(invvar[:, b], np.float64)
        mask = (ivar > 0) & (arc * np.sqrt(np.where(ivar > 0, ivar, 0)) > arc_sigma)
        ax = axes[1, b]
        if mask.any():
            ax.loglog(1.0 / ivar[mask], arc[mask] / float(gain[b]), ",", alpha=0.3)
            lo = float(min((1.0 / ivar[mask]).min(), (arc[mask] / gain[b]).min()))
            hi = float(max((1.0 / ivar[mask]).max(), (arc[mask] / gain[b]).max()))
            ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="equal")
            ax.legend(fontsize=8)
        ax.set_xlabel("host variance 1/invvar (nmgy$^2$)")
        ax.set_ylabel("arc Poisson variance arc/gain")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80, metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def normalised_residuals(
    arcs: np.ndarray,
    residual: np.ndarray,
    invvar: np.ndarray,
    gain: np.ndarray,
    band: int,
    *,
    arc_sigma: float = 1.0,
) -> np.ndarray:
    """``residual / sqrt(arc / gain)`` over one band's arc pixels (for the histogram plot)."""
    arc = np.asarray(arcs[:, band], np.float64)
    ivar = np.asarray(invvar[:, band], np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        sky_sigma = np.where(ivar > 0, 1.0 / np.sqrt(ivar), np.inf)
    mask = (ivar > 0) & (arc > arc_sigma * sky_sigma)
    return np.asarray(residual[:, band], np.float64)[mask] / np.sqrt(arc[mask] / float(gain[band]))


__all__ = [
    "D06Config",
    "HostError",
    "HostPool",
    "InjectionBatch",
    "derived_rng",
    "detection_rates",
    "draw_hosts",
    "grid_summary",
    "host_pool",
    "inject_cutouts",
    "load_d06_config",
    "make_injections",
    "marginal_completeness",
    "poisson_noise_diagnostics",
    "read_cutouts",
    "selection_function",
    "validation_lenses",
    "validation_negatives",
]
