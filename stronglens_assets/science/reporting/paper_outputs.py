"""All paper outputs of one D06 results directory, in memory: figures, tables, summary.

:func:`render_paper` takes a :class:`~.d06_results.D06Results` (and optionally a reference,
e.g. the published directory, to compare with) and returns :class:`PaperOutputs`: a mapping of
relative paths to bytes and the list of outputs it skipped with the reason (the input they
need is absent). Nothing is written here: the caller writes the files (the ``stronglens paper``
command; later the paper assets), so a failure while rendering leaves earlier outputs alone.

Files (relative to the output directory)::

    summary.json                the paper's numbers (schema below)
    manifest.json               inputs (key, URI, size, SHA-256), missing inputs, skipped
                                outputs, published numbers recomputed (checks), outputs' SHA-256
    comparison.json             reference vs run (only with a reference)
    tables/<name>.tex           tier_a_recall, completeness_thresholds, completeness_theta_e,
                                completeness_magnitude, bright_arc, mcnemar, probe,
                                missed_tier_a, comparison; skipped.tex, inputs.tex
    figures/<name>.{pdf,png,tex} fig1_completeness, fig2_embedding, fig3_scores,
                                fig4_bright_arcs, fig5_real_vs_injection

``summary.json``: ``{"completeness": {grid: {threshold label: {"k", "n", "rate",
"wilson95"}}}, "completeness_by_theta_e": {grid: {"0.50": {...}}}, "completeness_by_lensed_mag":
{grid: {"20-22": {...}}}, "completeness_by_source_mag": {...}, "completeness_deficit": {label:
{"absolute", "relative"}} (both grids only), "bright_arc": {variant: {bin: {"n", "rate_p03",
"rate_p05", "median_score", "k_p03", "k_p05", "wilson95_p03", "median_arc_snr"}}}, "mcnemar":
{bin | "pooled" | "pooled_<name>": {"b", "c", "chi2", "p_chi2", "p_exact"[, "bins"]}},
"tier_a_recall": {label: {"k", "n", "rate", "wilson95", "threshold", "jeffreys95",
"fpr_negatives", "n_negatives"}}, "probe": {...}, "missed_tier_a": {...}, "conventions": {...}}``
with threshold labels ``p>0.3``, ``p>0.5``, ``p>0.7``, ``FPR=1e-3``, ``FPR=1e-4``, numbers as
fractions, intervals ``[lo, hi]``; a section whose input is absent is an empty mapping.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from stronglens_assets.science.core.hashing import sha256_bytes
from stronglens_assets.science.reporting import paper_figures as F
from stronglens_assets.science.reporting import paper_tables as T
from stronglens_assets.science.reporting.d06_results import D06Results
from stronglens_assets.science.reporting.paper_summary import (
    build_summary,
    compare_summaries,
    consistency_checks,
)
from stronglens_assets.science.tables import latex_escape

__all__ = ["FIGURES", "TABLES", "PaperOutputs", "Skipped", "render_paper"]


@dataclass(frozen=True)
class Skipped:
    """An output not produced, and why."""

    output: str
    reason: str


@dataclass
class PaperOutputs:
    """Relative path -> bytes of every output, plus what was skipped and the checks."""

    files: dict[str, bytes] = field(default_factory=dict)
    skipped: list[Skipped] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    checks: list[Any] = field(default_factory=list)


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=2, allow_nan=False) + "\n").encode("utf-8")


def _missing_keys(results: D06Results, prefix: str) -> str:
    keys = [m.key for m in results.missing if m.key.startswith(prefix)]
    return ", ".join(keys) if keys else prefix


def _needs_grid(r: D06Results) -> str | None:
    return None if r.grids else f"needs a grid ({_missing_keys(r, 'grid_')})"


def _needs_bright_arcs(r: D06Results) -> str | None:
    return None if r.bright_arcs else f"needs a bright-arc variant ({_missing_keys(r, 'ba_')})"


#: Tables: name -> (needs: results -> reason it cannot be made or None, builder).
TABLES: dict[str, tuple[Callable[[D06Results], str | None], Callable[[D06Results], str]]] = {
    "tier_a_recall": (
        lambda r: None if r.tier_a else f"needs {_missing_keys(r, 'tier_a_scoring/real_lens')}",
        T.tier_a_recall_table,
    ),
    "completeness_thresholds": (
        _needs_grid,
        T.completeness_threshold_table,
    ),
    "completeness_theta_e": (
        _needs_grid,
        T.completeness_theta_e_table,
    ),
    "completeness_magnitude": (
        _needs_grid,
        T.completeness_magnitude_table,
    ),
    "bright_arc": (
        lambda r: (
            None if r.bright_arcs else f"needs a bright-arc variant ({_missing_keys(r, 'ba_')})"
        ),
        T.bright_arc_table,
    ),
    "mcnemar": (
        lambda r: None if r.poisson_pairs else f"needs {_missing_keys(r, 'poisson_diagnostics/')}",
        T.mcnemar_table,
    ),
    "probe": (
        lambda r: (
            None
            if r.feature_space or r.probe_significance
            else f"needs {_missing_keys(r, 'linear_probe/f')} or "
            f"{_missing_keys(r, 'linear_probe/p')}"
        ),
        T.probe_table,
    ),
    "missed_tier_a": (
        lambda r: (
            None
            if r.tier_a_lenses
            else "needs the per-lens scores tier_a_scoring/tier_a_scores.parquet (the published "
            "files give only the count missed, which is in tier_a_recall)"
        ),
        T.missed_tier_a_table,
    ),
}


_GRID_TEX = {"no_poisson": "no-Poisson", "poisson": "Poisson"}


def _grid_names(results: D06Results) -> str:
    text = " and ".join(f"the {_GRID_TEX.get(n, latex_escape(n))}" for n in results.grids)
    return text + (" grids" if len(results.grids) > 1 else " grid")


def _fig1_caption(results: D06Results, method: str) -> str:
    first = "no_poisson" if "no_poisson" in results.grids else next(iter(results.grids))
    return (
        "Completeness at $p > 0.3$ with Wilson 95\\% intervals. (a) Against Einstein radius for "
        f"the {_GRID_TEX.get(first, latex_escape(first))} grid, summed over PSF FWHM, depth and "
        "source magnitude. (b) Against the lensed (image-plane) $r$ magnitude of the arc, for "
        f"{_grid_names(results)}; horizontal bars span the bins, the $y$ axis is logarithmic."
    )


def _fig2_caption(results: D06Results, method: str) -> str:
    how = (
        "UMAP, 15 neighbours, minimum distance 0.1, Euclidean, seeded"
        if method == "umap"
        else "first two principal components of the centred union"
    )
    return (
        f"{'UMAP' if method == 'umap' else 'Principal-component'} map of the CNN's penultimate "
        "embedding of Tier-A lenses, injections with low and high $\\beta_{\\rm frac}$, and "
        f"non-lenses ({how})."
    )


def _fig3_caption(results: D06Results, method: str) -> str:
    return (
        "Distribution of the CNN score of the probe's groups (fraction per bin of "
        "$\\log_{10} p$; scores below $10^{-7}$ in the first bin); the dashed line marks "
        "$p = 0.3$."
    )


def _fig4_caption(results: D06Results, method: str) -> str:
    shown = ", ".join(f"\\texttt{{{latex_escape(v)}}}" for v in results.bright_arcs)
    absent = [
        m.key.split("/")[0].removeprefix("ba_") for m in results.missing if m.key.startswith("ba_")
    ]
    note = (
        " Variants absent from the results: "
        + ", ".join(f"\\texttt{{{latex_escape(v)}}}" for v in absent)
        + "."
        if absent
        else ""
    )
    return (
        "Bright-arc detection rate at $p > 0.3$ against the source (unlensed) $r$ magnitude for "
        f"{shown}, with Wilson 95\\% intervals; variants are offset by a few hundredths of a "
        "magnitude within each bin." + note
    )


def _fig5_caption(results: D06Results, method: str) -> str:
    return (
        "Real lenses (top; \\emph{mock} where planted by the mock survey) and injections "
        "(bottom) at evenly spaced ranks of their CNN score; grz composites with the Lupton et "
        "al. (2004) asinh stretch, north up, east left."
    )


def _needs_embeddings(r: D06Results) -> str | None:
    if r.embeddings:
        return None
    return (
        "needs the per-object embeddings linear_probe/embeddings.npz (not in the published files)"
    )


def _needs_scores(r: D06Results) -> str | None:
    if r.embeddings and r.embeddings.scores:
        return None
    return (
        "needs per-object scores (<group>_score arrays in linear_probe/embeddings.npz; the "
        "published files give only the medians)"
    )


def _needs_cutouts(r: D06Results) -> str | None:
    if r.cutouts:
        return None
    return "needs cutouts real_vs_injection/cutouts.npz (not in the published files)"


_FigureBuilder = Callable[[D06Results, str, int], Any]
#: Figures: name -> (needs, builder(results, embedding method, seed) -> Figure, caption).
FIGURES: dict[
    str,
    tuple[Callable[[D06Results], str | None], _FigureBuilder, Callable[[D06Results, str], str]],
] = {
    "fig1_completeness": (
        _needs_grid,
        lambda r, method, seed: F.completeness_figure(r.grids),
        _fig1_caption,
    ),
    "fig2_embedding": (
        _needs_embeddings,
        lambda r, method, seed: F.embedding_figure(r.embeddings, method, seed=seed),
        _fig2_caption,
    ),
    "fig3_scores": (
        _needs_scores,
        lambda r, method, seed: F.score_figure(r.embeddings.scores, embeddings=r.embeddings),
        _fig3_caption,
    ),
    "fig4_bright_arcs": (
        _needs_bright_arcs,
        lambda r, method, seed: F.bright_arc_figure(r.bright_arcs),
        _fig4_caption,
    ),
    "fig5_real_vs_injection": (
        _needs_cutouts,
        lambda r, method, seed: F.comparison_figure(r.cutouts),
        _fig5_caption,
    ),
}


def _figure_tex(name: str, caption: str, wide: bool) -> str:
    """A figure environment; single-column figures at their natural size (column width, so
    their fonts print at the sizes they were drawn with), wide ones at the text width."""
    env = "figure*" if wide else "figure"
    size = "[width=\\textwidth]" if wide else ""
    return (
        f"\\begin{{{env}}}[htbp]\n\\centering\n"
        f"\\includegraphics{size}{{figures/{name}.pdf}}\n"
        f"\\caption{{{caption}}}\n\\label{{fig:{name}}}\n\\end{{{env}}}\n"
    )


def _inputs_tex(results: D06Results) -> str:
    lines = [
        r"\begin{longtable}{lrl}",
        f"\\caption{{Inputs read from {latex_escape(results.location)} (SHA-256, first 16 hex "
        "digits).}\\label{tab:inputs}\\\\",
        r"\toprule",
        r"file & bytes & SHA-256 \\",
        r"\midrule",
        r"\endhead",
        r"\bottomrule",
        r"\endfoot",
    ]
    for item in results.inputs:
        lines.append(
            f"\\texttt{{{latex_escape(item.key)}}} & {item.size:,} & "
            f"\\texttt{{{item.sha256[:16]}}} \\\\"
        )
    lines.append(r"\end{longtable}")
    return "\n".join(lines) + "\n"


def _skipped_tex(skipped: list[Skipped]) -> str:
    if not skipped:
        return "Every table and figure was generated.\n"
    items = "\n".join(
        f"\\item \\texttt{{{latex_escape(s.output)}}}: {latex_escape(s.reason)}" for s in skipped
    )
    return (
        "The following outputs were not generated because their inputs are absent:\n"
        f"\\begin{{itemize}}\n{items}\n\\end{{itemize}}\n"
    )


def _embedding_method(method: str) -> str:
    if method != "auto":
        return method
    try:
        import umap  # noqa: F401
    except ImportError:
        return "pca"
    return "umap"


def render_paper(
    results: D06Results,
    *,
    reference: D06Results | None = None,
    embedding_method: str = "auto",
    seed: int = 0,
    dpi: int = 300,
    label: str | None = None,
    reference_label: str | None = None,
    figures: bool = True,
    data_note: str | None = None,
) -> PaperOutputs:
    """Every table, figure and summary that ``results`` allow (module docstring).

    Args:
        reference: a second results directory (e.g. the published one) to compare with.
        embedding_method: ``umap``, ``pca`` or ``auto`` (UMAP when ``umap-learn`` imports).
        seed: random state of the UMAP map.
        label, reference_label: names of the two directories in the comparison table.
        figures: render the figures (False: tables and summary only, listed as skipped).
        data_note: where the results come from when that is not the survey (e.g. "Data:
            embedded default (mock DR10); its lenses are mock."): appended to every figure
            caption and recorded as ``data`` in ``manifest.json``.
    """
    method = _embedding_method(embedding_method)
    out = PaperOutputs()
    out.summary = build_summary(results)
    out.checks = consistency_checks(results)
    for name, (needs, build) in TABLES.items():
        reason = needs(results)
        if reason:
            out.skipped.append(Skipped(f"tables/{name}.tex", reason))
            continue
        out.files[f"tables/{name}.tex"] = build(results).encode("utf-8")
    for name, (needs, build, caption) in FIGURES.items():
        reason = needs(results) or (None if figures else "figures not requested")
        if reason:
            out.skipped.append(Skipped(f"figures/{name}", reason))
            continue
        pdf, png = F.render(build(results, method, seed), dpi=dpi)
        out.files[f"figures/{name}.pdf"] = pdf
        out.files[f"figures/{name}.png"] = png
        text = caption(results, method) + (f" {data_note}" if data_note else "")
        out.files[f"figures/{name}.tex"] = _figure_tex(
            name, text, wide=name == "fig5_real_vs_injection"
        ).encode("utf-8")
    comparison = None
    if reference is not None:
        rows = compare_summaries(build_summary(reference), out.summary)
        comparison = [row.as_dict() for row in rows]
        out.files["tables/comparison.tex"] = T.comparison_table(
            rows,
            reference=reference_label or reference.location,
            run=label or results.location,
        ).encode("utf-8")
        out.files["comparison.json"] = _json_bytes(
            {
                "reference": reference_label or reference.location,
                "run": label or results.location,
                "rows": comparison,
            }
        )
    else:
        out.skipped.append(
            Skipped("tables/comparison.tex", "no reference directory given to compare with")
        )
    out.files["summary.json"] = _json_bytes(out.summary)
    out.files["tables/skipped.tex"] = _skipped_tex(out.skipped).encode("utf-8")
    out.files["tables/inputs.tex"] = _inputs_tex(results).encode("utf-8")
    manifest = {
        "results": results.location,
        "label": label,
        "data": data_note,
        "layout": results.layout,
        "embedding_method": method if results.embeddings else None,
        "inputs": [vars(i) for i in results.inputs],
        "missing_inputs": [vars(m) for m in results.missing],
        "skipped_outputs": [vars(s) for s in out.skipped],
        "checks": [c.as_dict() for c in out.checks],
        "outputs": {path: sha256_bytes(data) for path, data in sorted(out.files.items())},
    }
    if reference is not None:
        manifest["reference"] = reference.location
    out.files["manifest.json"] = _json_bytes(manifest)
    return out
