"""The embedded default's DESI DR1 strong-lensing VAC: mock spectra of the real candidates.

The real VAC holds DESI spectroscopy of lens candidates. The demo's VAC has one row per
*lenscat* candidate that the demo sky renders (never the extra ``source = "mock"`` lenses),
written with the real schema (:func:`write_mock_desi_vac`, also used by tests that need a VAC
file) and read back by the same reader as the real one
(:func:`~stronglens_assets.science.catalogs.desi_vac.read_desi_vac`).
Lens redshifts: the lenscat ``zlens`` where it is numeric, else a draw from U(0.2, 0.9) (the
range of DESI LRG deflectors) seeded by the sky seed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from astropy.io import fits

from stronglens_assets.science.catalogs.desi_vac import (
    DESI_VAC_FORMATS,
    DESI_VAC_HDU,
    DESI_VAC_HEALPIX_NSIDE,
    N_COEFF,
)
from stronglens_assets.science.catalogs.healpix import healpix_pixel

VAC_RELATIVE_PATH = "desi_dr1/desi-sl-vac-v1.fits"
Z_RANGE = (0.2, 0.9)


def write_mock_desi_vac(
    path: str | os.PathLike[str],
    ra: npt.ArrayLike,
    dec: npt.ArrayLike,
    z: npt.ArrayLike,
    seed: int,
    *,
    survey: str = "main",
    program: str = "dark",
    spectype: str = "GALAXY",
    targetid_base: int = 39_627_000_000_000_000,
    extra_header: dict[str, Any] | None = None,
) -> Path:
    """Write a mock ``desi-sl-vac-v1.fits`` with the real schema for lenses at (ra, dec) [deg].

    HEALPIX (and SPGRPVAL) are the nside-64 NEST pixels of (TARGET_RA, TARGET_DEC); TARGETID,
    ZERR, CHI2, COEFF, NPIXELS and DELTACHI2 are drawn from ``numpy.random.default_rng(seed)``
    with plausible redrock values; ZWARN, COADD_FIBERSTATUS = 0. Same inputs -> same bytes
    (no dates in the headers; DATASUM/CHECKSUM are content hashes). Returns ``path``.
    """
    ra_a = np.atleast_1d(np.asarray(ra, dtype=np.float64)) % 360.0
    dec_a = np.atleast_1d(np.asarray(dec, dtype=np.float64))
    z_a = np.atleast_1d(np.asarray(z, dtype=np.float64))
    if not (ra_a.shape == dec_a.shape == z_a.shape) or ra_a.ndim != 1:
        raise ValueError("ra, dec and z must be 1-D arrays of the same length")
    if np.any(~np.isfinite(z_a) | (z_a < 0)):
        raise ValueError("z must be finite and >= 0")
    n = ra_a.size
    rng = np.random.default_rng(seed)
    healpix = np.asarray(healpix_pixel(ra_a, dec_a, DESI_VAC_HEALPIX_NSIDE), dtype=np.int32)
    offset = int(rng.integers(0, 10**6))
    npixels = rng.integers(7600, 7900, size=n).astype(np.int64)
    coeff = rng.normal(0.0, 1.0, size=(n, N_COEFF)) * np.geomspace(100.0, 0.1, N_COEFF)
    values: dict[str, Any] = {
        "TARGETID": targetid_base + offset * 10**6 + np.arange(n, dtype=np.int64),
        "SURVEY": np.full(n, survey),
        "PROGRAM": np.full(n, program),
        "HEALPIX": healpix,
        "SPGRPVAL": healpix,
        "Z": z_a,
        "ZERR": 1e-4 * (1.0 + z_a) * rng.lognormal(0.0, 0.3, size=n),
        "ZWARN": np.zeros(n, dtype=np.int64),
        "CHI2": npixels * rng.normal(1.0, 0.05, size=n),
        "COEFF": coeff,
        "NPIXELS": npixels,
        "SPECTYPE": np.full(n, spectype),
        "SUBTYPE": np.full(n, ""),
        "NCOEFF": np.full(n, N_COEFF, dtype=np.int64),
        "DELTACHI2": rng.lognormal(np.log(500.0), 1.0, size=n),
        "COADD_FIBERSTATUS": np.zeros(n, dtype=np.int32),
        "TARGET_RA": ra_a,
        "TARGET_DEC": dec_a,
    }
    cols = [fits.Column(name=k, format=DESI_VAC_FORMATS[k], array=v) for k, v in values.items()]
    table = fits.BinTableHDU.from_columns(cols, name=DESI_VAC_HDU)
    table.header["HPXNSIDE"] = (DESI_VAC_HEALPIX_NSIDE, "HEALPIX nside")
    table.header["HPXNEST"] = (True, "HEALPIX is NESTED")
    table.header["MOCK"] = (True, "simulated by stronglens_assets")
    table.header["MOCKSEED"] = (int(seed), "seed of the mock values")
    for key, val in (extra_header or {}).items():
        table.header[key] = val
    primary = fits.PrimaryHDU()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fits.HDUList([primary, table]).writeto(out, overwrite=True, checksum=True)
    return out


def demo_vac_rows(lenses: pd.DataFrame, zlens: pd.Series, seed: int) -> pd.DataFrame:
    """VAC rows (ra, dec, z, name) for the lenscat lenses of the demo sky.

    Args:
        lenses: truth lens table(s) of the mock survey (columns source, name, ra, dec).
        zlens: lenscat redshift per candidate name (nullable float), NA where unknown.
        seed: the sky seed.
    """
    real = lenses[lenses["source"] == "lenscat"].sort_values("name", ignore_index=True)
    rng = np.random.default_rng([seed, 64])
    drawn = rng.uniform(*Z_RANGE, size=len(real))
    known = real["name"].map(zlens).astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    z = np.where(np.isfinite(known), known, drawn)
    return pd.DataFrame({"name": real["name"], "ra": real["ra"], "dec": real["dec"], "z": z})


def write_demo_vac(root: str | os.PathLike[str], rows: pd.DataFrame, seed: int) -> Path:
    """Write the demo VAC under ``root`` (atomic: temp file + rename); return its path."""
    path = Path(root) / VAC_RELATIVE_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    write_mock_desi_vac(tmp, rows["ra"], rows["dec"], rows["z"], seed)
    os.replace(tmp, path)
    return path
