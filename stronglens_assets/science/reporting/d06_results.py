"""Reader of a D06 results directory in the published layout, into one typed model.

The published study's results directory (and our D06, which writes the same shapes) holds::

    grid_<partition>/selection_function.csv        partitions no_poisson, poisson
    grid_<partition>/selection_function_meta.json
    ba_<variant>/bright_arc_results.json            baseline, poisson, clip20, gain_1e12,
                                                    poisson_clip20, unrestricted
    linear_probe/feature_space_results.json
    linear_probe/permutation_bootstrap_results.json
    tier_a_scoring/real_lens_scoring_results.json
    poisson_diagnostics/mcnemar_results.json

and, not part of the published layout, optional per-object inputs that some figures need
(the published directory carries only summaries):

    linear_probe/embeddings.npz          float (n, d) arrays real_tier_a, inj_low_bf, inj_high_bf,
                                         negatives (the probe's groups); optional (n,) arrays
                                         <group>_score (p(lens)) and bool real_tier_a_is_mock
    tier_a_scoring/tier_a_scores.parquet one row per Tier-A lens: object_id, score; optional
                                         source (real | mock), ra, dec [deg], mag_r (deflector r,
                                         AB mag), z_lens
    real_vs_injection/cutouts.npz        real_images, injection_images: (n, 3, H, W) grz in
                                         nanomaggies; real_ids, real_scores, real_is_mock,
                                         injection_ids, injection_scores

A copy with flattened names (``grid_no_poisson_selection_function.csv``: ``<subdir>_<file>``,
as the project's test data keep them) is read too. Missing files are listed in
:attr:`D06Results.missing` and their part of the model is ``None``; a file that is present but
malformed (unparseable, a missing or mistyped field, counts that contradict each other) raises
:class:`ResultsFormatError` naming the file and the field. Cross-file comparisons and recomputed
statistics are not this module's business (see :mod:`.paper_summary`).

Conventions: scores are p(lens) in [0, 1]; detection is ``p > threshold`` (strict); angles in
arcsec; magnitudes AB; rates are fractions. The source is a directory path or any object with
``read_bytes(key) -> bytes`` (raising ``FileNotFoundError`` when absent) and ``uri(key) -> str``,
e.g. the project's object stores; ``list_keys(prefix)`` when present lets extra partitions and
variants be discovered.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from stronglens_assets.errors import StronglensError
from stronglens_assets.science.core.hashing import sha256_bytes
from stronglens_assets.science.core.npz import decode_npz
from stronglens_assets.science.lensing.priors import BRIGHT_ARC_VARIANTS, GRID_VARIANTS
from stronglens_assets.science.stats.thresholds import ThresholdSpec, fixed_label, fpr_label

__all__ = [
    "BRIGHT_ARC_VARIANTS",
    "GRID_PARTITIONS",
    "SELECTION_FUNCTION_COLUMNS",
    "BrightArcBin",
    "BrightArcVariant",
    "ComparisonCutouts",
    "D06Results",
    "DirectorySource",
    "FeatureSpace",
    "Grid",
    "InputFile",
    "MissingInput",
    "PairedBin",
    "PairedPool",
    "PoissonPairs",
    "PrefixedSource",
    "ProbeEmbeddings",
    "ProbeSignificance",
    "RecallAt",
    "ResultsFormatError",
    "ResultsSource",
    "ThresholdSpec",
    "TierALenses",
    "TierAScoring",
    "fpr_label",
    "read_d06_results",
]

GRID_PARTITIONS: tuple[str, ...] = GRID_VARIANTS
"""The D06 grid partitions (the experiment's variant names, :mod:`..lensing.priors`)."""
PROBE_GROUPS: tuple[str, ...] = ("real_tier_a", "inj_low_bf", "inj_high_bf", "negatives")
"""The linear probe's groups, in the published files' names."""

SELECTION_FUNCTION_COLUMNS: tuple[str, ...] = (
    "theta_e",
    "psf_fwhm",
    "depth_5sig",
    "threshold",
    "threshold_type",
    "fpr_target",
    "source_mag_bin",
    "n_injections",
    "n_detected",
    "n_failed",
    "completeness",
    "ci68_lo",
    "ci68_hi",
    "ci95_lo",
    "ci95_hi",
    "mean_score",
    "mean_arc_snr",
    "sufficient",
)
"""Columns of ``selection_function.csv`` (published schema); extra columns are allowed."""

_KEYS = {
    "grid": ("grid_{}", "selection_function.csv"),
    "grid_meta": ("grid_{}", "selection_function_meta.json"),
    "bright_arc": ("ba_{}", "bright_arc_results.json"),
    "feature_space": ("linear_probe", "feature_space_results.json"),
    "probe_significance": ("linear_probe", "permutation_bootstrap_results.json"),
    "tier_a": ("tier_a_scoring", "real_lens_scoring_results.json"),
    "mcnemar": ("poisson_diagnostics", "mcnemar_results.json"),
    "embeddings": ("linear_probe", "embeddings.npz"),
    "tier_a_lenses": ("tier_a_scoring", "tier_a_scores.parquet"),
    "cutouts": ("real_vs_injection", "cutouts.npz"),
}
_MAG_BIN = re.compile(r"^(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)$")
_FPR_TYPE = re.compile(r"^FPR=([0-9.eE+-]+)$")
_THRESHOLD_LABEL = re.compile(r"^p>(\d*\.?\d+)(\s*\(FPR-derived\))?$")
_INTEGER_TOLERANCE = 1e-6
_RATE_TOLERANCE = 1e-9


class ResultsFormatError(StronglensError, ValueError):
    """A results file is malformed; the message names the file and the field."""

    def __init__(self, file: str, field_name: str, problem: str):
        self.file = file
        self.field = field_name
        self.problem = problem
        super().__init__(f"{file}: field {field_name!r}: {problem}")


# --------------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------------


@runtime_checkable
class ResultsSource(Protocol):
    """Where the files come from: ``read_bytes`` raises ``FileNotFoundError`` when absent."""

    def read_bytes(self, key: str) -> bytes: ...

    def uri(self, key: str) -> str: ...


class DirectorySource:
    """Files under a local directory; keys are ``/``-separated relative paths."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root).expanduser().resolve()
        if not self.root.is_dir():
            raise FileNotFoundError(f"results directory {self.root} does not exist")

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if not key or key.startswith("/") or ".." in parts:
            raise ValueError(f"invalid results key {key!r}")
        return self.root.joinpath(*parts)

    @property
    def location(self) -> str:
        return str(self.root)

    def read_bytes(self, key: str) -> bytes:
        path = self._path(key)
        if not path.is_file():
            raise FileNotFoundError(f"no file {path}")
        return path.read_bytes()

    def uri(self, key: str) -> str:
        return str(self._path(key))

    def list_keys(self, prefix: str = "") -> list[str]:
        base = self._path(prefix) if prefix else self.root
        if not base.is_dir():
            return []
        return sorted(p.relative_to(self.root).as_posix() for p in base.rglob("*") if p.is_file())


class PrefixedSource:
    """``inner`` seen from ``prefix`` (e.g. an object store's ``results/D06``)."""

    def __init__(self, inner: ResultsSource, prefix: str):
        self.inner = inner
        self.prefix = prefix.strip("/")

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    @property
    def location(self) -> str:
        return _location(self.inner).rstrip("/") + (f"/{self.prefix}" if self.prefix else "")

    def read_bytes(self, key: str) -> bytes:
        return self.inner.read_bytes(self._key(key))

    def uri(self, key: str) -> str:
        return self.inner.uri(self._key(key))

    def list_keys(self, prefix: str = "") -> list[str]:
        lister = getattr(self.inner, "list_keys", None)
        if lister is None:
            return []
        strip = len(self.prefix) + 1 if self.prefix else 0
        keys = lister(self._key(prefix) if prefix else self.prefix)
        return sorted(k[strip:] for k in keys)


# --------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grid:
    """One completeness grid (``grid_<partition>``).

    ``table`` is ``selection_function.csv`` validated, one row per (theta_E [arcsec], PSF FWHM
    [arcsec], 5-sigma depth [AB mag], threshold, source-magnitude bin); ``thresholds`` are in
    the table's order; ``meta`` is ``selection_function_meta.json`` as read.
    """

    partition: str
    table: pd.DataFrame
    meta: Mapping[str, Any]
    thresholds: tuple[ThresholdSpec, ...]
    add_poisson_noise: bool
    gain_e_per_nmgy: float | None
    uri: str

    def threshold(self, label: str) -> ThresholdSpec:
        for spec in self.thresholds:
            if spec.label == label:
                return spec
        raise ResultsFormatError(
            self.uri,
            "threshold",
            f"no {label} threshold, which this output needs (the grid has "
            f"{', '.join(s.label for s in self.thresholds)})",
        )

    def rows(self, threshold: ThresholdSpec, source_mag_bin: str = "all") -> pd.DataFrame:
        """Rows of one threshold and one source-magnitude bin."""
        t = self.table
        return t[
            (t["threshold_label"] == threshold.label) & (t["source_mag_bin"] == source_mag_bin)
        ]

    @property
    def source_mag_bins(self) -> list[str]:
        return list(dict.fromkeys(self.table["source_mag_bin"]))


@dataclass(frozen=True)
class BrightArcBin:
    """One source-magnitude bin [mag_lo, mag_hi) (unlensed r, AB) of a bright-arc variant."""

    mag_bin: str
    mag_lo: float
    mag_hi: float
    n: int
    k_p03: int
    k_p05: int
    median_score: float | None
    median_arc_snr: float | None

    @property
    def rate_p03(self) -> float:
        return self.k_p03 / self.n if self.n else math.nan

    @property
    def rate_p05(self) -> float:
        return self.k_p05 / self.n if self.n else math.nan


@dataclass(frozen=True)
class BrightArcVariant:
    """``ba_<variant>/bright_arc_results.json``: detection at p > 0.3 and p > 0.5 per bin.

    ``k_p03``/``k_p05`` are recovered as ``rate x n`` (the file gives rates; they must be
    whole numbers). ``beta_frac_range`` is ``None`` when the file leaves the default.
    """

    variant: str
    bins: tuple[BrightArcBin, ...]
    theta_e: float
    n_hosts: int | None
    seed: int | None
    beta_frac_range: tuple[float, float] | None
    add_poisson_noise: bool
    gain_e_per_nmgy: float | None
    clip_range: float | None
    n_total: int
    n_scored: int
    n_failed: int
    uri: str


@dataclass(frozen=True)
class PairedBin:
    """Poisson vs baseline detections of the same injections in one magnitude bin.

    ``b``: detected only with Poisson noise ("gained"); ``c``: only without ("lost");
    ``chi2``, ``p_chi2``, ``p_exact`` as the file gives them.
    """

    label: str
    n_paired: int
    b: int
    c: int
    both_detected: int
    both_undetected: int
    chi2: float
    p_chi2: float
    p_exact: float
    baseline_rate: float
    poisson_rate: float


@dataclass(frozen=True)
class PairedPool:
    """A pooled McNemar test over ``bins`` (``aggregate_<name>`` of the file)."""

    name: str
    bins: tuple[str, ...]
    b: int
    c: int
    chi2: float
    p_chi2: float
    p_exact: float


@dataclass(frozen=True)
class PoissonPairs:
    """``poisson_diagnostics/mcnemar_results.json``."""

    per_bin: tuple[PairedBin, ...]
    pools: tuple[PairedPool, ...]
    uri: str


@dataclass(frozen=True)
class FeatureSpace:
    """``linear_probe/feature_space_results.json``: probe AUC (CV mean/std), Fréchet
    distances (per feature block, ``None`` where the file has NaN; overall), median scores."""

    group_sizes: Mapping[str, int]
    target_mag: float
    theta_e: float
    task: str
    cv_auc_mean: float
    cv_auc_std: float
    frechet_per_layer: Mapping[str, float | None]
    frechet: Mapping[str, float]
    median_scores: Mapping[str, float]
    uri: str


@dataclass(frozen=True)
class ProbeSignificance:
    """``linear_probe/permutation_bootstrap_results.json``."""

    auc_mean: float
    auc_std: float
    auc_folds: tuple[float, ...]
    n_permutations: int
    permutation_p: float
    n_exceeding: int
    max_perm_auc: float
    mean_perm_auc: float
    n_bootstrap: int
    n_bootstrap_valid: int
    bootstrap_ci95: tuple[float, float]
    bootstrap_mean: float
    bootstrap_std: float
    uri: str


@dataclass(frozen=True)
class RecallAt:
    """Tier-A recall at one threshold of ``real_lens_scoring_results.json``.

    ``label`` is the file's (``p>0.806 (FPR-derived)``); ``threshold`` its number;
    ``spec`` the canonical threshold (``FPR=1e-3`` when a grid's metadata names the target).
    ``fpr_negatives`` is the false-positive rate of the file's negatives at the same label.
    """

    label: str
    threshold: float
    fpr_derived: bool
    k: int
    n: int
    ci95: tuple[float, float] | None
    fpr_negatives: float | None
    spec: ThresholdSpec


@dataclass(frozen=True)
class TierAScoring:
    """``tier_a_scoring/real_lens_scoring_results.json``."""

    n_total: int
    n_valid: int
    n_errors: int
    recall: tuple[RecallAt, ...]
    n_negatives: int
    score_stats: Mapping[str, Mapping[str, float]]
    uri: str


@dataclass(frozen=True)
class ProbeEmbeddings:
    """Optional ``linear_probe/embeddings.npz``: per group an (n, d) embedding and scores."""

    embeddings: Mapping[str, np.ndarray]
    scores: Mapping[str, np.ndarray]
    tier_a_is_mock: np.ndarray | None
    uri: str


@dataclass(frozen=True)
class TierALenses:
    """Optional ``tier_a_scoring/tier_a_scores.parquet``: one row per Tier-A lens."""

    table: pd.DataFrame
    uri: str


@dataclass(frozen=True)
class ComparisonCutouts:
    """Optional ``real_vs_injection/cutouts.npz`` (grz, nanomaggies per pixel)."""

    real_images: np.ndarray
    real_ids: tuple[str, ...]
    real_scores: np.ndarray
    real_is_mock: np.ndarray
    injection_images: np.ndarray
    injection_ids: tuple[str, ...]
    injection_scores: np.ndarray
    uri: str


@dataclass(frozen=True)
class MissingInput:
    """An expected file that is absent; ``optional`` when it is not part of the published
    layout (per-object inputs)."""

    key: str
    description: str
    optional: bool


@dataclass(frozen=True)
class InputFile:
    """A file that was read: key, URI, size and SHA-256 (provenance)."""

    key: str
    uri: str
    size: int
    sha256: str


@dataclass(frozen=True)
class D06Results:
    """Everything read from one results directory; ``None``/empty where files are absent."""

    location: str
    grids: Mapping[str, Grid]
    bright_arcs: Mapping[str, BrightArcVariant]
    poisson_pairs: PoissonPairs | None
    feature_space: FeatureSpace | None
    probe_significance: ProbeSignificance | None
    tier_a: TierAScoring | None
    embeddings: ProbeEmbeddings | None
    tier_a_lenses: TierALenses | None
    cutouts: ComparisonCutouts | None
    inputs: tuple[InputFile, ...]
    missing: tuple[MissingInput, ...]
    layout: str = "nested"
    """``nested`` (``grid_no_poisson/selection_function.csv``) or ``flat`` (``<subdir>_<file>``)."""


# --------------------------------------------------------------------------------------------
# Field checks
# --------------------------------------------------------------------------------------------


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


class _Node:
    """A JSON value with the file it came from and its path, for error messages."""

    def __init__(self, file: str, value: Any, path: str = ""):
        self.file = file
        self.value = value
        self.path = path

    def _sub(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def fail(self, name: str | None, problem: str) -> ResultsFormatError:
        where = self._sub(name) if name is not None else (self.path or "<top level>")
        return ResultsFormatError(self.file, where, problem)

    def mapping(self) -> Mapping[str, Any]:
        if not isinstance(self.value, Mapping):
            raise self.fail(None, f"expected an object, found {_type_name(self.value)}")
        return self.value

    def has(self, name: str) -> bool:
        return name in self.mapping()

    def child(self, name: str) -> _Node:
        node = _Node(self.file, self.raw(name), self._sub(name))
        node.mapping()
        return node

    def raw(self, name: str) -> Any:
        values = self.mapping()
        if name not in values:
            raise self.fail(name, "missing")
        return values[name]

    def number(
        self,
        name: str,
        *,
        lo: float | None = None,
        hi: float | None = None,
        nullable: bool = False,
        allow_nan: bool = False,
        optional: bool = False,
    ) -> float | None:
        if optional and not self.has(name):
            return None
        value = self.raw(name)
        if value is None and nullable:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(name, f"expected a number, found {_type_name(value)} {value!r}")
        value = float(value)
        if math.isnan(value) and allow_nan:
            return None
        if not math.isfinite(value):
            raise self.fail(name, f"not a finite number ({value})")
        if lo is not None and value < lo:
            raise self.fail(name, f"{value} is below {lo}")
        if hi is not None and value > hi:
            raise self.fail(name, f"{value} is above {hi}")
        return value

    def fraction(self, name: str, **kwargs: Any) -> float | None:
        return self.number(name, lo=0.0, hi=1.0, **kwargs)

    def integer(
        self, name: str, *, lo: int = 0, nullable: bool = False, optional: bool = False
    ) -> int | None:
        if optional and not self.has(name):
            return None
        value = self.raw(name)
        if value is None and nullable:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(name, f"expected an integer, found {_type_name(value)} {value!r}")
        if value < lo:
            raise self.fail(name, f"{value} is below {lo}")
        return int(value)

    def string(self, name: str, *, nullable: bool = False, optional: bool = False) -> str | None:
        if optional and not self.has(name):
            return None
        value = self.raw(name)
        if value is None and nullable:
            return None
        if not isinstance(value, str):
            raise self.fail(name, f"expected a string, found {_type_name(value)}")
        return value

    def boolean(self, name: str, *, optional: bool = False) -> bool | None:
        if optional and not self.has(name):
            return None
        value = self.raw(name)
        if not isinstance(value, bool):
            raise self.fail(name, f"expected true or false, found {_type_name(value)} {value!r}")
        return value

    def numbers(self, name: str, *, length: int | None = None, nullable: bool = False) -> Any:
        value = self.raw(name)
        if value is None and nullable:
            return None
        if not isinstance(value, list) or not value:
            raise self.fail(
                name, f"expected a non-empty list of numbers, found {_type_name(value)}"
            )
        out = []
        for i, item in enumerate(value):
            if isinstance(item, bool) or not isinstance(item, int | float):
                raise self.fail(f"{name}[{i}]", f"expected a number, found {_type_name(item)}")
            if not math.isfinite(item):
                raise self.fail(f"{name}[{i}]", f"not a finite number ({item})")
            out.append(float(item))
        if length is not None and len(out) != length:
            raise self.fail(name, f"expected {length} numbers, found {len(out)}")
        return tuple(out)

    def strings(self, name: str) -> tuple[str, ...]:
        value = self.raw(name)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(name, "expected a list of strings")
        return tuple(value)

    def check(self, ok: bool, name: str, problem: str) -> None:
        if not ok:
            raise self.fail(name, problem)


def _whole(value: float, node: _Node, name: str, what: str) -> int:
    rounded = round(value)
    if abs(value - rounded) > _INTEGER_TOLERANCE:
        raise node.fail(name, f"{what} = {value!r} is not a whole number of objects")
    return int(rounded)


def _parse_json(file: str, data: bytes) -> _Node:
    try:
        return _Node(file, json.loads(data.decode("utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultsFormatError(file, "<json>", f"not valid JSON: {exc}") from exc


def _mag_bin(node: _Node, name: str, label: str) -> tuple[float, float]:
    match = _MAG_BIN.match(label)
    if not match or float(match.group(1)) >= float(match.group(2)):
        raise node.fail(name, f"magnitude bin {label!r} is not '<lo>-<hi>' with lo < hi")
    return float(match.group(1)), float(match.group(2))


# --------------------------------------------------------------------------------------------
# One reader per file
# --------------------------------------------------------------------------------------------


def _column_numbers(table: pd.DataFrame, file: str, column: str) -> pd.Series:
    raw = table[column]
    values = pd.to_numeric(raw, errors="coerce")
    bad = values.isna() & raw.notna() & (raw.astype(str).str.strip() != "")
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise ResultsFormatError(file, column, f"line {row + 2}: {raw.iloc[row]!r} is not a number")
    return values.astype(np.float64)


def _first_bad(mask: pd.Series | np.ndarray) -> int | None:
    index = np.flatnonzero(np.asarray(mask))
    return int(index[0]) if len(index) else None


def _require_rows(
    table: pd.DataFrame, file: str, column: str, bad: pd.Series | np.ndarray, problem: str
) -> None:
    row = _first_bad(bad)
    if row is not None:
        shown = table[column].iloc[row]
        raise ResultsFormatError(file, column, f"line {row + 2}: {shown!r}: {problem}")


def _read_selection_function(file: str, data: bytes) -> pd.DataFrame:
    try:
        table = pd.read_csv(io.BytesIO(data), dtype={"threshold_type": str, "source_mag_bin": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ResultsFormatError(file, "<csv>", f"not a readable CSV table: {exc}") from exc
    for column in SELECTION_FUNCTION_COLUMNS:
        if column not in table.columns:
            raise ResultsFormatError(file, column, "column missing")
    if table.empty:
        raise ResultsFormatError(file, "<csv>", "no rows")
    numeric = [
        c
        for c in SELECTION_FUNCTION_COLUMNS
        if c not in ("threshold_type", "source_mag_bin", "sufficient")
    ]
    for column in numeric:
        table[column] = _column_numbers(table, file, column)
    for column in ("theta_e", "psf_fwhm", "depth_5sig", "threshold"):
        _require_rows(table, file, column, ~np.isfinite(table[column]), "must be a finite number")
    _require_rows(
        table,
        file,
        "threshold",
        (table["threshold"] < 0) | (table["threshold"] > 1),
        "not in [0, 1]",
    )
    for column in ("n_injections", "n_detected", "n_failed"):
        values = table[column]
        bad = ~np.isfinite(values) | (values < 0) | (values != np.round(values))
        _require_rows(table, file, column, bad, "must be a non-negative integer")
        table[column] = values.astype(np.int64)
    _require_rows(
        table,
        file,
        "n_detected",
        table["n_detected"] > table["n_injections"],
        "more detections than n_injections",
    )
    for column in ("threshold_type", "source_mag_bin"):
        _require_rows(table, file, column, table[column].isna(), "empty")
    types = table["threshold_type"].astype(str)
    fpr_in_type = pd.to_numeric(types.str.extract(_FPR_TYPE)[0], errors="coerce")
    bad_type = (types != "fixed") & fpr_in_type.isna()
    _require_rows(table, file, "threshold_type", bad_type, "must be 'fixed' or 'FPR=<number>'")
    fixed = types == "fixed"
    _require_rows(
        table, file, "fpr_target", fixed & table["fpr_target"].notna(), "set for a fixed threshold"
    )
    mismatch = ~fixed & ~np.isclose(table["fpr_target"], fpr_in_type, rtol=1e-9, atol=0)
    _require_rows(table, file, "fpr_target", mismatch, "differs from the FPR in threshold_type")
    bins = table["source_mag_bin"].astype(str)
    good_bin = (bins == "all") | bins.str.fullmatch(r"(lensed_)?\d+(\.\d+)?-\d+(\.\d+)?")
    _require_rows(
        table, file, "source_mag_bin", ~good_bin, "not 'all', '<lo>-<hi>' or 'lensed_<lo>-<hi>'"
    )
    empty = table["n_injections"] == 0
    for column in ("completeness", "ci68_lo", "ci68_hi", "ci95_lo", "ci95_hi", "mean_score"):
        values = table[column]
        _require_rows(
            table, file, column, ~empty & ~np.isfinite(values), "missing for a non-empty cell"
        )
        _require_rows(
            table, file, column, empty & values.notna(), "set for a cell without injections"
        )
        _require_rows(table, file, column, (values < 0) | (values > 1), "not in [0, 1]")
    _require_rows(
        table,
        file,
        "mean_arc_snr",
        ~empty & ~np.isfinite(table["mean_arc_snr"]),
        "missing for a non-empty cell",
    )
    rate = table["n_detected"] / table["n_injections"].where(~empty)
    _require_rows(
        table,
        file,
        "completeness",
        ~empty & (np.abs(table["completeness"] - rate) > _RATE_TOLERANCE),
        "differs from n_detected / n_injections",
    )
    for lo, hi in (("ci68_lo", "ci68_hi"), ("ci95_lo", "ci95_hi")):
        _require_rows(table, file, lo, ~empty & (table[lo] > table[hi]), f"above {hi}")
    nested = (table["ci95_lo"] <= table["ci68_lo"] + 1e-12) & (
        table["ci68_hi"] <= table["ci95_hi"] + 1e-12
    )
    _require_rows(
        table, file, "ci95_lo", ~empty & ~nested, "95% interval does not contain the 68% one"
    )
    sufficient = table["sufficient"]
    if sufficient.dtype != bool:
        text = sufficient.astype(str).str.strip().str.lower()
        _require_rows(
            table, file, "sufficient", ~text.isin(["true", "false"]), "must be True or False"
        )
        table["sufficient"] = text == "true"
    key = ["theta_e", "psf_fwhm", "depth_5sig", "threshold_type", "threshold", "source_mag_bin"]
    _require_rows(
        table, file, "source_mag_bin", table.duplicated(key), "duplicate row for its cell"
    )
    return table


def _threshold_specs(table: pd.DataFrame, file: str) -> tuple[tuple[ThresholdSpec, ...], pd.Series]:
    specs: dict[tuple[str, float], ThresholdSpec] = {}
    labels = []
    for kind, value, fpr in zip(
        table["threshold_type"], table["threshold"], table["fpr_target"], strict=True
    ):
        key = (kind, float(value))
        if key not in specs:
            if kind == "fixed":
                specs[key] = ThresholdSpec(fixed_label(float(value)), float(value), None)
            else:
                specs[key] = ThresholdSpec(fpr_label(float(fpr)), float(value), float(fpr))
        labels.append(specs[key].label)
    names = [s.label for s in specs.values()]
    if len(set(names)) != len(names):
        raise ResultsFormatError(
            file, "threshold", f"several thresholds share a label: {sorted(names)}"
        )
    return tuple(specs.values()), pd.Series(labels, index=table.index)


def _read_grid(
    partition: str, csv_file: str, csv: bytes, meta_file: str, meta_bytes: bytes
) -> Grid:
    table = _read_selection_function(csv_file, csv)
    specs, labels = _threshold_specs(table, csv_file)
    table["threshold_label"] = labels
    meta = _parse_json(meta_file, meta_bytes)
    meta.mapping()
    for name in (
        "timestamp_utc",
        "checkpoint",
        "manifest",
        "arch",
        "host_split",
        "injection_engine",
        "source_model",
        "save_cutouts_dir",
    ):
        meta.string(name, optional=True, nullable=True)
    for name in ("epoch", "host_max", "max_retries_per_injection"):
        meta.integer(name, optional=True, nullable=True)
    meta.string("preprocessing")
    meta.integer("seed")
    meta.integer("injections_per_cell", lo=1)
    meta.boolean("crop", optional=True)
    meta.boolean("save_cutouts", optional=True)
    meta.boolean("add_sky_noise", optional=True)
    meta.number("pixscale", lo=0.0, optional=True)
    if meta.has("notes"):
        meta.strings("notes")
    if meta.has("failure_log_sample") and not isinstance(meta.raw("failure_log_sample"), list):
        raise meta.fail("failure_log_sample", "expected a list")
    if meta.has("injection_overrides"):
        meta.child("injection_overrides")
    # thresholds: the same set as the table's
    thresholds = meta.numbers("thresholds")
    table_values = sorted({s.value for s in specs})
    if len(thresholds) != len(table_values) or not np.allclose(
        sorted(thresholds), table_values, rtol=0, atol=1e-12
    ):
        raise meta.fail("thresholds", f"{list(thresholds)} differ from the table's {table_values}")
    fpr_targets = meta.numbers("fpr_targets") if meta.raw("fpr_targets") else ()
    derived = meta.child("fpr_derived_thresholds")
    table_fpr = {s.fpr_target: s.value for s in specs if s.fpr_target is not None}
    for target in fpr_targets:
        key = next((k for k in derived.mapping() if _same_float(k, target)), None)
        if key is None:
            raise derived.fail(str(target), "missing for a target in fpr_targets")
        value = derived.fraction(key)
        table_value = next(
            (v for t, v in table_fpr.items() if math.isclose(t, target, rel_tol=1e-9)), None
        )
        if table_value is None or not math.isclose(value, table_value, rel_tol=0, abs_tol=1e-12):
            raise derived.fail(
                key, f"{value} is not the table's FPR={target:g} threshold {table_value}"
            )
    if len(fpr_targets) != len(table_fpr):
        raise meta.fail(
            "fpr_targets", f"{list(fpr_targets)} differ from the table's {sorted(table_fpr)}"
        )
    # grid axes and counts
    grid = meta.child("grid")
    for axis in ("theta_e", "psf_fwhm", "depth_5sig"):
        values = sorted(grid.numbers(axis))
        found = sorted(table[axis].unique())
        if len(values) != len(found) or not np.allclose(values, found, rtol=0, atol=1e-9):
            raise grid.fail(axis, f"{values} differ from the table's values {found}")
    all_rows = table[
        (table["source_mag_bin"] == "all") & (table["threshold_label"] == specs[0].label)
    ]
    n_cells = meta.integer("n_cells")
    meta.check(
        len(all_rows) == n_cells, "n_cells", f"{n_cells}, but the table has {len(all_rows)} cells"
    )
    n_axes = np.prod([len(grid.numbers(a)) for a in ("theta_e", "psf_fwhm", "depth_5sig")])
    meta.check(n_cells == n_axes, "n_cells", f"{n_cells} is not the product of the axes ({n_axes})")
    n_empty = meta.integer("n_empty_cells")
    found_empty = int((all_rows["n_injections"] == 0).sum())
    meta.check(
        n_empty == found_empty, "n_empty_cells", f"{n_empty}, but {found_empty} cells are empty"
    )
    n_sufficient = meta.integer("n_sufficient_cells")
    found_sufficient = int(all_rows["sufficient"].sum())
    meta.check(
        n_sufficient == found_sufficient,
        "n_sufficient_cells",
        f"{n_sufficient}, but {found_sufficient} cells are flagged sufficient",
    )
    total_ok = meta.integer("total_injections_ok")
    for spec in specs:
        rows = table[(table["source_mag_bin"] == "all") & (table["threshold_label"] == spec.label)]
        meta.check(
            int(rows["n_injections"].sum()) == total_ok,
            "total_injections_ok",
            f"{total_ok}, but the table's cells hold {int(rows['n_injections'].sum())} "
            f"at {spec.label}",
        )
        for prefix in ("", "lensed_"):
            sub = table[
                (table["threshold_label"] == spec.label)
                & table["source_mag_bin"].str.fullmatch(prefix + r"\d+(\.\d+)?-\d+(\.\d+)?")
            ]
            for column in ("n_injections", "n_detected"):
                if int(sub[column].sum()) > int(rows[column].sum()):
                    raise ResultsFormatError(
                        csv_file,
                        column,
                        f"the {prefix or 'source '}magnitude bins at {spec.label} sum to more "
                        "than the 'all' rows",
                    )
    failed = meta.integer("total_injections_failed")
    found_failed = int(all_rows["n_failed"].sum())
    meta.check(
        failed == found_failed,
        "total_injections_failed",
        f"{failed}, but the table's n_failed sums to {found_failed}",
    )
    rate = meta.number("failure_rate_pct", lo=0.0, hi=100.0, optional=True)
    if rate is not None and total_ok + failed:
        expected = 100.0 * failed / (total_ok + failed)
        meta.check(
            abs(rate - expected) <= 0.01,
            "failure_rate_pct",
            f"{rate}, but total_injections_failed / all injections is {expected:.3f}%",
        )
    poisson = meta.boolean("add_poisson_noise")
    gain = meta.number("gain_e_per_nmgy", lo=0.0, nullable=True)
    if poisson and gain is None:
        raise meta.fail("gain_e_per_nmgy", "null although add_poisson_noise is true")
    return Grid(partition, table, dict(meta.mapping()), specs, poisson, gain, csv_file)


def _same_float(text: str, value: float) -> bool:
    try:
        return math.isclose(float(text), value, rel_tol=1e-9)
    except ValueError:
        return False


def _read_bright_arc(variant: str, file: str, data: bytes) -> BrightArcVariant:
    node = _parse_json(file, data)
    for name in ("timestamp_utc", "checkpoint", "arch", "device"):
        node.string(name, optional=True, nullable=True)
    node.integer("epoch", optional=True, nullable=True)
    if node.has("notes"):
        node.strings("notes")
    override = node.number("clip_range_override", lo=0.0, nullable=True, optional=True)
    preprocessing = node.child("preprocessing")
    preprocessing.string("mode")
    preprocessing.boolean("crop", optional=True)
    clip = preprocessing.number("clip_range", lo=0.0, nullable=True)
    config = node.child("phase1_config")
    for name in ("phase", "manifest", "host_split", "checkpoint", "device", "out_dir"):
        config.string(name, optional=True, nullable=True)
    config.boolean("resume", optional=True)
    config.boolean("add_sky_noise", optional=True)
    config.number("clip_range", lo=0.0, nullable=True, optional=True)
    n_hosts = config.integer("n_hosts", lo=1)
    theta_e = config.number("theta_e", lo=0.0)
    beta = config.numbers("beta_frac_range", length=2, nullable=True)
    if beta is not None and not 0.0 <= beta[0] < beta[1]:
        raise config.fail("beta_frac_range", f"{list(beta)} is not [lo, hi] with 0 <= lo < hi")
    poisson = config.boolean("add_poisson_noise")
    gain = config.number("gain_e_per_nmgy", lo=0.0, nullable=True)
    if poisson and gain is None:
        raise config.fail("gain_e_per_nmgy", "null although add_poisson_noise is true")
    seed = config.integer("seed")
    n_total = node.integer("n_total_injections")
    n_scored = node.integer("n_scored")
    n_failed = node.integer("n_failed")
    node.check(
        n_scored + n_failed == n_total,
        "n_total_injections",
        f"{n_total} != n_scored {n_scored} + n_failed {n_failed}",
    )
    labels = node.strings("magnitude_bins")
    node.check(len(labels) > 0, "magnitude_bins", "empty")
    by_bin = node.child("results_by_bin")
    extra = sorted(set(by_bin.mapping()) - set(labels))
    by_bin.check(not extra, extra[0] if extra else "", "bin not listed in magnitude_bins")
    bins = []
    for label in labels:
        lo, hi = _mag_bin(node, "magnitude_bins", label)
        entry = by_bin.child(label)
        name = entry.string("mag_bin", optional=True)
        entry.check(name in (None, label), "mag_bin", f"{name!r} under key {label!r}")
        n = entry.integer("n_scored")
        rate03 = entry.fraction("detection_rate_p03")
        rate05 = entry.fraction("detection_rate_p05")
        k03 = _whole(rate03 * n, entry, "detection_rate_p03", "rate x n_scored")
        k05 = _whole(rate05 * n, entry, "detection_rate_p05", "rate x n_scored")
        entry.check(
            k05 <= k03, "detection_rate_p05", "above detection_rate_p03 (p > 0.5 implies p > 0.3)"
        )
        median_score = entry.fraction("median_score", nullable=True, allow_nan=True)
        median_snr = entry.number("median_arc_snr", nullable=True, allow_nan=True)
        bins.append(BrightArcBin(label, lo, hi, n, k03, k05, median_score, median_snr))
    total = sum(b.n for b in bins)
    node.check(total == n_scored, "n_scored", f"{n_scored}, but the bins hold {total}")
    clip_range = override if override is not None else clip
    return BrightArcVariant(
        variant,
        tuple(bins),
        theta_e,
        n_hosts,
        seed,
        beta,
        poisson,
        gain,
        clip_range,
        n_total,
        n_scored,
        n_failed,
        file,
    )


def _read_mcnemar(file: str, data: bytes) -> PoissonPairs:
    node = _parse_json(file, data)
    per_bin_node = node.child("per_bin")
    per_bin = []
    for label in per_bin_node.mapping():
        entry = per_bin_node.child(label)
        _mag_bin(per_bin_node, label, label)
        n = entry.integer("n_paired")
        b = entry.integer("gained_b")
        c = entry.integer("lost_c")
        both = entry.integer("both_detected")
        neither = entry.integer("both_undetected")
        entry.check(
            b + c + both + neither == n,
            "n_paired",
            f"{n} != gained_b + lost_c + both_detected + both_undetected "
            f"({b + c + both + neither})",
        )
        base = entry.fraction("baseline_det_rate")
        pois = entry.fraction("poisson_det_rate")
        entry.check(
            n == 0 or abs(base - (both + c) / n) <= _RATE_TOLERANCE,
            "baseline_det_rate",
            f"{base} != (both_detected + lost_c) / n_paired = {(both + c) / max(n, 1)}",
        )
        entry.check(
            n == 0 or abs(pois - (both + b) / n) <= _RATE_TOLERANCE,
            "poisson_det_rate",
            f"{pois} != (both_detected + gained_b) / n_paired = {(both + b) / max(n, 1)}",
        )
        per_bin.append(
            PairedBin(
                label,
                n,
                b,
                c,
                both,
                neither,
                entry.number("mcnemar_chi2", lo=0.0),
                entry.fraction("mcnemar_p_chi2"),
                entry.fraction("mcnemar_p_exact"),
                base,
                pois,
            )
        )
    if not per_bin:
        raise per_bin_node.fail(None, "no bins")
    counts = {p.label: (p.b, p.c) for p in per_bin}
    pools = []
    for name in node.mapping():
        if not name.startswith("aggregate"):
            continue
        entry = node.child(name)
        bins = entry.strings("bins_included")
        entry.check(bool(bins), "bins_included", "empty")
        unknown = [b for b in bins if b not in counts]
        entry.check(not unknown, "bins_included", f"{unknown} are not in per_bin")
        b = entry.integer("total_gained")
        c = entry.integer("total_lost")
        sum_b = sum(counts[x][0] for x in bins)
        sum_c = sum(counts[x][1] for x in bins)
        entry.check(
            b == sum_b, "total_gained", f"{b}, but gained_b of {list(bins)} sums to {sum_b}"
        )
        entry.check(c == sum_c, "total_lost", f"{c}, but lost_c of {list(bins)} sums to {sum_c}")
        pools.append(
            PairedPool(
                name.removeprefix("aggregate_").removeprefix("aggregate") or "pooled",
                bins,
                b,
                c,
                entry.number("mcnemar_chi2", lo=0.0),
                entry.fraction("mcnemar_p_chi2"),
                entry.fraction("mcnemar_p_exact"),
            )
        )
    return PoissonPairs(tuple(per_bin), tuple(pools), file)


def _read_feature_space(file: str, data: bytes) -> FeatureSpace:
    node = _parse_json(file, data)
    node.string("timestamp_utc", optional=True, nullable=True)
    node.string("checkpoint", optional=True, nullable=True)
    for name in ("add_sky_noise", "add_poisson_noise"):
        node.boolean(name, optional=True)
    node.number("gain_e_per_nmgy", lo=0.0, nullable=True, optional=True)
    sizes = {
        "real_tier_a": node.integer("n_real_tier_a"),
        "inj_low_bf": node.integer("n_inj_low_bf"),
        "inj_high_bf": node.integer("n_inj_high_bf"),
        "negatives": node.integer("n_negatives"),
    }
    probe = node.child("linear_probe")
    task = probe.string("task")
    probe.string("interpretation", optional=True)
    per_layer_node = node.child("frechet_distance_per_layer")
    per_layer = {
        name: per_layer_node.number(name, lo=0.0, allow_nan=True, nullable=True)
        for name in per_layer_node.mapping()
    }
    overall_node = node.child("frechet_distance")
    overall = {
        name: overall_node.number(name, lo=0.0)
        for name in overall_node.mapping()
        if name != "interpretation"
    }
    medians_node = node.child("median_scores")
    medians = {name: medians_node.fraction(name) for name in medians_node.mapping()}
    return FeatureSpace(
        sizes,
        node.number("target_mag"),
        node.number("theta_e", lo=0.0),
        task,
        probe.fraction("cv_auc_mean"),
        probe.number("cv_auc_std", lo=0.0),
        per_layer,
        overall,
        medians,
        file,
    )


def _read_probe_significance(file: str, data: bytes) -> ProbeSignificance:
    node = _parse_json(file, data)
    folds = node.numbers("observed_auc_folds")
    for i, value in enumerate(folds):
        node.check(0.0 <= value <= 1.0, f"observed_auc_folds[{i}]", f"{value} not in [0, 1]")
    mean = node.fraction("observed_auc_mean")
    node.check(
        abs(mean - float(np.mean(folds))) <= 1e-9,
        "observed_auc_mean",
        f"{mean} is not the mean of observed_auc_folds ({float(np.mean(folds))})",
    )
    perm = node.child("permutation_test")
    n_perm = perm.integer("n_permutations", lo=1)
    n_exceeding = perm.integer("n_exceeding")
    perm.check(n_exceeding <= n_perm, "n_exceeding", f"{n_exceeding} > n_permutations {n_perm}")
    boot = node.child("bootstrap_ci")
    n_boot = boot.integer("n_bootstrap", lo=1)
    n_valid = boot.integer("n_valid")
    boot.check(n_valid <= n_boot, "n_valid", f"{n_valid} > n_bootstrap {n_boot}")
    lo, hi = boot.fraction("ci_95_lower"), boot.fraction("ci_95_upper")
    boot.check(lo <= hi, "ci_95_lower", f"{lo} above ci_95_upper {hi}")
    return ProbeSignificance(
        mean,
        node.number("observed_auc_std", lo=0.0),
        folds,
        n_perm,
        perm.fraction("p_value"),
        n_exceeding,
        perm.fraction("max_perm_auc"),
        perm.fraction("mean_perm_auc"),
        n_boot,
        n_valid,
        (lo, hi),
        boot.fraction("mean"),
        boot.number("std", lo=0.0),
        file,
    )


def _threshold_label(node: _Node, label: str) -> tuple[float, bool]:
    match = _THRESHOLD_LABEL.match(label)
    if not match:
        raise node.fail(label, "threshold label is not 'p><number>' or 'p><number> (FPR-derived)'")
    value = float(match.group(1))
    node.check(0.0 <= value <= 1.0, label, "threshold not in [0, 1]")
    return value, match.group(2) is not None


def _score_stats(node: _Node) -> dict[str, float]:
    return {name: node.fraction(name) for name in node.mapping()}


def _read_tier_a(file: str, data: bytes) -> TierAScoring:
    node = _parse_json(file, data)
    for name in ("timestamp_utc", "checkpoint", "manifest", "host_split", "arch", "device"):
        node.string(name, optional=True, nullable=True)
    node.integer("epoch", optional=True, nullable=True)
    node.integer("seed", optional=True, nullable=True)
    real = node.child("real_lens")
    negatives = node.child("negatives")
    tiers = node.child("recall_by_tier")
    tier_a = tiers.child("tier_A")
    n_total = real.integer("n_total")
    n_valid = real.integer("n_valid")
    n_errors = real.integer("n_errors")
    real.check(n_valid + n_errors == n_total, "n_total", f"{n_total} != n_valid + n_errors")
    tier_a.check(
        tier_a.integer("n_valid") == n_valid, "n_valid", f"differs from real_lens.n_valid {n_valid}"
    )
    tier_a.integer("n_total")
    neg_total = negatives.integer("n_total")
    neg_valid = negatives.integer("n_valid")
    neg_errors = negatives.integer("n_errors")
    negatives.check(
        neg_valid + neg_errors == neg_total, "n_total", f"{neg_total} != n_valid + n_errors"
    )
    recall_node = real.child("recall_at_thresholds")
    fpr_node = negatives.child("fpr_at_thresholds")
    recalls = []
    for label in recall_node.mapping():
        value, derived = _threshold_label(recall_node, label)
        rate = recall_node.fraction(label)
        entry = tier_a.child(label)
        k = entry.integer("n_detected")
        entry.check(k <= n_valid, "n_detected", f"{k} > n_valid {n_valid}")
        recall = entry.fraction("recall")
        entry.check(
            n_valid > 0 and abs(recall - k / n_valid) <= _RATE_TOLERANCE,
            "recall",
            f"{recall} != n_detected / n_valid",
        )
        recall_node.check(
            abs(rate - recall) <= _RATE_TOLERANCE,
            label,
            f"{rate} != recall_by_tier.tier_A recall {recall}",
        )
        ci = entry.numbers("ci_95", length=2, nullable=True) if entry.has("ci_95") else None
        if ci is not None:
            entry.check(
                0.0 <= ci[0] <= ci[1] <= 1.0, "ci_95", f"{list(ci)} is not 0 <= lo <= hi <= 1"
            )
        fpr = fpr_node.fraction(label, optional=True)
        if fpr is not None:
            _whole(fpr * neg_valid, fpr_node, label, "fpr x negatives.n_valid")
        spec = ThresholdSpec(fixed_label(value), value, None)
        recalls.append(RecallAt(label, value, derived, k, n_valid, ci, fpr, spec))
    if not recalls:
        raise recall_node.fail(None, "no thresholds")
    stats = {
        "real_tier_a": _score_stats(real.child("score_stats")),
        "negatives": _score_stats(negatives.child("score_stats")),
    }
    return TierAScoring(n_total, n_valid, n_errors, tuple(recalls), neg_valid, stats, file)


def _load_npz(file: str, data: bytes) -> dict[str, np.ndarray]:
    try:
        return decode_npz(data)
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise ResultsFormatError(file, "<npz>", f"not a readable .npz archive: {exc}") from exc


def _read_embeddings(file: str, data: bytes, sizes: Mapping[str, int] | None) -> ProbeEmbeddings:
    arrays = _load_npz(file, data)
    embeddings: dict[str, np.ndarray] = {}
    scores: dict[str, np.ndarray] = {}
    width = None
    for group in PROBE_GROUPS:
        if group not in arrays:
            raise ResultsFormatError(file, group, "array missing")
        values = arrays[group]
        if values.ndim != 2 or values.shape[0] == 0 or not np.issubdtype(values.dtype, np.floating):
            raise ResultsFormatError(
                file, group, f"expected a float (n, d) array, got {values.dtype} {values.shape}"
            )
        if width is not None and values.shape[1] != width:
            raise ResultsFormatError(file, group, f"width {values.shape[1]} differs from {width}")
        width = values.shape[1]
        if not np.all(np.isfinite(values)):
            raise ResultsFormatError(file, group, "non-finite values")
        if sizes is not None and sizes.get(group) not in (None, len(values)):
            raise ResultsFormatError(
                file,
                group,
                f"{len(values)} rows, but feature_space_results.json says {sizes[group]}",
            )
        embeddings[group] = values
        name = f"{group}_score"
        if name in arrays:
            score = np.asarray(arrays[name])
            if score.shape != (len(values),) or not np.all((score >= 0) & (score <= 1)):
                raise ResultsFormatError(file, name, f"expected {len(values)} scores in [0, 1]")
            scores[group] = score.astype(np.float64)
    mock = arrays.get("real_tier_a_is_mock")
    if mock is not None and (mock.dtype != bool or mock.shape != (len(embeddings["real_tier_a"]),)):
        raise ResultsFormatError(file, "real_tier_a_is_mock", "expected one bool per Tier-A row")
    return ProbeEmbeddings(embeddings, scores, mock, file)


def _read_tier_a_lenses(file: str, data: bytes) -> TierALenses:
    try:
        table = pd.read_parquet(io.BytesIO(data))
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise ResultsFormatError(file, "<parquet>", f"not a readable Parquet table: {exc}") from exc
    for column in ("object_id", "score"):
        if column not in table.columns:
            raise ResultsFormatError(file, column, "column missing")
    score = pd.to_numeric(table["score"], errors="coerce")
    bad = ~np.isfinite(score) | (score < 0) | (score > 1)
    if bad.any():
        raise ResultsFormatError(file, "score", f"row {_first_bad(bad)}: not a score in [0, 1]")
    if "source" in table.columns:
        unknown = sorted(set(table["source"].astype(str)) - {"real", "mock"})
        if unknown:
            raise ResultsFormatError(
                file, "source", f"values {unknown} are neither 'real' nor 'mock'"
            )
    return TierALenses(table.reset_index(drop=True), file)


def _read_cutouts(file: str, data: bytes) -> ComparisonCutouts:
    arrays = _load_npz(file, data)
    out: dict[str, Any] = {}
    for side in ("real", "injection"):
        images = arrays.get(f"{side}_images")
        if images is None:
            raise ResultsFormatError(file, f"{side}_images", "array missing")
        if images.ndim != 4 or images.shape[1] != 3 or not np.all(np.isfinite(images)):
            raise ResultsFormatError(
                file,
                f"{side}_images",
                f"expected finite (n, 3, H, W) grz cutouts, got {images.shape}",
            )
        n = len(images)
        for name in (f"{side}_ids", f"{side}_scores"):
            if name not in arrays or arrays[name].shape != (n,):
                raise ResultsFormatError(file, name, f"expected {n} entries")
        scores = arrays[f"{side}_scores"].astype(np.float64)
        if not np.all((scores >= 0) & (scores <= 1)):
            raise ResultsFormatError(file, f"{side}_scores", "not all in [0, 1]")
        out[f"{side}_images"] = images
        out[f"{side}_ids"] = tuple(str(x) for x in arrays[f"{side}_ids"])
        out[f"{side}_scores"] = scores
    mock = arrays.get("real_is_mock")
    if mock is None or mock.dtype != bool or mock.shape != (len(out["real_images"]),):
        raise ResultsFormatError(file, "real_is_mock", "expected one bool per real cutout")
    return ComparisonCutouts(
        out["real_images"],
        out["real_ids"],
        out["real_scores"],
        mock,
        out["injection_images"],
        out["injection_ids"],
        out["injection_scores"],
        file,
    )


# --------------------------------------------------------------------------------------------
# The directory
# --------------------------------------------------------------------------------------------


@dataclass
class _Reader:
    source: ResultsSource
    inputs: list[InputFile] = field(default_factory=list)
    missing: list[MissingInput] = field(default_factory=list)
    flat_hits: int = 0

    def get(
        self, kind: str, name: str | None, description: str, *, optional: bool = False
    ) -> tuple[str, bytes] | None:
        folder, filename = _KEYS[kind]
        folder = folder.format(name) if name is not None else folder
        nested, flat = f"{folder}/{filename}", f"{folder}_{filename}"
        for key in (nested, flat):
            try:
                data = self.source.read_bytes(key)
            except FileNotFoundError:
                continue
            uri = self.source.uri(key)
            self.inputs.append(InputFile(key, uri, len(data), sha256_bytes(data)))
            self.flat_hits += key == flat
            return uri, data
        self.missing.append(MissingInput(nested, description, optional))
        return None


def _discover(source: ResultsSource, prefix: str, filename: str) -> list[str]:
    lister: Callable[..., Sequence[str]] | None = getattr(source, "list_keys", None)
    if lister is None:
        return []
    found = []
    pattern = re.compile(rf"^{prefix}([A-Za-z0-9_.=-]+?)(?:/|_){re.escape(filename)}$")
    for key in lister():
        match = pattern.match(key)
        if match:
            found.append(match.group(1))
    return sorted(set(found))


def _as_source(location: str | os.PathLike[str] | ResultsSource) -> ResultsSource:
    if isinstance(location, str | os.PathLike):
        text = os.fspath(location)
        if "://" in text:
            raise ValueError(
                f"{text!r}: pass a local directory or a ResultsSource (an object store opened "
                "for the URI) to read_d06_results"
            )
        return DirectorySource(text)
    if not isinstance(location, ResultsSource):
        raise TypeError(f"not a results directory or source: {location!r}")
    return location


def _location(source: ResultsSource) -> str:
    """The directory or URI the keys of ``source`` are relative to."""
    location = getattr(source, "location", None)
    if isinstance(location, str):
        return location
    probe = "tier_a_scoring"
    uri = source.uri(probe)
    return uri[: -len(probe)].rstrip("/") if uri.endswith(probe) else uri


def read_d06_results(location: str | os.PathLike[str] | ResultsSource) -> D06Results:
    """Read every file of a D06 results directory (module docstring) into :class:`D06Results`.

    Raises:
        FileNotFoundError: a local directory that does not exist.
        ResultsFormatError: a present file that is malformed (names the file and field).
    """
    source = _as_source(location)
    reader = _Reader(source)
    grids: dict[str, Grid] = {}
    partitions = list(
        dict.fromkeys([*GRID_PARTITIONS, *_discover(source, "grid_", "selection_function.csv")])
    )
    for partition in partitions:
        csv = reader.get("grid", partition, f"completeness grid {partition} (table)")
        meta = reader.get("grid_meta", partition, f"completeness grid {partition} (metadata)")
        if csv is not None and meta is not None:
            grids[partition] = _read_grid(partition, csv[0], csv[1], meta[0], meta[1])
        elif csv is not None or meta is not None:
            present = csv or meta
            raise ResultsFormatError(
                present[0],
                "<file>",
                "the grid's table and metadata come together: the other file is missing",
            )
    variants = list(
        dict.fromkeys([*BRIGHT_ARC_VARIANTS, *_discover(source, "ba_", "bright_arc_results.json")])
    )
    bright_arcs = {}
    for variant in variants:
        found = reader.get("bright_arc", variant, f"bright arcs, variant {variant}")
        if found is not None:
            bright_arcs[variant] = _read_bright_arc(variant, *found)
    found = reader.get("mcnemar", None, "Poisson vs baseline paired bright-arc counts (McNemar)")
    pairs = _read_mcnemar(*found) if found else None
    found = reader.get("feature_space", None, "linear probe and feature-space distances")
    feature_space = _read_feature_space(*found) if found else None
    found = reader.get("probe_significance", None, "linear probe permutation test and bootstrap")
    significance = _read_probe_significance(*found) if found else None
    found = reader.get("tier_a", None, "real-lens (Tier-A) scoring")
    tier_a = _read_tier_a(*found) if found else None
    found = reader.get(
        "embeddings",
        None,
        "per-object probe embeddings and scores (not in the published files)",
        optional=True,
    )
    sizes = feature_space.group_sizes if feature_space else None
    embeddings = _read_embeddings(found[0], found[1], sizes) if found else None
    found = reader.get(
        "tier_a_lenses", None, "per-lens Tier-A scores (not in the published files)", optional=True
    )
    lenses = _read_tier_a_lenses(*found) if found else None
    found = reader.get(
        "cutouts",
        None,
        "real and injected cutouts for the comparison figure (not in the published files)",
        optional=True,
    )
    cutouts = _read_cutouts(*found) if found else None
    if tier_a is not None:
        tier_a = _canonical_tier_a(tier_a, grids)
    return D06Results(
        _location(source),
        grids,
        bright_arcs,
        pairs,
        feature_space,
        significance,
        tier_a,
        embeddings,
        lenses,
        cutouts,
        tuple(reader.inputs),
        tuple(reader.missing),
        "flat" if reader.flat_hits and reader.flat_hits == len(reader.inputs) else "nested",
    )


def _canonical_tier_a(tier_a: TierAScoring, grids: Mapping[str, Grid]) -> TierAScoring:
    """Name FPR-derived Tier-A thresholds by their FPR target (``FPR=1e-3``) using a grid's
    FPR-derived thresholds; the file prints them rounded (``p>0.806 (FPR-derived)``)."""
    fpr_specs = [s for g in grids.values() for s in g.thresholds if s.fpr_target is not None]
    out = []
    for recall in tier_a.recall:
        spec = recall.spec
        if recall.fpr_derived:
            decimals = len(recall.label.split(">")[1].split()[0].split(".")[-1])
            match = next(
                (
                    s
                    for s in fpr_specs
                    if math.isclose(round(s.value, decimals), recall.threshold, abs_tol=1e-12)
                ),
                None,
            )
            if match is not None:
                spec = match
        out.append(
            RecallAt(
                recall.label,
                recall.threshold,
                recall.fpr_derived,
                recall.k,
                recall.n,
                recall.ci95,
                recall.fpr_negatives,
                spec,
            )
        )
    return TierAScoring(
        tier_a.n_total,
        tier_a.n_valid,
        tier_a.n_errors,
        tuple(out),
        tier_a.n_negatives,
        tier_a.score_stats,
        tier_a.uri,
    )
