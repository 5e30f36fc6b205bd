"""Benchmark: columnar negative-pool builder against a plain-pandas reference, one core.

Generates a seeded synthetic sweep partition (default 2,000,000 rows, a ~13 deg^2 box in the
XMM-LSS field, so real lenscat lenses fall inside it), then times

* ``build_negative_pool`` (stronglens_assets.science.samples.pool) on the whole partition, and
* a reference written the obvious pandas way: ``DataFrame.apply(axis=1)`` with a Python
  function per row for the quality gates and the N1/N2 rules, astropy
  ``SkyCoord.match_to_catalog_sky`` for the known-lens exclusion, a per-cell Python hash
  (``Series.map``) for the split and a ``healpy.query_polygon`` per candidate (no neighbour
  pre-filter) for the split guard. The row-wise ``apply`` is far too slow for millions of rows,
  so it runs on a random subsample (default 100,000 rows) and its rate is extrapolated.

Both run in this process, pinned to one CPU with BLAS/OpenMP/Arrow thread pools at 1. The
builder is also run on the subsample and the two results are compared row by row.

Run: ``.venv/bin/python bench/negative_pool.py [--rows N] [--subsample M]``.
"""

from __future__ import annotations

import os

for _var in (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import astropy.units as u  # noqa: E402
import healpy as hp  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
from astropy.coordinates import SkyCoord  # noqa: E402

from stronglens_assets.science.catalogs.lenscat import (  # noqa: E402
    all_known_lens_positions,
    lenscat_csv_path,
    read_lenscat_csv,
)
from stronglens_assets.science.core.units import AB_ZERO_POINT  # noqa: E402
from stronglens_assets.science.samples.negative_config import (  # noqa: E402
    NEGATIVES_CONFIG_FILENAME,
    NegativeSelectionConfig,
    load_negative_selection_config,
)
from stronglens_assets.science.samples.pool import build_negative_pool  # noqa: E402
from stronglens_assets.settings import PROJECT_ROOT  # noqa: E402
from stronglens_assets.testing.sweeps import synthetic_sweep  # noqa: E402

_MASK64 = (1 << 64) - 1


def _pin_one_core() -> str:
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    if hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"pinned to CPU {cpu}"
    return "not pinned (no sched_setaffinity)"


# ----------------------------------------------------------------------------------------------
# the reference: plain pandas, one Python call per row
# ----------------------------------------------------------------------------------------------
def _splitmix64(x: int) -> int:
    z = (x + 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def reference_pool(
    df: pd.DataFrame,
    lens_ra: np.ndarray,
    lens_dec: np.ndarray,
    cfg: NegativeSelectionConfig,
    partition_key: str,
) -> pd.DataFrame:
    """The same selection written the obvious way (row-wise ``apply``)."""
    q, n1, n2 = cfg.quality, cfg.n1, cfg.n2
    bad_bits = sum(1 << b for b in q.exclude_maskbits)

    def mag(flux: float, mw: float) -> float:
        if not float(mw) > 0:
            return math.nan
        f = float(flux) / float(mw)
        return AB_ZERO_POINT - 2.5 * math.log10(f) if f > 0 else math.nan

    def classify(row: pd.Series) -> str:
        if not (row["FLUX_G"] > 0 and row["FLUX_R"] > 0 and row["FLUX_Z"] > 0):
            return ""
        if not all(row[f"MW_TRANSMISSION_{b}"] > 0 for b in "GRZ"):
            return ""
        if min(row["NOBS_G"], row["NOBS_R"], row["NOBS_Z"]) < q.min_nobs:
            return ""
        if int(row["MASKBITS"]) & bad_bits:
            return ""
        kind = row["TYPE"]
        if kind in q.exclude_types:
            return ""
        z = mag(row["FLUX_Z"], row["MW_TRANSMISSION_Z"])
        if not z < q.max_mag_z:
            return ""
        g = mag(row["FLUX_G"], row["MW_TRANSMISSION_G"])
        r = mag(row["FLUX_R"], row["MW_TRANSMISSION_R"])
        w1 = mag(row["FLUX_W1"], row["MW_TRANSMISSION_W1"])
        zfib = mag(row["FIBERFLUX_Z"], row["MW_TRANSMISSION_Z"])
        rw1 = r - w1
        is_n1 = (
            kind in n1.types
            and z - w1 > n1.zw1_rz_slope * (r - z) + n1.zw1_rz_intercept
            and zfib < n1.max_zfiber_mag
            and (g - w1 > n1.min_gw1 or rw1 > n1.min_rw1)
            and (
                (rw1 > n1.rw1_w1_slope * (w1 - n1.rw1_w1_pivot) and rw1 > w1 - n1.rw1_w1_offset)
                or rw1 > n1.min_rw1_red
            )
        )
        n2_rule = ""
        if kind in n2.extended_types and row["SHAPE_R"] >= n2.min_shape_r_arcsec:
            n2_rule = "extended"
        elif kind in n2.sersic_types and row["SERSIC"] >= n2.min_sersic:
            n2_rule = "high_sersic"
        elif (
            kind in n2.blue_types
            and g - r < n2.max_gr_blue
            and row["SHAPE_R"] >= n2.min_shape_r_blue_arcsec
        ):
            n2_rule = "blue_extended"
        if is_n1 and (cfg.overlap_class == "N1" or not n2_rule):
            return "N1 lrg"
        if n2_rule:
            return "N2 " + n2_rule
        return ""

    labels = df.apply(classify, axis=1)
    cand = df.loc[labels != ""].copy()
    cand["pool_class"] = labels[labels != ""].str.split(" ").str[0]
    cand["pool_rule"] = labels[labels != ""].str.split(" ").str[1]
    src = SkyCoord(cand["RA"].to_numpy() * u.deg, cand["DEC"].to_numpy() * u.deg)
    _, sep, _ = src.match_to_catalog_sky(SkyCoord(lens_ra * u.deg, lens_dec * u.deg))
    cand = cand.loc[sep.to_value(u.arcsec) > cfg.exclusion_radius_arcsec].copy()
    key = _splitmix64(cfg.split_seed)
    fr = cfg.split_fractions

    def split_of(cell: int) -> str:
        v = (_splitmix64(int(cell) ^ key) >> 11) * 2.0**-53
        return "train" if v < fr.train else ("val" if v < fr.train + fr.val else "test")

    # split guard, with no pre-filter: every candidate's box queried
    h = cfg.split_guard_half_width_arcsec / 3600.0
    fact = max(4, 2**18 // cfg.split_nside)

    def guarded(ra: float, dec: float) -> bool:
        if h == 0:
            return False
        own = split_of(hp.ang2pix(cfg.split_nside, ra, dec, nest=True, lonlat=True))
        dra = h / math.cos(math.radians(dec))
        corners = hp.ang2vec(
            [ra - dra, ra + dra, ra + dra, ra - dra],
            [dec - h, dec - h, dec + h, dec + h],
            lonlat=True,
        )
        touched = hp.query_polygon(cfg.split_nside, corners, inclusive=True, nest=True, fact=fact)
        return any(split_of(cell) != own for cell in touched)

    keep = [not guarded(ra, dec) for ra, dec in zip(cand["RA"], cand["DEC"], strict=True)]
    cand = cand.loc[keep].copy()
    cells = hp.ang2pix(cfg.split_nside, cand["RA"], cand["DEC"], nest=True, lonlat=True)

    cand["split_cell"] = cells
    cand["split"] = pd.Series(cells, index=cand.index).map(split_of)
    cand["source_partition"] = partition_key
    cand["selection_version"] = cfg.selection_version
    return cand.reset_index(drop=True)


# ----------------------------------------------------------------------------------------------
def _timed(fn, repeats: int) -> tuple[list[float], list[float], object]:
    walls, cpus, out = [], [], None
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return walls, cpus, out


def _key_frame(df: pd.DataFrame) -> pd.DataFrame:
    cols = ["BRICKNAME", "OBJID", "pool_class", "pool_rule", "split", "split_cell"]
    out = df[cols].astype({c: str for c in ("BRICKNAME", "pool_class", "pool_rule", "split")})
    return out.sort_values(["BRICKNAME", "OBJID"]).reset_index(drop=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--subsample", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=12345)
    args = parser.parse_args()

    pinned = _pin_one_core()
    cfg = load_negative_selection_config(PROJECT_ROOT / "configs" / NEGATIVES_CONFIG_FILENAME)
    lens_ra, lens_dec = all_known_lens_positions(read_lenscat_csv(lenscat_csv_path()))
    t0 = time.perf_counter()
    sweep = synthetic_sweep(
        args.rows, args.seed, ra_range=(34.2, 37.8), dec_range=(-6.3, -2.7)
    )  # ~12.9 deg^2 around the XMM-LSS field
    t_gen = time.perf_counter() - t0
    print(f"python {platform.python_version()}, numpy {np.__version__}, pandas {pd.__version__}")
    print(f"threads: OMP/BLAS/Arrow = 1, {pinned}")
    print(f"synthetic sweep: {len(sweep):,} rows x {sweep.shape[1]} columns ({t_gen:.1f} s)")
    print(f"known lenses: {lens_ra.size:,} (all lenscat rows); config {cfg.selection_version}")

    # columnar builder on the full partition
    build_negative_pool(sweep.iloc[:10_000], lens_ra, lens_dec, cfg, "warmup")
    walls, cpus, pool = _timed(
        lambda: build_negative_pool(sweep, lens_ra, lens_dec, cfg, "1105"), args.repeats
    )
    assert isinstance(pool, pd.DataFrame)
    best = min(walls)
    fast_rate = len(sweep) / statistics.median(walls)
    print("\nbuild_negative_pool (columnar NumPy), full partition:")
    print(
        f"  wall per run: median {statistics.median(walls):.3f} s, best {best:.3f} s "
        f"({args.repeats} runs); CPU time median {statistics.median(cpus):.3f} s"
    )
    print(
        f"  throughput: {fast_rate / 1e6:.2f} M rows/s (median wall), "
        f"{len(sweep) / best / 1e6:.2f} M rows/s (best wall), "
        f"{len(sweep) / statistics.median(cpus) / 1e6:.2f} M rows/s (median CPU time)"
    )
    print(f"  stats: {pool.attrs['pool_stats']}")

    # plain-pandas reference on a subsample, extrapolated
    rng = np.random.default_rng(args.seed)
    pick = np.sort(rng.choice(len(sweep), size=min(args.subsample, len(sweep)), replace=False))
    sub = sweep.iloc[pick].reset_index(drop=True)
    ref_walls, ref_cpus, ref = _timed(
        lambda: reference_pool(sub, lens_ra, lens_dec, cfg, "1105"), 1
    )
    assert isinstance(ref, pd.DataFrame)
    ref_rate = len(sub) / ref_walls[0]
    print(f"\nreference (DataFrame.apply per row), subsample of {len(sub):,} rows:")
    print(
        f"  wall {ref_walls[0]:.2f} s (CPU {ref_cpus[0]:.2f} s) -> {ref_rate:,.0f} rows/s; "
        f"extrapolated to {len(sweep):,} rows: {len(sweep) / ref_rate:.0f} s"
    )

    fast_sub = build_negative_pool(sub, lens_ra, lens_dec, cfg, "1105")
    a, b = _key_frame(fast_sub), _key_frame(ref)
    same = a.equals(b)
    print(
        "\nidentical results on the subsample "
        f"({len(a):,} pool rows: N1 {int((a.pool_class == 'N1').sum()):,}, "
        f"N2 {int((a.pool_class == 'N2').sum()):,}): {same}"
    )
    if not same:
        merged = a.merge(b, how="outer", on=["BRICKNAME", "OBJID"], indicator=True)
        print(merged[merged["_merge"] != "both"].head(20))
    fast_cpu_rate = len(sweep) / statistics.median(cpus)
    ref_cpu_rate = len(sub) / ref_cpus[0]
    print(
        f"\nspeed-up, columnar / reference: {fast_rate / ref_rate:,.0f}x by wall time (medians), "
        f"{fast_cpu_rate / ref_cpu_rate:,.0f}x by CPU time"
    )
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
