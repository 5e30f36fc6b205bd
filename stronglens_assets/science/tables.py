"""LaTeX tables of the paper from the D06 and evaluation results (no Dagster).

Every function takes plain data and returns the text of one ``table`` environment (booktabs
rules, a caption and a ``\\label``), ready for ``\\input`` in ``paper/main.tex``:

* :func:`completeness_summary_table`: overall completeness per grid and score threshold
  (paper Tables 3 and 4: the no-Poisson and the Poisson grid);
* :func:`marginal_completeness_table`: completeness marginalised on one grid axis;
* :func:`bright_arc_table`: detection rates of the bright-arc variants (Table 6);
* :func:`linear_probe_table`: linear-probe AUCs and Fréchet distances (Table 5);
* :func:`calibration_table`: ECE and MCE overall and per stratum.

Fractions are printed in per cent with their Wilson 68.27% interval
(:func:`stronglens_assets.science.stats.intervals.wilson_interval`). Text from the inputs is escaped
for LaTeX (:func:`latex_escape`). The output is deterministic for the same inputs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from stronglens_assets.science.core.columns import require_columns
from stronglens_assets.science.stats.intervals import wilson_interval

__all__ = [
    "ProbeRow",
    "bright_arc_table",
    "calibration_strata",
    "calibration_table",
    "completeness_summary_table",
    "latex_escape",
    "linear_probe_table",
    "marginal_completeness_table",
    "probe_rows",
    "threshold_rows",
]

_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def latex_escape(text: object) -> str:
    """``str(text)`` with LaTeX's special characters escaped."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def _percent_with_interval(k: int, n: int, digits: int = 2) -> str:
    if n == 0:
        return "--"
    low, high = wilson_interval(np.array([k]), np.array([n]))
    return (
        f"{100 * k / n:.{digits}f} "
        f"[{100 * float(low[0]):.{digits}f}, {100 * float(high[0]):.{digits}f}]"
    )


def _table(caption: str, label: str, columns: str, header: str, body: Sequence[str]) -> str:
    lines = [
        r"\begin{table}[htbp]",
        r"\centering",
        r"\small",
        f"\\caption{{{caption}}}",
        f"\\label{{{label}}}",
        f"\\begin{{tabular}}{{{columns}}}",
        r"\toprule",
        header + r" \\",
        r"\midrule",
        *[row + r" \\" for row in body],
        r"\bottomrule",
        r"\end{tabular}",
        r"\end{table}",
    ]
    return "\n".join(lines) + "\n"


def _require(table: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    require_columns(table.columns, columns, what)
    if table.empty:
        raise ValueError(f"{what} has no rows")


def completeness_summary_table(rows: pd.DataFrame, *, label: str = "tab:completeness") -> str:
    """Overall completeness: one row per (``grid``, ``threshold``) with ``k`` of ``n``.

    Args:
        rows: columns ``grid`` (e.g. ``no_poisson``), ``threshold`` (p(lens) cut), ``k``
            detections with score > threshold, ``n`` injections.
    """
    _require(rows, ("grid", "threshold", "k", "n"), "completeness summary")
    body = []
    for row in rows.sort_values(["grid", "threshold"], kind="stable").itertuples(index=False):
        k, n = int(row.k), int(row.n)
        body.append(
            f"{latex_escape(row.grid)} & $p > {float(row.threshold):g}$ & {k:,} & {n:,} & "
            f"{_percent_with_interval(k, n)}"
        )
    return _table(
        "Injection-recovery completeness of the D06 grids: detections $k$ of $n$ injections "
        "with CNN score above the threshold, in per cent with the Wilson 68.27\\% interval.",
        label,
        "llrrl",
        r"grid & threshold & $k$ & $n$ & completeness (\%)",
        body,
    )


_AXIS_LABELS = {
    "theta_e": r"$\theta_E$ (arcsec)",
    "source_mag": r"$m_{\rm src}$ (AB mag)",
    "beta_frac": r"$\beta_{\rm frac}$",
    "n_sersic": r"$n_{\rm S\'ersic}$",
    "r_eff": r"$R_{\rm eff}$ (arcsec)",
    "axis_ratio": r"$q$",
}


def marginal_completeness_table(
    grids: Mapping[str, pd.DataFrame], axis: str = "theta_e", *, label: str | None = None
) -> str:
    """Completeness per value of one grid ``axis``, one column per grid.

    Args:
        grids: grid name -> selection-function table (columns ``axis``, ``k``, ``n``; other
            axes are marginalised by summing ``k`` and ``n``).
    """
    if not grids:
        raise ValueError("no selection-function tables given")
    summed = {}
    for name, table in grids.items():
        _require(table, (axis, "k", "n"), f"selection-function table {name!r}")
        summed[name] = table.groupby(axis, sort=True)[["k", "n"]].sum()
    values = sorted(set().union(*(s.index for s in summed.values())))
    body = []
    for value in values:
        cells = []
        for name in grids:
            if value in summed[name].index:
                k, n = (int(x) for x in summed[name].loc[value, ["k", "n"]])
                cells.append(_percent_with_interval(k, n, digits=1))
            else:
                cells.append("--")
        body.append(f"{float(value):g} & " + " & ".join(cells))
    header = (
        _AXIS_LABELS.get(axis, latex_escape(axis))
        + " & "
        + " & ".join(latex_escape(name) for name in grids)
    )
    return _table(
        f"Completeness (\\%, Wilson 68.27\\% interval) against {_AXIS_LABELS.get(axis, axis)}, "
        "all other grid axes marginalised.",
        label or f"tab:completeness_{axis}",
        "l" + "l" * len(grids),
        header,
        body,
    )


def bright_arc_table(rates: pd.DataFrame, *, label: str = "tab:bright_arc") -> str:
    """Detection rates of the bright-arc variants: one row per variant, one column per threshold.

    Args:
        rates: columns ``variant``, ``threshold``, ``k`` (detections with score > threshold)
            and ``n`` (injections of the variant).
    """
    _require(rates, ("variant", "threshold", "k", "n"), "bright-arc rate table")
    thresholds = sorted(rates["threshold"].astype(float).unique())
    variants = list(dict.fromkeys(rates["variant"]))
    body = []
    for variant in variants:
        rows = rates[rates["variant"] == variant]
        cells = []
        for threshold in thresholds:
            hit = rows[np.isclose(rows["threshold"].astype(float), threshold)]
            cells.append(
                _percent_with_interval(int(hit["k"].iloc[0]), int(hit["n"].iloc[0]), digits=1)
                if len(hit)
                else "--"
            )
        n = int(rows["n"].max())
        body.append(f"{latex_escape(variant)} & {n:,} & " + " & ".join(cells))
    header = "variant & $n$ & " + " & ".join(f"$p > {t:g}$" for t in thresholds)
    return _table(
        "Bright-arc injections: detection rate (\\%, Wilson 68.27\\% interval) per variant and "
        "score threshold.",
        label,
        "lr" + "l" * len(thresholds),
        header,
        body,
    )


@dataclass(frozen=True)
class ProbeRow:
    """One linear-probe comparison for :func:`linear_probe_table`."""

    comparison: str
    hosts: str
    auc_mean: float
    auc_std: float
    n_folds: int
    frechet: float | None = None


def linear_probe_table(rows: Sequence[ProbeRow], *, label: str = "tab:linear_probe") -> str:
    """Linear-probe AUCs (mean +/- std over stratified CV folds) and Fréchet distances."""
    if not rows:
        raise ValueError("no linear-probe results given")
    body = []
    for row in rows:
        frechet = (
            f"{row.frechet:.3g}" if row.frechet is not None and math.isfinite(row.frechet) else "--"
        )
        body.append(
            f"{latex_escape(row.comparison)} & {latex_escape(row.hosts)} & "
            f"${row.auc_mean:.3f} \\pm {row.auc_std:.3f}$ & {row.n_folds} & {frechet}"
        )
    return _table(
        "Linear probe on the CNN embedding: logistic-regression ROC AUC (mean $\\pm$ standard "
        "deviation over stratified folds) and Fréchet distance between the embedding sets.",
        label,
        "llcrr",
        "comparison & hosts & AUC & folds & Fréchet distance",
        body,
    )


def calibration_strata(by_stratum: Any) -> list[tuple[str, str, dict[str, Any]]]:
    """Flatten a calibration report's ``by_stratum`` into ``(family, stratum, values)`` rows.

    Accepted shapes: ``{family: {stratum: {"n", "ece", "mce", ...}}}`` or a list of mappings
    with ``family`` (or ``stratum_type``), ``stratum`` (or ``value``/``name``) and the values.
    """
    rows: list[tuple[str, str, dict[str, Any]]] = []
    if isinstance(by_stratum, Mapping):
        for family, strata in by_stratum.items():
            if isinstance(strata, Mapping) and all(isinstance(v, Mapping) for v in strata.values()):
                rows.extend((str(family), str(name), dict(v)) for name, v in strata.items())
            elif isinstance(strata, Sequence) and not isinstance(strata, str):
                for item in strata:
                    if not isinstance(item, Mapping):
                        raise ValueError(f"by_stratum[{family!r}] holds a non-mapping entry")
                    name = item.get("stratum", item.get("value", item.get("name", "?")))
                    rows.append((str(family), str(name), dict(item)))
            else:
                raise ValueError(f"by_stratum[{family!r}] is neither a mapping nor a list")
    elif isinstance(by_stratum, Sequence) and not isinstance(by_stratum, str):
        for item in by_stratum:
            if not isinstance(item, Mapping):
                raise ValueError("by_stratum holds a non-mapping entry")
            family = item.get("family", item.get("stratum_type", ""))
            name = item.get("stratum", item.get("value", item.get("name", "?")))
            rows.append((str(family), str(name), dict(item)))
    elif by_stratum is not None:
        raise ValueError(f"by_stratum must be a mapping or a list, got {type(by_stratum).__name__}")
    return rows


def _number(value: Any, fmt: str) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return format(value, fmt)
    return "--"


def calibration_table(
    report: Mapping[str, Any], *, model: str = "", label: str = "tab:calibration"
) -> str:
    """ECE and MCE overall and per stratum from a ``calibration_report`` mapping.

    Args:
        report: keys ``ece``, ``mce``, ``n_bins``, ``convention`` and optionally ``n`` and
            ``by_stratum`` (see :func:`calibration_strata`).
        model: model config name shown in the caption.
    """
    missing = [key for key in ("ece", "mce", "n_bins", "convention") if key not in report]
    if missing:
        raise ValueError(f"calibration report lacks key(s) {missing}")
    body = [
        f"all & -- & {_number(report.get('n'), ',')} & {_number(report['ece'], '.4f')} & "
        f"{_number(report['mce'], '.4f')}"
    ]
    for family, stratum, values in calibration_strata(report.get("by_stratum")):
        body.append(
            f"{latex_escape(family)} & {latex_escape(stratum)} & "
            f"{_number(values.get('n'), ',')} & {_number(values.get('ece'), '.4f')} & "
            f"{_number(values.get('mce'), '.4f')}"
        )
    about = f" of {latex_escape(model)}" if model else ""
    return _table(
        f"Calibration{about}: expected (ECE) and maximum (MCE) calibration error on "
        f"{int(report['n_bins'])} equal-width bins ({latex_escape(report['convention'])}), "
        "overall and per stratum.",
        label,
        "llrrr",
        "stratum & value & $n$ & ECE & MCE",
        body,
    )


# --------------------------------------------------------------------------------------------
# Reading the D06 result files (formats of contract item 5) into the tidy inputs above
# --------------------------------------------------------------------------------------------


def _float_key(key: str) -> float:
    try:
        return float(key)
    except ValueError as exc:
        raise ValueError(f"threshold key {key!r} is not a number") from exc


def threshold_rows(rates: Mapping[str, Any], **labels: Any) -> list[dict[str, Any]]:
    """``{"0.3": {"k", "n", ...}, ...}`` -> rows ``{**labels, threshold, k, n}``.

    This is the shape of ``grid_results.json["overall"]`` and of a bright-arc
    ``results.json["rates"]``.
    """
    if not isinstance(rates, Mapping) or not rates:
        raise ValueError("expected a non-empty mapping threshold -> {k, n}")
    rows = []
    for key, value in rates.items():
        if not isinstance(value, Mapping) or "k" not in value or "n" not in value:
            raise ValueError(f"rate at threshold {key!r} lacks 'k' or 'n'")
        rows.append(
            {**labels, "threshold": _float_key(key), "k": int(value["k"]), "n": int(value["n"])}
        )
    return sorted(rows, key=lambda row: row["threshold"])


def probe_rows(results: Mapping[str, Any]) -> list[ProbeRow]:
    """Every AUC entry of ``linear_probe_results.json`` as a :class:`ProbeRow`.

    A mapping holding ``auc_mean`` and ``auc_std`` is one comparison; its name is its key and
    the host-matching mode is the key of the enclosing mapping when there is one (e.g.
    ``{"random": {"tier_a_vs_injections": {...}}}``) or its ``hosts``/``matching`` field. A
    sibling ``frechet_<comparison>`` mapping or a ``frechet`` mapping (``{comparison:
    {"distance"}}`` or ``{"distance"}``) gives the Fréchet distance. Identical entries (a
    headline result repeated under its host mode) appear once.
    """
    rows: list[ProbeRow] = []

    def frechet_for(node: Mapping[str, Any], name: str) -> float | None:
        sibling = node.get(f"frechet_{name}")
        if isinstance(sibling, Mapping) and isinstance(sibling.get("distance"), int | float):
            return float(sibling["distance"])
        entry = node.get("frechet")
        if isinstance(entry, Mapping):
            if isinstance(entry.get(name), Mapping):
                entry = entry[name]
            elif isinstance(entry.get(name), int | float):
                return float(entry[name])
            value = entry.get("distance")
            if isinstance(value, int | float):
                return float(value)
        return None

    def walk(node: Mapping[str, Any], path: tuple[str, ...]) -> None:
        for key, value in node.items():
            if not isinstance(value, Mapping) or key.startswith("frechet"):
                continue
            if "auc_mean" in value and "auc_std" in value:
                hosts = value.get("hosts", value.get("matching", path[-1] if path else "--"))
                frechet = frechet_for(value, key)
                if frechet is None:
                    frechet = frechet_for(node, key)
                rows.append(
                    ProbeRow(
                        comparison=key.replace("_", " ")
                        .replace("tier a", "Tier-A")
                        .replace("tier b", "Tier-B"),
                        hosts=str(hosts),
                        auc_mean=float(value["auc_mean"]),
                        auc_std=float(value["auc_std"]),
                        n_folds=int(value.get("n_folds", 0)),
                        frechet=frechet,
                    )
                )
            else:
                walk(value, (*path, key))

    walk(results, ())
    rows = list(dict.fromkeys(rows))  # a headline entry repeated per host mode appears once
    if not rows:
        raise ValueError("linear-probe results hold no entry with 'auc_mean' and 'auc_std'")
    return rows
