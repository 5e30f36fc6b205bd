"""Tests of stronglens_assets.science.catalogs.desi_vac: mock writer round trip, schema errors."""

from __future__ import annotations

from pathlib import Path

import healpy as hp
import numpy as np
import pytest
from astropy.io import fits

from stronglens_assets.mock_survey.vac import write_mock_desi_vac
from stronglens_assets.science.catalogs import desi_vac as V

RA = np.array([10.0, 359.95, 0.02, 150.1, 36.5])
DEC = np.array([-5.0, 5.0, 89.5, -60.0, -4.4])
Z = np.array([0.3, 0.5, 0.7, 0.21, 1.1])


def test_mock_round_trip(tmp_path: Path) -> None:
    path = write_mock_desi_vac(tmp_path / "vac.fits", RA, DEC, Z, seed=7)
    frame = V.read_desi_vac(path)
    assert list(frame.columns) == list(V.vac_frame_columns())
    assert len(frame) == RA.size
    np.testing.assert_array_equal(frame["TARGET_RA"], RA)
    np.testing.assert_array_equal(frame["TARGET_DEC"], DEC)
    np.testing.assert_array_equal(frame["Z"], Z)
    expected_pix = hp.ang2pix(64, RA, DEC, nest=True, lonlat=True)
    np.testing.assert_array_equal(frame["HEALPIX"], expected_pix)
    np.testing.assert_array_equal(frame["SPGRPVAL"], expected_pix)
    assert frame["TARGETID"].dtype == np.int64 and frame["TARGETID"].is_unique
    assert frame["SPECTYPE"].tolist() == ["GALAXY"] * RA.size
    assert frame["SURVEY"].tolist() == ["main"] * RA.size
    assert (frame["ZWARN"] == 0).all() and (frame["NCOEFF"] == V.N_COEFF).all()
    coeff = frame[list(V.COEFF_COLUMNS)].to_numpy()
    assert coeff.shape == (RA.size, 10) and np.isfinite(coeff).all()
    # the raw file has the documented HDU and the COEFF 10-vector
    with fits.open(path) as hdul:
        hdu = hdul[V.DESI_VAC_HDU]
        assert hdu.columns.names == list(V.DESI_VAC_COLUMNS)
        assert hdu.data["COEFF"].shape == (RA.size, 10)
        assert hdu.columns["TARGETID"].format == "K"


def test_mock_bytes_are_deterministic(tmp_path: Path) -> None:
    a = write_mock_desi_vac(tmp_path / "a.fits", RA, DEC, Z, seed=7).read_bytes()
    b = write_mock_desi_vac(tmp_path / "b.fits", RA, DEC, Z, seed=7).read_bytes()
    c = write_mock_desi_vac(tmp_path / "c.fits", RA, DEC, Z, seed=8).read_bytes()
    assert a == b
    assert a != c


def test_read_from_bytes_matches_path(tmp_path: Path) -> None:
    path = write_mock_desi_vac(tmp_path / "vac.fits", RA, DEC, Z, seed=1)
    assert V.read_desi_vac(path.read_bytes()).equals(V.read_desi_vac(path))


def test_missing_columns_are_named(tmp_path: Path) -> None:
    path = write_mock_desi_vac(tmp_path / "full.fits", RA, DEC, Z, seed=1)
    with fits.open(path) as hdul:
        cols = [c for c in hdul[V.DESI_VAC_HDU].columns if c.name not in ("ZERR", "COEFF")]
        table = fits.BinTableHDU.from_columns(cols, name=V.DESI_VAC_HDU)
        fits.HDUList([fits.PrimaryHDU(), table]).writeto(tmp_path / "cut.fits")
    with pytest.raises(V.CatalogSchemaError) as info:
        V.read_desi_vac(tmp_path / "cut.fits")
    msg = str(info.value)
    assert "cut.fits" in msg and "'ZERR'" in msg and "'COEFF'" in msg
    with pytest.raises(V.CatalogSchemaError, match="my-upload"):
        V.read_desi_vac((tmp_path / "cut.fits").read_bytes(), name="my-upload")


def test_missing_hdu_and_not_fits(tmp_path: Path) -> None:
    path = write_mock_desi_vac(tmp_path / "full.fits", RA, DEC, Z, seed=1)
    with fits.open(path) as hdul:
        renamed = fits.BinTableHDU(hdul[1].data, name="SOMETHING_ELSE")
        fits.HDUList([fits.PrimaryHDU(), renamed]).writeto(tmp_path / "other.fits")
    with pytest.raises(V.CatalogSchemaError, match="DESI_SL_CATALOG"):
        V.read_desi_vac(tmp_path / "other.fits")
    (tmp_path / "junk.fits").write_bytes(b"not a fits file")
    with pytest.raises(V.CatalogSchemaError, match=r"junk\.fits"):
        V.read_desi_vac(tmp_path / "junk.fits")


def test_bad_coordinates_are_reported(tmp_path: Path) -> None:
    path = write_mock_desi_vac(tmp_path / "v.fits", RA, DEC, Z, seed=1)
    with fits.open(path) as hdul:
        data = hdul[1].data.copy()
        data["TARGET_DEC"][:2] = np.nan
        fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU(data, name=V.DESI_VAC_HDU)]).writeto(
            tmp_path / "nan.fits"
        )
    with pytest.raises(V.CatalogValueError) as info:
        V.read_desi_vac(tmp_path / "nan.fits")
    assert "'TARGET_DEC'" in str(info.value) and "2 row(s)" in str(info.value)


def test_writer_rejects_mismatched_inputs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="same length"):
        write_mock_desi_vac(tmp_path / "x.fits", RA, DEC[:2], Z, seed=0)
