"""LaTeX helpers shared by the paper outputs (no Dagster): :func:`latex_escape` and the
calibration table of the D06 model (:func:`calibration_table`: ECE and MCE overall and per
stratum, one ``table`` environment with booktabs rules, a caption and a ``\\label``). The D06
tables themselves are :mod:`~stronglens_assets.science.reporting.paper_tables`'. The output is
deterministic for the same inputs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "calibration_strata",
    "calibration_table",
    "latex_escape",
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
