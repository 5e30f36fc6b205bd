"""Synthetic DR10 sweep tables (tests and benchmarks only; never used by the pipeline)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from stronglens_assets.science.catalogs.bricks import brick_name
from stronglens_assets.science.catalogs.sweeps import normalize_sweep
from stronglens_assets.science.core.units import mag_to_nanomaggies

__all__ = ["synthetic_sweep"]


def synthetic_sweep(
    n: int,
    seed: int,
    *,
    ra_range: tuple[float, float] = (35.0, 37.0),
    dec_range: tuple[float, float] = (-5.0, -3.0),
) -> pd.DataFrame:
    """Seeded synthetic sweep table with realistic columns (for tests and benchmarks only).

    Uniform positions in the RA/Dec box [deg]; Tractor TYPE mix (35% PSF, 30% REX, 15% EXP,
    10% DEV, 9% SER, 1% DUP); a red (LRG-like, 30%) and a blue galaxy population; z magnitudes
    rising steeply to the faint end; fluxes in nanomaggies with noise (some non-positive);
    occasional MASKBITS and NOBS = 0. Dtypes as :data:`SWEEP_DTYPES`; BRICKNAME from the DR10
    brick grid, OBJID unique within a brick.
    """
    rng = np.random.default_rng(seed)
    ra = rng.uniform(*ra_range, size=n)
    dec = np.rad2deg(np.arcsin(rng.uniform(*np.sin(np.deg2rad(np.asarray(dec_range))), size=n)))
    types = np.array(["PSF", "REX", "EXP", "DEV", "SER", "DUP"])
    tcode = rng.choice(6, size=n, p=[0.35, 0.30, 0.15, 0.10, 0.09, 0.01])
    red = rng.random(n) < 0.30
    mag_z = 24.0 - rng.exponential(3.0, size=n)
    mag_z = np.maximum(mag_z, 15.0)
    g_r = np.where(red, rng.normal(1.7, 0.3, n), rng.normal(0.6, 0.3, n))
    r_z = np.where(red, rng.normal(1.4, 0.3, n), rng.normal(0.5, 0.3, n))
    z_w1 = np.where(red, rng.normal(1.3, 0.5, n), rng.normal(0.3, 0.5, n))
    mags = {"Z": mag_z, "R": mag_z + r_z, "G": mag_z + r_z + g_r, "W1": mag_z - z_w1}
    mw = {b: rng.uniform(lo, 1.0, n) for b, lo in (("G", 0.80), ("R", 0.86), ("Z", 0.92))}
    mw["W1"] = rng.uniform(0.98, 1.0, n)
    noise = {"G": 0.05, "R": 0.07, "Z": 0.2, "W1": 1.0}  # nanomaggies
    cols: dict[str, Any] = {"RA": ra, "DEC": dec}
    for band in ("G", "R", "Z", "W1"):
        flux = mag_to_nanomaggies(mags[band]) * mw[band]
        cols[f"FLUX_{band}"] = flux + rng.normal(0.0, noise[band], n)
        cols[f"FLUX_IVAR_{band}"] = np.full(n, 1.0 / noise[band] ** 2)
        cols[f"MW_TRANSMISSION_{band}"] = mw[band]
    psf = tcode == 0
    shape_r = np.where(
        psf, 0.0, rng.lognormal(np.where(tcode == 1, np.log(0.5), np.log(1.0)), 0.5, n)
    )
    sersic = np.select(
        [tcode == 4, tcode == 3, psf], [rng.uniform(0.5, 6.0, n), 4.0, 0.0], default=1.0
    )
    cols["SHAPE_R"] = shape_r
    cols["SERSIC"] = sersic
    for band in ("G", "R", "Z"):
        cols[f"NOBS_{band}"] = np.where(rng.random(n) < 0.03, 0, rng.integers(1, 8, n))
        cols[f"PSFSIZE_{band}"] = rng.uniform(0.9, 1.6, n)
    frac = np.where(psf, 0.78, rng.uniform(0.15, 0.6, n))
    cols["FIBERFLUX_Z"] = cols["FLUX_Z"] * frac
    bits = rng.choice([1, 5, 8, 12, 13], size=n)
    cols["MASKBITS"] = np.where(rng.random(n) < 0.05, 1 << bits, 0)
    names = np.asarray(brick_name(ra, dec))
    order = np.argsort(names, kind="stable")
    objid = np.empty(n, dtype=np.int64)
    sorted_names = names[order]
    starts = np.flatnonzero(np.r_[True, sorted_names[1:] != sorted_names[:-1]])
    run = np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n]))
    objid[order] = run
    frame = pd.DataFrame(cols)
    frame.insert(2, "BRICKNAME", pd.array(names, dtype="str"))
    frame.insert(3, "OBJID", objid)
    frame.insert(4, "TYPE", pd.array(types[tcode], dtype="str"))
    return normalize_sweep(frame, "synthetic sweep")
