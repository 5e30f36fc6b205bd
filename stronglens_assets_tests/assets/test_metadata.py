"""The UI's view of metadata: rounding and tables (stronglens_assets.assets.metadata)."""

from __future__ import annotations

import json
import math

import dagster as dg
import pytest

from stronglens_assets.assets.metadata import records_table, round_significant, ui_metadata


def significant_digits(value: float) -> int:
    """Significant digits of ``value`` as Python prints it (shortest repr)."""
    mantissa = repr(abs(float(value))).split("e")[0].replace(".", "")
    return len(mantissa.lstrip("0").rstrip("0")) or 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.49444444444444446, 0.4944),
        (2 / 3, 0.6667),
        (-0.000123456, -0.0001235),
        (123456.7, 123500.0),
        (5697 / 110000, 0.05179),
        (42.0, 42.0),
        # near 1, two significant digits of the distance to 1 stay visible
        (0.99995123, 0.999951),
        (0.987654, 0.9877),
        (-0.9999871, -0.999987),
    ],
)
def test_round_significant(value: float, expected: float) -> None:
    assert round_significant(value) == expected


def test_round_significant_edges() -> None:
    assert round_significant(0.0) == 0.0
    assert math.isnan(round_significant(float("nan")))
    assert round_significant(float("-inf")) == float("-inf")
    assert round_significant(1 / 3, digits=2) == 0.33
    with pytest.raises(ValueError, match="digits"):
        round_significant(1.5, digits=0)


def test_significant_digits_helper() -> None:
    assert significant_digits(0.49444444444444446) == 17
    assert significant_digits(123500.0) == 4
    assert significant_digits(0.001) == 1


def test_ui_metadata_rounds_and_tabulates() -> None:
    path = dg.MetadataValue.path("/tmp/x")
    shown = ui_metadata(
        {
            "rate": 0.49444444444444446,
            "nan": float("nan"),
            "absent": None,
            "n": 12,
            "flag": True,
            "name": "mock",
            "file": path,
            "counts": {"A": 3, "B": 7, "total": 10},
            "by_split": {"train": {"A": 2, "N1": 5}, "test": {"A": 1}, "val": {}},
            "epochs": [{"epoch": 1, "loss": 0.27031234, "val_auc": 0.5872}, {"epoch": 2}],
            "nested": {"a": {"b": {"c": 1 / 3}}},
            "items": [1 / 3, 2],
        }
    )
    assert shown["rate"] == 0.4944
    assert "nan" not in shown and "absent" not in shown
    assert (shown["n"], shown["flag"], shown["name"], shown["file"]) == (12, True, "mock", path)
    counts = shown["counts"]
    assert isinstance(counts, dg.TableMetadataValue)
    assert [(c.name, c.type) for c in counts.schema.columns] == [
        ("name", "string"),
        ("value", "int"),
    ]
    assert [r.data for r in counts.records] == [
        {"name": "A", "value": 3},
        {"name": "B", "value": 7},
        {"name": "total", "value": 10},
    ]
    by_split = shown["by_split"]
    assert [c.name for c in by_split.schema.columns] == ["name", "A", "N1"]
    assert by_split.records[2].data == {"name": "val", "A": None, "N1": None}
    epochs = shown["epochs"]
    assert [(c.name, c.type) for c in epochs.schema.columns] == [
        ("epoch", "int"),
        ("loss", "float"),
        ("val_auc", "float"),
    ]
    assert epochs.records[0].data == {"epoch": 1, "loss": 0.2703, "val_auc": 0.5872}
    assert shown["nested"] == {"a": {"b": {"c": 0.3333}}}
    assert shown["items"] == [0.3333, 2]


def test_records_table_mixed_column_is_text() -> None:
    table = records_table([{"threshold": 0.5}, {"threshold": "unresolved: too few negatives"}])
    assert table.schema.columns[0].type == "string"
    assert [r.data["threshold"] for r in table.records] == ["0.5", "unresolved: too few negatives"]


def _floats(value: object) -> list[float]:
    """Every float a metadata value shows (numbers, JSON, table cells)."""
    if isinstance(value, dg.FloatMetadataValue):
        return [value.value] if value.value is not None else []
    if isinstance(value, dg.TableMetadataValue):
        return [v for r in value.records for v in r.data.values() if isinstance(v, float)]
    if isinstance(value, dg.JsonMetadataValue):
        return _floats(json.loads(json.dumps(value.value)))
    if isinstance(value, dict):
        return [f for v in value.values() for f in _floats(v)]
    if isinstance(value, list):
        return [f for v in value for f in _floats(v)]
    return [value] if isinstance(value, float) else []


def assert_readable(metadata: dict, where: str) -> None:
    """No float in ``metadata`` shows more than 6 significant digits."""
    long = [(k, f) for k, v in metadata.items() for f in _floats(v) if significant_digits(f) > 6]
    assert not long, f"{where}: unrounded floats {long}"


def metadata_values(metadata: dict) -> dict:
    """Plain values of recorded metadata, tables of :func:`ui_metadata` read back into the
    mappings they show (``name``/``value`` rows: a flat mapping; ``name`` plus columns: a
    mapping of mappings without the empty cells)."""
    values = {}
    for key, entry in metadata.items():
        if isinstance(entry, dg.TableMetadataValue):
            columns = [c.name for c in entry.schema.columns]
            rows = [r.data for r in entry.records]
            if columns == ["name", "value"]:
                values[key] = {r["name"]: r["value"] for r in rows}
            else:
                values[key] = {
                    r["name"]: {c: v for c, v in r.items() if c != "name" and v is not None}
                    for r in rows
                }
        else:
            values[key] = entry.value
    return values


def test_metadata_values_reads_tables_back() -> None:
    original = {
        "losses_by_tier": {"A": {"gate:nobs": 2, "cutout:edge": 1}, "B": {}, "N1": {"x": 3}},
        "counts": {"train": 5, "val": 2},
        "rate": 0.25,
    }
    recorded = dg.AssetMaterialization("x", metadata=ui_metadata(original)).metadata
    assert metadata_values(recorded) == original
