"""The paper's tables as LaTeX (booktabs) from a :class:`~.d06_results.D06Results`.

Each function returns the text of one ``table`` (or ``longtable``) environment with a caption
and a ``\\label{tab:<name>}``, for ``\\input`` in ``paper/results.tex``. Rates are printed in
per cent with their Wilson 95% interval ``[lo, hi]`` and the counts ``k/n`` they come from;
the numbers are those of :mod:`.paper_summary`, so the tables and ``summary.json`` agree.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from stronglens_assets.science.reporting.d06_results import D06Results
from stronglens_assets.science.reporting.paper_summary import (
    MARGINAL_THRESHOLD,
    ComparisonRow,
    Rate,
    completeness_by_axis,
    completeness_by_magnitude,
    completeness_by_threshold,
    mcnemar_rows,
    missed_tier_a,
    tier_a_recall,
)
from stronglens_assets.science.tables import latex_escape

__all__ = [
    "bright_arc_table",
    "comparison_table",
    "completeness_magnitude_table",
    "completeness_theta_e_table",
    "completeness_threshold_table",
    "mcnemar_table",
    "missed_tier_a_table",
    "probe_table",
    "tier_a_recall_table",
]

_RULES = ("\\midrule", "\\cmidrule", "\\addlinespace")
_GRID_NAMES = {"no_poisson": "no Poisson", "poisson": "Poisson"}


def _grid_name(name: str) -> str:
    return latex_escape(_GRID_NAMES.get(name, name))


def _threshold_tex(label: str) -> str:
    if label.startswith("p>"):
        return f"$p > {label[2:]}$"
    if label.startswith("FPR="):
        mantissa, exponent = label[4:].split("e")
        lead = "" if mantissa == "1" else f"{mantissa}\\times"
        return f"FPR $= {lead}10^{{{int(exponent)}}}$"
    return latex_escape(label)


def _pct(value: float | None, digits: int = 2) -> str:
    if value is None or not math.isfinite(value):
        return "--"
    return f"{100 * value:.{digits}f}"


def _rate_cells(rate: Rate, digits: int = 2) -> list[str]:
    """``k/n`` and ``rate [lo, hi]`` in per cent."""
    if rate.n == 0:
        return ["0/0", "--"]
    low, high = rate.wilson95
    return [
        f"{rate.k:,}/{rate.n:,}",
        f"{_pct(rate.rate, digits)} [{_pct(low, digits)}, {_pct(high, digits)}]",
    ]


def _p_value(p: float) -> str:
    if p >= 0.001:
        return f"{p:.3f}"
    mantissa, exponent = f"{p:.1e}".split("e")
    return f"${mantissa}\\times10^{{{int(exponent)}}}$"


def _table(
    caption: str,
    label: str,
    columns: str,
    header: Sequence[str],
    body: Sequence[str],
    *,
    wide: bool = False,
) -> str:
    env = "table*" if wide else "table"
    lines = [
        f"\\begin{{{env}}}[htbp]",
        r"\centering",
        r"\small",
        f"\\caption{{{caption}}}",
        f"\\label{{tab:{label}}}",
        f"\\begin{{tabular}}{{{columns}}}",
        r"\toprule",
        *[line + r" \\" for line in header],
        r"\midrule",
        *[line if line.startswith(_RULES) else line + r" \\" for line in body],
        r"\bottomrule",
        r"\end{tabular}",
        f"\\end{{{env}}}",
    ]
    return "\n".join(lines) + "\n"


def _grid_header(names: Sequence[str], first: str) -> list[str]:
    top = " & ".join([first] + [f"\\multicolumn{{2}}{{c}}{{{_grid_name(n)} grid}}" for n in names])
    rules = "".join(f"\\cmidrule(lr){{{2 + 2 * i}-{3 + 2 * i}}}" for i in range(len(names)))
    sub = " & ".join([""] + ["$k/n$ & \\% [Wilson 95\\%]"] * len(names))
    return [top, rules + " " + sub]


def _grid_rows(
    per_grid: Mapping[str, Mapping[Any, Rate]], keys: Sequence[Any], first: Callable[[Any], str]
) -> list[str]:
    """One row per key: its label, then ``k/n`` and ``rate [Wilson 95%]`` of every grid."""
    rows = []
    for key in keys:
        cells = [first(key)]
        for rates in per_grid.values():
            rate = rates.get(key)
            cells += _rate_cells(rate) if rate else ["--", "--"]
        rows.append(" & ".join(cells))
    return rows


def tier_a_recall_table(results: D06Results) -> str:
    """Tier-A recall per threshold with Wilson 95%, the file's own interval and the FPR of
    the scored negatives at the same threshold."""
    rows = tier_a_recall(results)
    body = []
    for label, entry in rows.items():
        rate = Rate(entry["k"], entry["n"])
        jeffreys = entry["jeffreys95"]
        fpr = entry["fpr_negatives"]
        body.append(
            " & ".join(
                [
                    _threshold_tex(label),
                    f"{entry['threshold']:.4g}",
                    *_rate_cells(rate, 1),
                    f"[{_pct(jeffreys[0], 1)}, {_pct(jeffreys[1], 1)}]",
                    f"{rate.n - rate.k}",
                    "--" if fpr is None else f"{_pct(fpr, 2)}",
                ]
            )
        )
    n_neg = next(iter(rows.values()))["n_negatives"] if rows else 0
    return _table(
        "Recall of the validation Tier-A lenses (detection: $p >$ threshold) with the Wilson "
        "95\\% interval; the Jeffreys equal-tailed 95\\% interval (the convention of the "
        "results file's \\texttt{ci\\_95}); lenses missed; and the false-positive rate of "
        f"{n_neg:,} validation non-lenses at the same threshold.",
        "tier_a_recall",
        "llrlllr",
        [
            "threshold & $p$ cut & $k/n$ & recall \\% [Wilson 95\\%] & Jeffreys 95\\% & missed "
            "& FPR (\\%)"
        ],
        body,
    )


def completeness_threshold_table(results: D06Results) -> str:
    """Completeness of every grid at every threshold; the Poisson deficit when both grids
    are present."""
    names = list(results.grids)
    per_grid = {n: completeness_by_threshold(results.grids[n]) for n in names}
    labels = list(dict.fromkeys(label for rates in per_grid.values() for label in rates))
    both = "no_poisson" in per_grid and "poisson" in per_grid
    header = _grid_header(names, "threshold")
    columns = "l" + "rl" * len(names)
    if both:
        first_col = 2 + 2 * len(names)
        header[0] += r" & \multicolumn{2}{c}{deficit}"
        header[1] = (
            header[1].replace(" ", f"\\cmidrule(lr){{{first_col}-{first_col + 1}}} ", 1)
            + r" & pp & relative"
        )
        columns += "rr"
    body = []
    for label in labels:
        cells = [_threshold_tex(label)]
        for name in names:
            rate = per_grid[name].get(label)
            cells += _rate_cells(rate) if rate else ["--", "--"]
        if both:
            a, b = per_grid["no_poisson"].get(label), per_grid["poisson"].get(label)
            if a and b and a.n and b.n:
                diff = a.rate - b.rate
                cells += [f"{100 * diff:.2f}", f"{100 * diff / a.rate:.0f}\\%" if a.k else "--"]
            else:
                cells += ["--", "--"]
        body.append(" & ".join(cells))
    note = (
        " The deficit is no-Poisson minus Poisson completeness (percentage points) and its "
        "ratio to the no-Poisson completeness; both grids use the same hosts and source "
        "parameters, so the difference is paired and its uncertainty needs the per-injection "
        "pairs (not in these files)."
        if both
        else ""
    )
    thresholds = next(iter(results.grids.values())).thresholds
    fpr = [s for s in thresholds if s.fpr_target is not None]
    fpr_note = (
        " FPR-derived thresholds: "
        + ", ".join(f"{_threshold_tex(s.label)}: $p > {s.value:.4f}$" for s in fpr)
        + "."
        if fpr
        else ""
    )
    return _table(
        "Injection-recovery completeness of the D06 grids at each score threshold: detections "
        "$k$ of $n$ injections over all cells and source magnitudes, in per cent with the "
        "Wilson 95\\% interval." + fpr_note + note,
        "completeness_thresholds",
        columns,
        header,
        body,
    )


def completeness_theta_e_table(results: D06Results, threshold: str = MARGINAL_THRESHOLD) -> str:
    """Completeness per Einstein radius (all other axes and magnitudes summed)."""
    names = list(results.grids)
    per_grid = {n: completeness_by_axis(results.grids[n], "theta_e", threshold) for n in names}
    values = sorted({v for rates in per_grid.values() for v in rates})
    body = _grid_rows(per_grid, values, lambda value: f"{value:.2f}")
    return _table(
        f"Completeness at {_threshold_tex(threshold)} per Einstein radius, summed over PSF "
        "FWHM, depth and source magnitude, with the Wilson 95\\% interval.",
        "completeness_theta_e",
        "l" + "rl" * len(names),
        _grid_header(names, "$\\theta_{\\rm E}$ (arcsec)"),
        body,
    )


def completeness_magnitude_table(results: D06Results, threshold: str = MARGINAL_THRESHOLD) -> str:
    """Completeness per unlensed source magnitude bin and per lensed magnitude bin."""
    names = list(results.grids)
    body = []
    for kind, title in (
        ("source", "source (unlensed) $r$"),
        ("lensed", "lensed (image-plane) $r$"),
    ):
        per_grid = {n: completeness_by_magnitude(results.grids[n], kind, threshold) for n in names}
        labels = list(dict.fromkeys(b for rates in per_grid.values() for b in rates))
        if not labels:
            continue
        if body:
            body.append(r"\midrule")
        body.append(f"\\multicolumn{{{1 + 2 * len(names)}}}{{l}}{{\\emph{{{title} magnitude}}}}")
        body += _grid_rows(per_grid, labels, lambda label: label.replace("-", "--"))
    return _table(
        f"Completeness at {_threshold_tex(threshold)} per source (unlensed) and lensed "
        "(image-plane) $r$ magnitude bin (AB), summed over the grid cells, with the Wilson 95\\% "
        "interval.",
        "completeness_magnitude",
        "l" + "rl" * len(names),
        _grid_header(names, "bin (mag)"),
        body,
    )


def bright_arc_table(results: D06Results) -> str:
    """Bright-arc detection rates at p > 0.3 and p > 0.5 per variant (columns) and source
    magnitude bin (rows)."""
    variants = results.bright_arcs
    names = list(variants)
    labels = list(dict.fromkeys(b.mag_bin for v in variants.values() for b in v.bins))
    body = []
    for label in labels:
        cells = [label.replace("-", "--")]
        for name in names:
            b = next((b for b in variants[name].bins if b.mag_bin == label), None)
            cells.append("--" if b is None else f"{_pct(b.rate_p03, 1)} / {_pct(b.rate_p05, 1)}")
        body.append(" & ".join(cells))
    details = []
    for name in names:
        v = variants[name]
        beta = (
            f"[{v.beta_frac_range[0]:g}, {v.beta_frac_range[1]:g}]"
            if v.beta_frac_range
            else "default"
        )
        noise = (
            f"Poisson, gain {v.gain_e_per_nmgy:g} e$^-$/nmgy"
            if v.add_poisson_noise
            else "no Poisson"
        )
        clip = f"clip {v.clip_range:g}" if v.clip_range is not None else "clip --"
        details.append(
            f"\\texttt{{{latex_escape(name)}}}: {noise}, {clip}, $\\beta_{{\\rm frac}}$ {beta}, "
            f"{v.n_scored:,} scored"
        )
    n_per_bin = sorted({b.n for v in variants.values() for b in v.bins})
    return _table(
        "Bright-arc detection rate (\\%) at $p > 0.3$ / $p > 0.5$ per source (unlensed) $r$ "
        f"magnitude bin, $\\theta_{{\\rm E}} = {next(iter(variants.values())).theta_e:g}''$, "
        f"{', '.join(str(n) for n in n_per_bin)} injections per bin (Wilson 95\\% intervals in "
        "Figure~\\ref{fig:fig4_bright_arcs} and \\texttt{summary.json}). Variants: "
        + "; ".join(details)
        + ".",
        "bright_arc",
        "l" + "c" * len(names),
        ["bin (mag) & " + " & ".join(f"\\texttt{{{latex_escape(n)}}}" for n in names)],
        body,
        wide=len(names) > 3,
    )


def mcnemar_table(results: D06Results) -> str:
    """McNemar tests of Poisson vs baseline per bin and pooled, recomputed from b and c."""
    pairs = results.poisson_pairs
    if pairs is None:
        raise ValueError("no paired bright-arc counts")
    body = []
    rows = mcnemar_rows(pairs)
    for i, row in enumerate(rows):
        r = row.result
        if len(row.bins) > 1 and (i == 0 or len(rows[i - 1].bins) == 1):
            body.append(r"\midrule")
        if len(row.bins) > 1:
            name = f"pooled {row.bins[0].split('-')[0]}--{row.bins[-1].split('-')[1]}"
            pairs_in = [p for p in pairs.per_bin if p.label in row.bins]
            total = sum(p.n_paired for p in pairs_in)
            base = sum(p.both_detected + p.c for p in pairs_in) / total if total else None
            noisy = sum(p.both_detected + p.b for p in pairs_in) / total if total else None
            rates = _pct(base, 1), _pct(noisy, 1)
            n = str(total)
        else:
            name = row.label.replace("-", "--")
            rates = _pct(row.baseline_rate, 1), _pct(row.poisson_rate, 1)
            n = str(row.n_paired)
        body.append(
            f"{name} & {n} & {r.b} & {r.c} & {rates[0]} & {rates[1]} & {r.chi2:.2f} & "
            f"{_p_value(r.p_chi2)} & {_p_value(r.p_exact)}"
        )
    return _table(
        "Poisson noise against baseline on the same bright-arc injections (paired). $b$: "
        "detected ($p > 0.3$) only with Poisson noise; $c$: only without. McNemar's test "
        "recomputed from $b$ and $c$: continuity-corrected $\\chi^2 = (|b-c|-1)^2/(b+c)$ (1 "
        "d.o.f.) and the exact two-sided binomial test of $b$ in $b+c$ at 1/2. Pooled rows sum "
        "$b$ and $c$ over their bins.",
        "mcnemar",
        "lrrrrrrll",
        [
            "bin (mag) & $n$ & $b$ & $c$ & base \\% & Poisson \\% & $\\chi^2$ & $p_{\\chi^2}$ & "
            "$p_{\\rm exact}$"
        ],
        body,
    )


def probe_table(results: D06Results) -> str:
    """Linear probe: AUCs, permutation test, bootstrap interval, Fréchet distances, medians."""
    fs, sig = results.feature_space, results.probe_significance
    body: list[str] = []
    if fs is not None:
        groups = ", ".join(f"{latex_escape(k)} {v}" for k, v in fs.group_sizes.items())
        body.append(
            f"probe ({latex_escape(fs.task)}), 5-fold CV AUC & ${fs.cv_auc_mean:.4f} \\pm "
            f"{fs.cv_auc_std:.4f}$"
        )
        body.append(f"groups ($n$) & {groups}")
        body.append(
            f"injections & $\\theta_{{\\rm E}} = {fs.theta_e:g}''$, source $r = {fs.target_mag:g}$"
        )
    if sig is not None:
        body.append(
            f"CV AUC, significance run ({len(sig.auc_folds)} folds) & ${sig.auc_mean:.4f} \\pm "
            f"{sig.auc_std:.4f}$"
        )
        body.append(
            f"permutation test ({sig.n_permutations:,} label shuffles) & max AUC "
            f"{sig.max_perm_auc:.3f}, mean {sig.mean_perm_auc:.3f}, $p = {sig.permutation_p:.2g}$ "
            f"({sig.n_exceeding} $\\geq$ observed)"
        )
        body.append(
            f"bootstrap of held-out predictions ({sig.n_bootstrap_valid:,}/{sig.n_bootstrap:,}) & "
            f"95\\% [{sig.bootstrap_ci95[0]:.4f}, {sig.bootstrap_ci95[1]:.4f}]"
        )
    if fs is not None:
        body.append(r"\midrule")
        for name, value in fs.frechet.items():
            body.append(f"Fréchet distance, {latex_escape(name.replace('_', ' '))} & {value:.1f}")
        layers = [
            f"{latex_escape(k)} {v:.3g}" for k, v in fs.frechet_per_layer.items() if v is not None
        ]
        if layers:
            body.append("Fréchet distance per feature block & " + ", ".join(layers))
        body.append(
            "median score & "
            + ", ".join(f"{latex_escape(k)} {v:.3g}" for k, v in fs.median_scores.items())
        )
    return _table(
        "Linear probe on the CNN's penultimate embedding (logistic regression): cross-validated "
        "ROC AUC (mean $\\pm$ standard deviation over folds), the permutation test ($p = "
        "(n_{\\ge} + 1)/(N + 1)$), the bootstrap 95\\% interval, Fréchet distances between the "
        "embedding sets and median CNN scores.",
        "probe",
        "p{0.36\\linewidth}p{0.56\\linewidth}",
        ["quantity & value"],
        body,
    )


def missed_tier_a_table(results: D06Results, threshold: float = 0.3) -> str:
    """The Tier-A lenses with p <= threshold (needs the per-lens table)."""
    rows = missed_tier_a(results, threshold)
    columns = [
        c for c in ("object_id", "source", "score", "mag_r", "z_lens") if any(c in r for r in rows)
    ]
    names = {
        "object_id": "lens",
        "source": "kind",
        "score": "$p$",
        "mag_r": "$r_{\\rm defl}$",
        "z_lens": "$z_{\\rm l}$",
    }
    body = []
    for row in rows:
        cells = []
        for c in columns:
            v = row.get(c)
            if v is None:
                cells.append("--")
            elif c == "score":
                cells.append(f"{v:.3g}")
            elif c in ("mag_r",):
                cells.append(f"{v:.2f}")
            elif c == "z_lens":
                cells.append(f"{v:.3f}")
            else:
                cells.append(latex_escape(v))
        body.append(" & ".join(cells))
    return _table(
        f"Tier-A lenses missed at $p > {threshold:g}$ ({len(rows)}), lowest score first: "
        "deflector $r$ magnitude (AB) and redshift where known; kind \\emph{mock} marks lenses "
        "planted by the mock survey.",
        "missed_tier_a",
        "l" * len(columns),
        [" & ".join(names[c] for c in columns)],
        body or [r"\multicolumn{" + str(max(len(columns), 1)) + "}{l}{none}"],
    )


def _comparison_cell(section: str, value: float | None, interval: Any) -> str:
    if value is None:
        return "--"
    if section in ("McNemar exact p", "linear probe"):
        text = _p_value(value) if section.startswith("McNemar") else f"{value:.4f}"
        if interval:
            text += f" [{interval[0]:.4f}, {interval[1]:.4f}]"
        return text
    text = _pct(value)
    if interval and None not in interval:
        text += f" [{_pct(interval[0])}, {_pct(interval[1])}]"
    return text


def comparison_table(rows: Sequence[ComparisonRow], *, reference: str, run: str) -> str:
    """Reference (e.g. published) vs this run, one line per headline number (longtable)."""
    header = r"quantity & reference & this run & $\Delta$ & overlap \\"
    lines = [
        r"\begingroup\footnotesize",
        r"\begin{longtable}{llllc}",
        f"\\caption{{Published vs this run: reference {latex_escape(reference)}; run "
        f"{latex_escape(run)}. Rates in per cent with Wilson 95\\% intervals; $\\Delta$ = run "
        "minus reference (percentage points for rates); overlap: whether the two intervals "
        "overlap.}\\label{tab:comparison}\\\\",
        r"\toprule",
        header,
        r"\midrule",
        r"\endfirsthead",
        r"\toprule",
        header,
        r"\midrule",
        r"\endhead",
        r"\bottomrule",
        r"\endfoot",
    ]
    section = None
    for row in rows:
        if row.section != section:
            section = row.section
            lines.append(f"\\multicolumn{{5}}{{l}}{{\\emph{{{latex_escape(section)}}}}} \\\\")
        is_rate = row.section not in ("McNemar exact p", "linear probe")
        ref_text = _comparison_cell(row.section, row.reference, row.reference_interval)
        run_text = _comparison_cell(row.section, row.run, row.run_interval)
        diff = row.difference
        diff_text = "--" if diff is None else (f"{100 * diff:+.2f}" if is_rate else f"{diff:+.2g}")
        overlap = {None: "--", True: "yes", False: "no"}[row.overlap]
        lines.append(
            f"\\quad {latex_escape(row.quantity)} & {ref_text} & {run_text} & {diff_text} & "
            f"{overlap} \\\\"
        )
    lines += [r"\end{longtable}", r"\endgroup"]
    return "\n".join(lines) + "\n"
