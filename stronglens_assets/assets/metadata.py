"""Asset and check metadata as the Dagster UI shows it: the one place every asset's metadata
goes through before it is recorded.

:func:`ui_metadata` rounds floats to a readable number of significant digits
(:func:`round_significant`) and turns count tables and per-epoch records, which Dagster would
otherwise show as one long JSON value, into table metadata. The full-precision values stay in
the result files the assets write (JSON, CSV, Parquet); metadata is for reading.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from numbers import Integral, Real
from typing import Any

import dagster as dg

#: Significant digits of a float shown in the UI.
SIGNIFICANT_DIGITS = 4

_Scalar = (str, bool, Real, type(None))


def round_significant(value: float, digits: int = SIGNIFICANT_DIGITS) -> float:
    """``value`` rounded to ``digits`` significant digits; a value close to 1 (a threshold, an
    AUC) keeps two significant digits of its distance to 1 as well, so 0.99995 is not shown
    as 1. Zero, NaN and infinities are returned unchanged."""
    if digits < 1:
        raise ValueError(f"digits must be >= 1, got {digits}")
    value = float(value)
    if value == 0.0 or not math.isfinite(value):
        return value
    decimals = digits - 1 - math.floor(math.log10(abs(value)))
    gap = 1.0 - abs(value)
    if 0.0 < gap < 0.1:
        decimals = max(decimals, 1 - math.floor(math.log10(gap)))
    return round(value, decimals)


def _rounded(value: Any) -> Any:
    """JSON-like ``value`` with every float rounded and non-finite floats as ``None``."""
    if isinstance(value, bool) or isinstance(value, Integral):
        return value if isinstance(value, bool) else int(value)
    if isinstance(value, Real):
        number = float(value)
        return round_significant(number) if math.isfinite(number) else None
    if isinstance(value, Mapping):
        return {str(k): _rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rounded(v) for v in value]
    return value


def _is_flat(record: Any) -> bool:
    return isinstance(record, Mapping) and all(isinstance(v, _Scalar) for v in record.values())


def _column_type(values: Sequence[Any]) -> str:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return "bool"
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "int"
    if present and all(isinstance(v, Real) and not isinstance(v, bool) for v in present):
        return "float"
    return "string"


def records_table(records: Sequence[Mapping[str, Any]]) -> dg.MetadataValue:
    """Table metadata of flat records (columns: the union of their keys, in first-seen order;
    floats rounded; a column of mixed types is shown as text)."""
    rows = [_rounded(dict(r)) for r in records]
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    types = {c: _column_type([row.get(c) for row in rows]) for c in columns}
    table_rows = []
    for row in rows:
        cells = {}
        for column in columns:
            cell = row.get(column)
            if types[column] == "string" and cell is not None:
                cell = str(cell)
            elif types[column] == "float" and cell is not None:
                cell = float(cell)
            cells[column] = cell
        table_rows.append(dg.TableRecord(cells))
    schema = dg.TableSchema(columns=[dg.TableColumn(c, types[c]) for c in columns])
    return dg.MetadataValue.table(table_rows, schema=schema)


def _as_table(value: Any) -> dg.MetadataValue | None:
    """A table for a flat mapping (name, value), a mapping of flat mappings (one row per key)
    or a list of flat mappings (one row each); ``None`` for anything else."""
    if isinstance(value, Mapping) and value:
        if _is_flat(value):
            return records_table([{"name": str(k), "value": v} for k, v in value.items()])
        if all(_is_flat(v) for v in value.values()) and any(value.values()):
            return records_table([{"name": str(k), **v} for k, v in value.items()])
    if isinstance(value, (list, tuple)) and value and all(_is_flat(v) and v for v in value):
        return records_table(value)
    return None


def ui_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """``metadata`` as the UI should show it: floats rounded (:func:`round_significant`),
    non-finite ones and ``None`` values left out, count tables and lists of records as table
    metadata, other nested values as JSON with rounded floats. :class:`dagster.MetadataValue`
    values (markdown, paths, tables) pass unchanged."""
    shown: dict[str, Any] = {}
    for key, value in metadata.items():
        if isinstance(value, dg.MetadataValue):
            shown[key] = value
            continue
        value = _rounded(value)
        if value is None:
            continue
        shown[key] = _as_table(value) or value
    return shown


__all__ = ["SIGNIFICANT_DIGITS", "records_table", "round_significant", "ui_metadata"]
