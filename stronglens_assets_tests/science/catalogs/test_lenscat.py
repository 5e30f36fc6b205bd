"""Tests of stronglens_assets.science.catalogs.lenscat on the real lenscat package data."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stronglens_assets.science.catalogs import lenscat as L


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    return L.read_lenscat_csv(L.lenscat_csv_path())


def test_csv_path_is_package_data() -> None:
    path = L.lenscat_csv_path()
    assert path.is_file()
    assert path.parts[-3:] == ("lenscat", "data", "catalog.csv")


def test_real_catalog_counts(raw: pd.DataFrame) -> None:
    assert len(raw) == 32_838
    desi = L.desi_candidates(raw)
    assert len(desi) == 5_104
    assert (desi["tier"] == "A").sum() == 435
    assert (desi["tier"] == "B").sum() == 4_669
    assert set(desi.loc[desi["tier"] == "A", "grading"]) == {"confident"}
    assert set(desi.loc[desi["tier"] == "B", "grading"]) == {"probable"}
    assert desi["lens_type"].value_counts().to_dict() == {"galaxy": 5095, "cluster": 7, "group": 2}
    assert desi["name"].str.contains("DESI-", regex=False).all()


def test_desi_candidates_columns_and_dtypes(raw: pd.DataFrame) -> None:
    desi = L.desi_candidates(raw)
    assert list(desi.columns) == [
        "name", "ra", "dec", "tier", "grading", "zlens", "ref", "lens_type"
    ]  # fmt: skip
    assert desi["ra"].dtype == np.float64 and desi["dec"].dtype == np.float64
    assert str(desi["zlens"].dtype) == "Float64"
    assert desi["ra"].between(0, 360).all() and desi["dec"].between(-90, 90).all()
    assert desi["zlens"].notna().sum() > 4_000  # most DESI candidates have a redshift
    assert (desi["zlens"].dropna() >= 0).all()


def test_all_known_lens_positions(raw: pd.DataFrame) -> None:
    ra, dec = L.all_known_lens_positions(raw)
    assert ra.shape == dec.shape == (32_838,)
    assert ra.dtype == np.float64 and np.isfinite(ra).all() and np.isfinite(dec).all()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.4", 0.4),
        ("0.4?", 0.4),
        ("1.30?", 1.3),
        ("0.3 | 0.35", 0.3),
        ("nan | 0.2", 0.2),
        ("0.905? measured", 0.905),
        ("0.23 | - | nan", 0.23),
        ("-", None),
        ("measured", None),
        ("not measured", None),
        ("nan", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_zlens(text: str | None, expected: float | None) -> None:
    value = L.parse_zlens([text]).iloc[0]
    if expected is None:
        assert value is pd.NA
    else:
        assert value == pytest.approx(expected)


def _write_csv(path: Path, frame: pd.DataFrame) -> Path:
    frame.to_csv(path, index=False)
    return path


def _tiny_catalog() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "name": ["DESI-001.0000+01.0000", "J0000+0000", "X | DESI-359.9000-45.0000"],
            "RA [deg]": [1.0, 0.1, 359.9],
            "DEC [deg]": [1.0, 0.0, -45.0],
            "zlens": ["0.4?", "-", "0.3 | 0.35"],
            "type": ["galaxy", "galaxy", "cluster"],
            "grading": ["confident", "probable", "probable"],
            "ref": ["a", "b", "c"],
        }
    )


def test_small_catalog_selection(tmp_path: Path) -> None:
    raw = L.read_lenscat_csv(_write_csv(tmp_path / "cat.csv", _tiny_catalog()))
    desi = L.desi_candidates(raw)
    assert desi["tier"].tolist() == ["A", "B"]
    assert desi["zlens"].tolist() == [pytest.approx(0.4), pytest.approx(0.3)]
    assert desi["lens_type"].tolist() == ["galaxy", "cluster"]


def test_missing_column_names_file_and_column(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "broken.csv", _tiny_catalog().drop(columns=["grading", "zlens"]))
    with pytest.raises(L.CatalogSchemaError) as info:
        L.read_lenscat_csv(path)
    msg = str(info.value)
    assert "broken.csv" in msg and "'grading'" in msg and "'zlens'" in msg


def test_bad_coordinates_name_file_column_and_count(tmp_path: Path) -> None:
    frame = _tiny_catalog()
    frame["DEC [deg]"] = ["", "95.0", "1.0"]  # one empty (NaN), one out of range
    path = _write_csv(tmp_path / "coords.csv", frame)
    with pytest.raises(L.CatalogValueError) as info:
        L.read_lenscat_csv(path)
    msg = str(info.value)
    assert "coords.csv" in msg and "'DEC [deg]'" in msg and "2 row(s)" in msg
    assert isinstance(info.value, ValueError)


def test_unknown_grading_is_an_error(tmp_path: Path) -> None:
    frame = _tiny_catalog()
    frame.loc[0, "grading"] = "maybe"
    raw = L.read_lenscat_csv(_write_csv(tmp_path / "g.csv", frame))
    with pytest.raises(L.CatalogSchemaError, match="maybe"):
        L.desi_candidates(raw)


def test_checksum_is_sha256_of_bytes(tmp_path: Path) -> None:
    path = L.lenscat_csv_path()
    assert L.catalog_checksum(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    a = _write_csv(tmp_path / "a.csv", _tiny_catalog())
    before = L.catalog_checksum(a)
    a.write_bytes(a.read_bytes() + b"\n")
    assert L.catalog_checksum(a) != before
