"""The paper's numbers from a :class:`~.d06_results.D06Results`: ``summary.json`` and friends.

Everything here is recomputed from counts, not copied from the files' derived fields:

* marginal completeness (by threshold, by theta_E, by source and by lensed magnitude) is
  ``k / n`` with ``k`` and ``n`` summed over the grid's cells (``n_detected``, ``n_injections``
  of the ``selection_function.csv`` rows), with a Wilson 95% interval
  (:func:`~stronglens_assets.science.stats.intervals.wilson_interval`, astropy's to 1e-12);
  marginals by theta_E and magnitude are at
  :data:`MARGINAL_THRESHOLD`;
* bright-arc rates are ``k / n`` per bin with ``k = rate x n`` from the file;
* McNemar's tests are recomputed from the paired counts ``b``, ``c``
  (:mod:`stronglens_assets.science.stats.mcnemar`);
* Tier-A recall is ``n_detected / n_valid`` with a Wilson 95% interval.

:func:`build_summary` gives ``summary.json``; :func:`consistency_checks` compares what the files
state with what their counts give (a published number recomputed from its published inputs);
:func:`compare_summaries` lines up a reference (e.g. the published directory) and a run.
Numbers are fractions, intervals ``[lo, hi]``; threshold labels ``p>0.3``, ``p>0.5``, ``p>0.7``,
``FPR=1e-3``, ``FPR=1e-4``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from stronglens_assets.science.reporting.d06_results import (
    BrightArcVariant,
    D06Results,
    Grid,
    PoissonPairs,
    ThresholdSpec,
)
from stronglens_assets.science.stats.binomial import jeffreys_interval
from stronglens_assets.science.stats.intervals import wilson_interval
from stronglens_assets.science.stats.mcnemar import McNemarResult, mcnemar_test, pooled_mcnemar

__all__ = [
    "CANONICAL_THRESHOLDS",
    "INTERVAL_CONFIDENCE",
    "MARGINAL_THRESHOLD",
    "Check",
    "ComparisonRow",
    "McNemarRow",
    "Rate",
    "bright_arc_table_rows",
    "build_summary",
    "compare_summaries",
    "completeness_by_axis",
    "completeness_by_magnitude",
    "completeness_by_threshold",
    "consistency_checks",
    "mcnemar_rows",
    "missed_tier_a",
    "ordered_thresholds",
    "tier_a_recall",
]

CANONICAL_THRESHOLDS: tuple[str, ...] = ("p>0.3", "p>0.5", "p>0.7", "FPR=1e-3", "FPR=1e-4")
MARGINAL_THRESHOLD = "p>0.3"
"""Threshold of the marginal completeness tables and figures (the paper's headline)."""
INTERVAL_CONFIDENCE = 0.95


@dataclass(frozen=True)
class Rate:
    """``k`` of ``n``, with its fraction and Wilson interval at :data:`INTERVAL_CONFIDENCE`."""

    k: int
    n: int

    @property
    def rate(self) -> float:
        return self.k / self.n if self.n else math.nan

    @property
    def wilson95(self) -> tuple[float, float]:
        return wilson_interval(self.k, self.n, INTERVAL_CONFIDENCE)

    def as_dict(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "n": self.n,
            "rate": _finite(self.rate),
            "wilson95": [_finite(v) for v in self.wilson95],
        }


def _finite(value: float | None) -> float | None:
    """JSON has no NaN: ``None`` for a missing or non-finite number."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def ordered_thresholds(specs: Iterable[ThresholdSpec]) -> list[ThresholdSpec]:
    """Canonical thresholds first, in :data:`CANONICAL_THRESHOLDS` order, then any others."""
    specs = list(specs)
    rank = {label: i for i, label in enumerate(CANONICAL_THRESHOLDS)}
    return sorted(specs, key=lambda s: (rank.get(s.label, len(rank)), s.value))


def _sum(rows: Any) -> Rate:
    return Rate(int(rows["n_detected"].sum()), int(rows["n_injections"].sum()))


def completeness_by_threshold(grid: Grid) -> dict[str, Rate]:
    """Completeness of the whole grid at each threshold (all source magnitudes)."""
    return {s.label: _sum(grid.rows(s)) for s in ordered_thresholds(grid.thresholds)}


def completeness_by_axis(
    grid: Grid, axis: str = "theta_e", threshold: str = MARGINAL_THRESHOLD
) -> dict[float, Rate]:
    """Completeness per value of a grid axis (``theta_e`` arcsec, ``psf_fwhm`` arcsec,
    ``depth_5sig`` AB mag), summed over the other axes, at ``threshold``."""
    rows = grid.rows(grid.threshold(threshold))
    grouped = rows.groupby(axis, sort=True)[["n_detected", "n_injections"]].sum()
    return {
        float(value): Rate(int(r.n_detected), int(r.n_injections))
        for value, r in grouped.iterrows()
    }


def _bin_edges(label: str) -> tuple[float, float]:
    lo, hi = label.split("-")
    return float(lo), float(hi)


def completeness_by_magnitude(
    grid: Grid, kind: str = "lensed", threshold: str = MARGINAL_THRESHOLD
) -> dict[str, Rate]:
    """Completeness per magnitude bin: ``kind="lensed"`` the image-plane (lensed) r magnitude
    bins (``lensed_20-22``), ``"source"`` the unlensed source r magnitude bins (``23-24``).
    Keys are the bins without prefix (``20-22``), ordered by lower edge."""
    spec = grid.threshold(threshold)
    out = {}
    bins = [b for b in grid.source_mag_bins if b != "all"]
    if kind == "lensed":
        bins = [b.removeprefix("lensed_") for b in bins if b.startswith("lensed_")]
        prefix = "lensed_"
    elif kind == "source":
        bins = [b for b in bins if not b.startswith("lensed_")]
        prefix = ""
    else:
        raise ValueError(f"kind must be 'lensed' or 'source', got {kind!r}")
    for label in sorted(bins, key=_bin_edges):
        out[label] = _sum(grid.rows(spec, prefix + label))
    return out


def bright_arc_table_rows(variant: BrightArcVariant) -> dict[str, dict[str, Any]]:
    """Per magnitude bin: ``n``, rates at p > 0.3 and 0.5, ``k_p03``, its Wilson 95%
    interval, median score and median arc S/N."""
    out = {}
    for b in variant.bins:
        rate03 = Rate(b.k_p03, b.n)
        out[b.mag_bin] = {
            "n": b.n,
            "rate_p03": _finite(b.rate_p03),
            "rate_p05": _finite(b.rate_p05),
            "median_score": _finite(b.median_score),
            "k_p03": b.k_p03,
            "k_p05": b.k_p05,
            "wilson95_p03": [_finite(v) for v in rate03.wilson95],
            "median_arc_snr": _finite(b.median_arc_snr),
        }
    return out


@dataclass(frozen=True)
class McNemarRow:
    """One McNemar test recomputed from ``b``, ``c``; ``bins`` it pools (one for a bin);
    ``published`` the file's ``(chi2, p_chi2, p_exact)``."""

    label: str
    bins: tuple[str, ...]
    result: McNemarResult
    published: tuple[float, float, float]
    baseline_rate: float | None = None
    poisson_rate: float | None = None
    n_paired: int | None = None


def mcnemar_rows(pairs: PoissonPairs) -> list[McNemarRow]:
    """Per-bin tests, then the pooled ones (named ``pooled`` for the file's first aggregate,
    ``pooled_<name>`` for the others, e.g. ``pooled_all``)."""
    rows = [
        McNemarRow(
            p.label,
            (p.label,),
            mcnemar_test(p.b, p.c),
            (p.chi2, p.p_chi2, p.p_exact),
            p.baseline_rate,
            p.poisson_rate,
            p.n_paired,
        )
        for p in pairs.per_bin
    ]
    counts = {p.label: (p.b, p.c) for p in pairs.per_bin}
    for i, pool in enumerate(pairs.pools):
        label = "pooled" if i == 0 else f"pooled_{pool.name}"
        result = pooled_mcnemar(counts[b] for b in pool.bins)
        rows.append(McNemarRow(label, pool.bins, result, (pool.chi2, pool.p_chi2, pool.p_exact)))
    return rows


def tier_a_recall(results: D06Results) -> dict[str, dict[str, Any]]:
    """Tier-A recall per threshold: ``k``, ``n``, ``rate``, ``wilson95``, plus the threshold
    value, the Jeffreys 95% interval (the published files' ``ci_95`` convention) and the
    false-positive rate of the file's negatives at the same threshold."""
    out = {}
    tier_a = results.tier_a
    if tier_a is None:
        return out
    for recall in sorted(
        tier_a.recall,
        key=lambda r: (
            CANONICAL_THRESHOLDS.index(r.spec.label)
            if r.spec.label in CANONICAL_THRESHOLDS
            else len(CANONICAL_THRESHOLDS),
            r.threshold,
        ),
    ):
        rate = Rate(recall.k, recall.n)
        low, high = jeffreys_interval(recall.k, recall.n, INTERVAL_CONFIDENCE)
        entry = rate.as_dict()
        entry["threshold"] = recall.spec.value
        entry["jeffreys95"] = [_finite(float(low)), _finite(float(high))]
        entry["fpr_negatives"] = _finite(recall.fpr_negatives)
        entry["n_negatives"] = tier_a.n_negatives
        out[recall.spec.label] = entry
    return out


def missed_tier_a(results: D06Results, threshold: float = 0.3) -> list[dict[str, Any]]:
    """Tier-A lenses with ``p <= threshold`` from the per-lens table (empty without it),
    lowest score first."""
    if results.tier_a_lenses is None:
        return []
    table = results.tier_a_lenses.table
    missed = table[table["score"] <= threshold].sort_values(["score", "object_id"], kind="stable")
    columns = [
        c for c in ("object_id", "score", "source", "ra", "dec", "mag_r", "z_lens") if c in table
    ]
    rows = []
    for record in missed[columns].to_dict("records"):
        rows.append(
            {
                key: (_finite(float(v)) if isinstance(v, int | float | np.number) else str(v))
                for key, v in record.items()
            }
        )
    return rows


def _probe(results: D06Results) -> dict[str, Any]:
    out: dict[str, Any] = {}
    fs = results.feature_space
    if fs is not None:
        out.update(
            {
                "task": fs.task,
                "theta_e": fs.theta_e,
                "target_mag": fs.target_mag,
                "group_sizes": dict(fs.group_sizes),
                "cv_auc_mean": fs.cv_auc_mean,
                "cv_auc_std": fs.cv_auc_std,
                "frechet": dict(fs.frechet),
                "frechet_per_layer": {k: _finite(v) for k, v in fs.frechet_per_layer.items()},
                "median_scores": dict(fs.median_scores),
            }
        )
    sig = results.probe_significance
    if sig is not None:
        out.update(
            {
                "auc_mean": sig.auc_mean,
                "auc_std": sig.auc_std,
                "auc_folds": list(sig.auc_folds),
                "n_permutations": sig.n_permutations,
                "permutation_p": sig.permutation_p,
                "n_exceeding": sig.n_exceeding,
                "max_perm_auc": sig.max_perm_auc,
                "mean_perm_auc": sig.mean_perm_auc,
                "n_bootstrap": sig.n_bootstrap,
                "bootstrap_ci95": list(sig.bootstrap_ci95),
            }
        )
    return out


def build_summary(results: D06Results) -> dict[str, Any]:
    """``summary.json`` (schema in the module docstring of :mod:`.paper_outputs`)."""
    grids = results.grids
    summary: dict[str, Any] = {
        "completeness": {
            name: {label: r.as_dict() for label, r in completeness_by_threshold(g).items()}
            for name, g in grids.items()
        },
        "completeness_by_theta_e": {
            name: {f"{v:.2f}": r.as_dict() for v, r in completeness_by_axis(g).items()}
            for name, g in grids.items()
        },
        "completeness_by_lensed_mag": {
            name: {b: r.as_dict() for b, r in completeness_by_magnitude(g, "lensed").items()}
            for name, g in grids.items()
        },
        "completeness_by_source_mag": {
            name: {b: r.as_dict() for b, r in completeness_by_magnitude(g, "source").items()}
            for name, g in grids.items()
        },
        "bright_arc": {v: bright_arc_table_rows(ba) for v, ba in results.bright_arcs.items()},
        "mcnemar": {},
        "tier_a_recall": tier_a_recall(results),
        "probe": _probe(results),
    }
    if "no_poisson" in grids and "poisson" in grids:
        base = completeness_by_threshold(grids["no_poisson"])
        noisy = completeness_by_threshold(grids["poisson"])
        summary["completeness_deficit"] = {
            label: {
                "absolute": base[label].rate - noisy[label].rate,
                "relative": _finite((base[label].rate - noisy[label].rate) / base[label].rate)
                if base[label].k
                else None,
            }
            for label in base
            if label in noisy
        }
    if results.poisson_pairs is not None:
        for row in mcnemar_rows(results.poisson_pairs):
            entry = {
                "b": row.result.b,
                "c": row.result.c,
                "chi2": row.result.chi2,
                "p_chi2": row.result.p_chi2,
                "p_exact": row.result.p_exact,
            }
            if len(row.bins) > 1 or row.label.startswith("pooled"):
                entry["bins"] = list(row.bins)
            summary["mcnemar"][row.label] = entry
    if results.tier_a is not None:
        p03 = next((r for r in results.tier_a.recall if r.spec.label == "p>0.3"), None)
        if p03 is not None:
            summary["missed_tier_a"] = {
                "threshold": "p>0.3",
                "n_missed": p03.n - p03.k,
                "lenses": missed_tier_a(results, p03.threshold),
            }
    summary["conventions"] = {
        "detection": "p > threshold (strict)",
        "rates": "fractions",
        "intervals": "Wilson 95% [lo, hi] (astropy binom_conf_interval) unless named otherwise",
        "marginal_threshold": MARGINAL_THRESHOLD,
        "theta_e_unit": "arcsec",
        "magnitudes": "AB; lensed = image-plane r magnitude of the arc, source = unlensed r",
        "mcnemar": "b = detected only with Poisson noise, c = only without; chi2 with continuity "
        "correction (|b-c|-1)^2/(b+c), exact = two-sided binomial on b of b+c at 1/2",
    }
    return summary


# --------------------------------------------------------------------------------------------
# Published numbers recomputed from their inputs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """A number a file states against the same number recomputed from the file's counts."""

    name: str
    file: str
    stated: float | str
    recomputed: float | str
    ok: bool
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        def plain(value: Any) -> Any:
            return value.item() if isinstance(value, np.generic) else value

        return {
            "name": self.name,
            "file": self.file,
            "stated": plain(self.stated),
            "recomputed": plain(self.recomputed),
            "ok": self.ok,
            "note": self.note,
        }


def _close(a: float, b: float, rel: float = 1e-6, abs_: float = 1e-12) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=abs_)


def _grid_checks(grid: Grid) -> list[Check]:
    table = grid.table
    present = table[table["n_injections"] > 0]
    checks = []
    for level, lo, hi in ((0.68, "ci68_lo", "ci68_hi"), (0.95, "ci95_lo", "ci95_hi")):
        low, high = jeffreys_interval(
            present["n_detected"].to_numpy(), present["n_injections"].to_numpy(), level
        )
        stated_low, stated_high = present[lo].to_numpy(), present[hi].to_numpy()
        diff = float(
            max(
                np.max(np.abs(low - stated_low), initial=0.0),
                np.max(np.abs(high - stated_high), initial=0.0),
            )
        )
        checks.append(
            Check(
                f"grid {grid.partition}: per-cell {int(level * 100)}% intervals are Jeffreys "
                "equal-tailed (Beta(k+1/2, n-k+1/2) quantiles)",
                grid.uri,
                f"{lo}, {hi} of {len(present)} rows",
                f"max |difference| {diff:.2e}",
                diff <= 1e-9,
            )
        )
    return checks


def _mcnemar_checks(pairs: PoissonPairs) -> list[Check]:
    checks = []
    for row in mcnemar_rows(pairs):
        chi2, p_chi2, p_exact = row.published
        ok = (
            abs(chi2 - row.result.chi2) <= 5e-5  # the file rounds chi2 to 4 decimals
            and _close(p_chi2, row.result.p_chi2)
            and _close(p_exact, row.result.p_exact)
        )
        checks.append(
            Check(
                f"McNemar {row.label} (b = {row.result.b}, c = {row.result.c}): chi2, p_chi2, "
                "p_exact recomputed",
                pairs.uri,
                f"{chi2:.4f}, {p_chi2:.6g}, {p_exact:.6g}",
                f"{row.result.chi2:.4f}, {row.result.p_chi2:.6g}, {row.result.p_exact:.6g}",
                ok,
            )
        )
    return checks


def consistency_checks(results: D06Results) -> list[Check]:
    """Every published derived number recomputed from the published counts (see module)."""
    checks: list[Check] = []
    for grid in results.grids.values():
        checks.extend(_grid_checks(grid))
    if results.poisson_pairs is not None:
        checks.extend(_mcnemar_checks(results.poisson_pairs))
        by_bin = {p.label: p for p in results.poisson_pairs.per_bin}
        for variant, field in (("baseline", "baseline_rate"), ("poisson", "poisson_rate")):
            arcs = results.bright_arcs.get(variant)
            if arcs is None:
                continue
            for b in arcs.bins:
                pair = by_bin.get(b.mag_bin)
                if pair is None:
                    continue
                stated = getattr(pair, field)
                checks.append(
                    Check(
                        f"bright arcs {variant} {b.mag_bin}: p > 0.3 rate equals the paired "
                        f"table's {field}",
                        arcs.uri,
                        stated,
                        b.rate_p03,
                        _close(stated, b.rate_p03, abs_=1e-9),
                    )
                )
    if results.tier_a is not None:
        for recall in results.tier_a.recall:
            if recall.ci95 is None:
                continue
            wilson = wilson_interval(recall.k, recall.n, INTERVAL_CONFIDENCE)
            low, high = jeffreys_interval(recall.k, recall.n, INTERVAL_CONFIDENCE)
            is_wilson = all(
                _close(a, b, abs_=1e-9) for a, b in zip(recall.ci95, wilson, strict=True)
            )
            is_jeffreys = _close(recall.ci95[0], float(low), abs_=1e-9) and _close(
                recall.ci95[1], float(high), abs_=1e-9
            )
            kind = "Wilson" if is_wilson else "Jeffreys equal-tailed" if is_jeffreys else "neither"
            checks.append(
                Check(
                    f"Tier-A {recall.label} ({recall.k}/{recall.n}): ci_95 is a 95% interval "
                    "of a known kind",
                    results.tier_a.uri,
                    f"[{recall.ci95[0]:.4f}, {recall.ci95[1]:.4f}]",
                    f"Wilson [{wilson[0]:.4f}, {wilson[1]:.4f}], Jeffreys [{float(low):.4f}, "
                    f"{float(high):.4f}]: {kind}",
                    is_wilson or is_jeffreys,
                    "" if is_wilson else "the tables quote Wilson 95% as well",
                )
            )
    sig = results.probe_significance
    if sig is not None:
        p = (sig.n_exceeding + 1) / (sig.n_permutations + 1)
        checks.append(
            Check(
                "probe permutation p = (n_exceeding + 1) / (n_permutations + 1)",
                sig.uri,
                sig.permutation_p,
                p,
                _close(p, sig.permutation_p),
            )
        )
        std = float(np.std(sig.auc_folds))
        checks.append(
            Check(
                "probe observed_auc_std is the population standard deviation of the folds",
                sig.uri,
                sig.auc_std,
                std,
                _close(std, sig.auc_std, abs_=1e-9),
            )
        )
    emb = results.embeddings
    if emb is not None and results.feature_space is not None:
        for group, scores in emb.scores.items():
            stated = results.feature_space.median_scores.get(group)
            if stated is None:
                continue
            median = float(np.median(scores))
            checks.append(
                Check(
                    f"median score of {group} from the per-object scores",
                    emb.uri,
                    stated,
                    median,
                    _close(stated, median, rel=1e-5, abs_=1e-9),
                )
            )
    lenses = results.tier_a_lenses
    if lenses is not None and results.tier_a is not None:
        scores = lenses.table["score"].to_numpy(np.float64)
        for recall in results.tier_a.recall:
            k = int(np.count_nonzero(scores > recall.spec.value))
            checks.append(
                Check(
                    f"Tier-A detections at {recall.spec.label} from the per-lens scores",
                    lenses.uri,
                    recall.k,
                    k,
                    k == recall.k and len(scores) == recall.n,
                    f"{len(scores)} lenses in the table, {recall.n} in the summary",
                )
            )
    return checks


# --------------------------------------------------------------------------------------------
# Reference vs run
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ComparisonRow:
    """One headline number in a reference summary and in a run's summary.

    ``reference``/``run`` are rates (fractions) or statistics; intervals are Wilson 95% for
    rates (``None`` for statistics). ``overlap`` says whether the two intervals overlap."""

    section: str
    quantity: str
    reference: float | None
    reference_interval: tuple[float, float] | None
    run: float | None
    run_interval: tuple[float, float] | None

    @property
    def difference(self) -> float | None:
        if self.reference is None or self.run is None:
            return None
        return self.run - self.reference

    @property
    def overlap(self) -> bool | None:
        a, b = self.reference_interval, self.run_interval
        if a is None or b is None or None in a or None in b:
            return None
        return a[0] <= b[1] and b[0] <= a[1]

    def as_dict(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "quantity": self.quantity,
            "reference": self.reference,
            "reference_interval": list(self.reference_interval)
            if self.reference_interval
            else None,
            "run": self.run,
            "run_interval": list(self.run_interval) if self.run_interval else None,
            "difference": self.difference,
            "intervals_overlap": self.overlap,
        }


def _rate_entry(entry: Mapping[str, Any] | None) -> tuple[float | None, tuple[float, float] | None]:
    if not entry:
        return None, None
    interval = entry.get("wilson95")
    return entry.get("rate"), (tuple(interval) if interval else None)


def compare_summaries(reference: Mapping[str, Any], run: Mapping[str, Any]) -> list[ComparisonRow]:
    """Headline numbers of two ``summary.json`` mappings side by side: completeness per grid
    and threshold, by theta_E and by lensed magnitude; bright-arc rates at p > 0.3 per variant
    and bin; Tier-A recall; McNemar p-values; probe AUC and bootstrap interval. A number
    present in only one summary appears with ``None`` on the other side."""
    rows: list[ComparisonRow] = []

    def nested(name: str, section: str, fmt: Any) -> None:
        ref_part, run_part = reference.get(name, {}), run.get(name, {})
        for group in list(dict.fromkeys([*ref_part, *run_part])):
            a, b = ref_part.get(group, {}), run_part.get(group, {})
            for key in list(dict.fromkeys([*a, *b])):
                ref_value, ref_interval = _rate_entry(a.get(key))
                run_value, run_interval = _rate_entry(b.get(key))
                rows.append(
                    ComparisonRow(
                        section, fmt(group, key), ref_value, ref_interval, run_value, run_interval
                    )
                )

    nested("completeness", "completeness", lambda g, k: f"{g}, {k}")
    nested(
        "completeness_by_theta_e",
        "completeness by theta_E (p>0.3)",
        lambda g, k: f'{g}, theta_E = {k}"',
    )
    nested(
        "completeness_by_lensed_mag",
        "completeness by lensed mag (p>0.3)",
        lambda g, k: f"{g}, lensed {k}",
    )
    ref_ba, run_ba = reference.get("bright_arc", {}), run.get("bright_arc", {})
    for variant in list(dict.fromkeys([*ref_ba, *run_ba])):
        a, b = ref_ba.get(variant, {}), run_ba.get(variant, {})
        for mag_bin in list(dict.fromkeys([*a, *b])):
            x, y = a.get(mag_bin), b.get(mag_bin)
            rows.append(
                ComparisonRow(
                    "bright arcs (p>0.3)",
                    f"{variant}, {mag_bin}",
                    x.get("rate_p03") if x else None,
                    tuple(x["wilson95_p03"]) if x and x.get("wilson95_p03") else None,
                    y.get("rate_p03") if y else None,
                    tuple(y["wilson95_p03"]) if y and y.get("wilson95_p03") else None,
                )
            )
    ref_t, run_t = reference.get("tier_a_recall", {}), run.get("tier_a_recall", {})
    for label in list(dict.fromkeys([*ref_t, *run_t])):
        ref_value, ref_interval = _rate_entry(ref_t.get(label))
        run_value, run_interval = _rate_entry(run_t.get(label))
        rows.append(
            ComparisonRow("Tier-A recall", label, ref_value, ref_interval, run_value, run_interval)
        )
    ref_m, run_m = reference.get("mcnemar", {}), run.get("mcnemar", {})
    for label in list(dict.fromkeys([*ref_m, *run_m])):
        a, b = ref_m.get(label), run_m.get(label)
        rows.append(
            ComparisonRow(
                "McNemar exact p",
                label,
                a.get("p_exact") if a else None,
                None,
                b.get("p_exact") if b else None,
                None,
            )
        )
    ref_p, run_p = reference.get("probe", {}), run.get("probe", {})
    for key, name in (
        ("cv_auc_mean", "CV AUC (feature space)"),
        ("auc_mean", "CV AUC (permutation run)"),
    ):
        if key in ref_p or key in run_p:
            interval_key = "bootstrap_ci95" if key == "auc_mean" else None
            rows.append(
                ComparisonRow(
                    "linear probe",
                    name,
                    ref_p.get(key),
                    tuple(ref_p[interval_key])
                    if interval_key and ref_p.get(interval_key)
                    else None,
                    run_p.get(key),
                    tuple(run_p[interval_key])
                    if interval_key and run_p.get(interval_key)
                    else None,
                )
            )
    return rows
