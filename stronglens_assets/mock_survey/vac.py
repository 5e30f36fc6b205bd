"""The embedded default's DESI DR1 strong-lensing VAC: mock spectra of the real candidates.

The real VAC holds DESI spectroscopy of lens candidates. The demo's VAC has one row per
*lenscat* candidate that the demo sky renders (never the extra ``source = "mock"`` lenses),
written with the real schema
(:func:`~stronglens_assets.science.catalogs.desi_vac.write_mock_desi_vac`).
Lens redshifts: the lenscat ``zlens`` where it is numeric, else a draw from U(0.2, 0.9) (the
range of DESI LRG deflectors) seeded by the sky seed.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from stronglens_assets.science.catalogs.desi_vac import write_mock_desi_vac

VAC_RELATIVE_PATH = "desi_dr1/desi-sl-vac-v1.fits"
Z_RANGE = (0.2, 0.9)


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
