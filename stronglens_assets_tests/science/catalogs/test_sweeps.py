"""Tests of stronglens_assets.science.catalogs.sweeps: Parquet/FITS sweeps, checks, dtypes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.table import Table

from stronglens_assets.science.catalogs import sweeps as S
from stronglens_assets.testing.sweeps import synthetic_sweep


@pytest.fixture(scope="module")
def sweep() -> pd.DataFrame:
    return synthetic_sweep(500, seed=3)


def test_synthetic_sweep_schema(sweep: pd.DataFrame) -> None:
    for name, dtype in S.SWEEP_DTYPES.items():
        if dtype is str:
            assert sweep[name].dtype == "str", name
        else:
            assert sweep[name].dtype == dtype, name
    assert set(sweep["TYPE"]) <= set(S.SWEEP_TYPES)
    assert not sweep.duplicated(["BRICKNAME", "OBJID"]).any()
    assert synthetic_sweep(500, seed=3).equals(sweep)


def _raw_table(sweep: pd.DataFrame) -> Table:
    """The sweep as astropy writes it: big-endian FITS, fixed-width strings, int32 OBJID."""
    table = Table.from_pandas(sweep.astype({"BRICKNAME": object, "TYPE": object}))
    table["OBJID"] = table["OBJID"].astype(np.int32)
    table["TYPE"] = np.array([t.ljust(4) for t in sweep["TYPE"]], dtype="S4")
    table["BRICK_PRIMARY"] = np.arange(len(sweep)) % 5 != 0
    table["DCHISQ"] = np.ones((len(sweep), 5), dtype=np.float32)
    return table


def test_fits_round_trip(tmp_path: Path, sweep: pd.DataFrame) -> None:
    path = tmp_path / "sweep-0350m050-0370m030.fits"
    _raw_table(sweep).write(path)
    got = S.read_sweep(path)
    primary = np.arange(len(sweep)) % 5 != 0
    expected = sweep.loc[primary].reset_index(drop=True)
    assert len(got) == primary.sum()
    for name in S.SWEEP_COLUMNS:
        np.testing.assert_array_equal(got[name].to_numpy(), expected[name].to_numpy(), name)
    assert got["OBJID"].dtype == np.int64 and got["TYPE"].dtype == "str"
    assert got["FLUX_G"].dtype == np.float32 and got["FLUX_G"].dtype.isnative
    assert [f"DCHISQ_{i}" for i in range(5)] == [c for c in got.columns if c.startswith("DCHISQ")]
    only = S.read_sweep(path, columns=[])
    assert set(only.columns) == {*S.SWEEP_COLUMNS, "BRICK_PRIMARY"}


def test_parquet_round_trip_and_extra_columns(tmp_path: Path, sweep: pd.DataFrame) -> None:
    frame = sweep.assign(PSFDEPTH_Z=np.float32(100.0), OBJID=sweep["OBJID"].astype(np.int32))
    frame["TYPE"] = frame["TYPE"].astype(object) + " "  # padded strings are stripped
    path = tmp_path / "sweep.parquet"
    frame.to_parquet(path)
    got = S.read_sweep(path)
    assert got["OBJID"].dtype == np.int64
    assert got["TYPE"].tolist() == sweep["TYPE"].tolist()
    assert "PSFDEPTH_Z" in got.columns
    assert "PSFDEPTH_Z" not in S.read_sweep(path, columns=["FLUX_IVAR_G"]).columns


def test_missing_columns_named(tmp_path: Path, sweep: pd.DataFrame) -> None:
    path = tmp_path / "short.parquet"
    sweep.drop(columns=["MASKBITS", "FLUX_W1"]).to_parquet(path)
    with pytest.raises(S.CatalogSchemaError) as info:
        S.read_sweep(path)
    msg = str(info.value)
    assert "short.parquet" in msg and "'MASKBITS'" in msg and "'FLUX_W1'" in msg
    fits_path = tmp_path / "short.fits"
    _raw_table(sweep.drop(columns=["SERSIC"])).write(fits_path)
    with pytest.raises(S.CatalogSchemaError, match=r"short\.fits.*'SERSIC'"):
        S.read_sweep(fits_path)


@pytest.mark.parametrize("suffix", [".parquet", ".fits"])
def test_nan_coordinates_named(tmp_path: Path, sweep: pd.DataFrame, suffix: str) -> None:
    bad = sweep.copy()
    bad.loc[[1, 7, 9], "DEC"] = np.nan
    bad.loc[3, "RA"] = np.inf
    path = tmp_path / f"nan{suffix}"
    if suffix == ".parquet":
        bad.to_parquet(path)
    else:
        table = _raw_table(bad)
        table["BRICK_PRIMARY"] = True
        table.write(path)
    with pytest.raises(S.CatalogValueError) as info:
        S.read_sweep(path)
    msg = str(info.value)
    assert f"nan{suffix}" in msg
    assert "'DEC': 3 " in msg and "'RA': 1 " in msg


def test_unknown_format(tmp_path: Path) -> None:
    path = tmp_path / "sweep.csv"
    path.write_text("RA,DEC\n")
    with pytest.raises(S.CatalogSchemaError, match="unknown format"):
        S.read_sweep(path)
