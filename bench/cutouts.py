"""Cutout extraction throughput on real-size DR10-format bricks.

Writes (once, cached under ``--dir``) a few 3600x3600 bricks with noise images (image,
invvar, psfsize x g, r, z; RICE_1, one-row tiles, as DR10), then measures cutouts/s, one
cutout = all 9 products (101x101 image + invvar in g, r, z and the 3 psfsize values), at
6 objects per brick (full-survey density: ~1.3M cutouts over ~200k bricks) and 300:

* ours: ``extract_brick_cutouts`` (section reads of the touched tiles, or one whole-image
  decompression per file when dense);
* (a) naive: for each object open the 9 files and cut with astropy ``Cutout2D`` on
  ``hdu.data`` (decompresses the whole file per object; timed on a few objects, its cost
  per cutout does not depend on density);
* (a') naive with ``Cutout2D(hdu.section, ...)`` (astropy's lazy-read recipe), per object;
* (b) whole-band: per brick decompress each of the 9 files once and slice every object.

Prints cutouts/s of each and the ratios ours/(a), ours/(a'), ours/(b). ``--sweep`` also
times ours forced sparse against forced dense over densities (the evidence for
``DENSE_TILE_FRACTION``).

Run: ``.venv/bin/python bench/cutouts.py [--bricks 3] [--repeats 2] [--sweep]``
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from astropy.io import fits
from astropy.nddata import Cutout2D

from stronglens_assets.resources.coadds import LocalCoaddSource, dr10_coadd_path
from stronglens_assets.science.catalogs.bricks import (
    BRICK_NPIX,
    brick_name,
    brick_wcs,
    brick_wcs_header,
)
from stronglens_assets.science.imaging.cutouts import (
    BANDS,
    CUTOUT_SIZE,
    PRODUCTS,
    _plan_blocks,
    extract_brick_cutouts,
)

H = CUTOUT_SIZE // 2
CLOCK: list[Callable[[], float]] = [time.process_time]
BRICK_CENTRES = [(112.65, 22.25), (150.1, 2.25), (35.2, -4.5), (200.3, 10.0), (330.5, -1.0)]


def _write_file(args: tuple[str, str, str, str, int]) -> str:
    root, brick, product, band, seed = args
    rng = np.random.default_rng(seed)
    n = BRICK_NPIX
    if product == "image":  # sky noise (nanomaggies) + a few hundred faint sources
        data = rng.normal(0.0, 0.004, (n, n)).astype(np.float32)
        ys, xs = rng.integers(0, n, 400), rng.integers(0, n, 400)
        data[ys, xs] += rng.exponential(0.5, 400).astype(np.float32)
    elif product == "invvar":  # ~1/0.004^2, smooth depth variation + per-pixel scatter
        y, x = np.mgrid[0:n, 0:n]
        depth = 60000.0 * (1.0 + 0.2 * np.sin(x / 500.0) * np.cos(y / 700.0))
        data = (depth * rng.normal(1.0, 0.03, (n, n))).astype(np.float32)
    else:  # psfsize: piecewise constant (per-CCD-like patches), arcsec
        patches = rng.uniform(1.0, 1.6, (8, 8)).astype(np.float32)
        data = np.kron(patches, np.ones((n // 8, n // 8), dtype=np.float32))
    path = Path(root) / dr10_coadd_path(brick, product, band)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    hdu = fits.CompImageHDU(data, header=brick_wcs_header(brick), compression_type="RICE_1")
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(tmp, overwrite=True)
    os.replace(tmp, path)
    return str(path)


def ensure_bricks(root: Path, n_bricks: int) -> list[str]:
    """Write the bench bricks under ``root`` unless already there; return their names."""
    bricks = [str(brick_name(ra, dec)) for ra, dec in BRICK_CENTRES[:n_bricks]]
    todo = [
        (str(root), brick, product, band, 1000 * i + 10 * j + k)
        for i, brick in enumerate(bricks)
        for j, band in enumerate(BANDS)
        for k, product in enumerate(PRODUCTS)
        if not (root / dr10_coadd_path(brick, product, band)).is_file()
    ]
    if todo:
        print(f"writing {len(todo)} coadd files (3600x3600 RICE_1) under {root} ...", flush=True)
        t0 = time.perf_counter()
        with ProcessPoolExecutor(max_workers=os.cpu_count()) as pool:
            list(pool.map(_write_file, todo))
        print(f"  done in {time.perf_counter() - t0:.1f} s", flush=True)
    return bricks


def make_objects(brick: str, n: int, seed: int) -> pd.DataFrame:
    """``n`` objects uniformly inside the cut-able area of the brick."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(H + 0.5, BRICK_NPIX - H - 1.5, n)
    y = rng.uniform(H + 0.5, BRICK_NPIX - H - 1.5, n)
    ra, dec = brick_wcs(brick).pixel_to_world_values(x, y)
    return pd.DataFrame({"objid": np.arange(n), "ra": ra, "dec": dec})


Method = Callable[[str, pd.DataFrame, LocalCoaddSource], int]


def ours(brick: str, objects: pd.DataFrame, source: LocalCoaddSource, **kw: float) -> int:
    result = extract_brick_cutouts(brick, objects, source.opener(brick), **kw)
    return int((result.index["status"] == "ok").sum())


def _pixels(brick: str, objects: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    px, py = brick_wcs(brick).world_to_pixel_values(objects["ra"], objects["dec"])
    return np.floor(px + 0.5).astype(int), np.floor(py + 0.5).astype(int)


def naive(brick: str, objects: pd.DataFrame, source: LocalCoaddSource, lazy: bool) -> int:
    """Per object: open the 9 files, Cutout2D each (``hdu.section`` if ``lazy``)."""
    wcs = brick_wcs(brick)
    xs, ys = _pixels(brick, objects)
    for x, y in zip(xs, ys, strict=True):
        stack = np.empty((2, len(BANDS), CUTOUT_SIZE, CUTOUT_SIZE), dtype=np.float32)
        psf = np.empty(len(BANDS), dtype=np.float32)
        for j, band in enumerate(BANDS):
            for k, product in enumerate(PRODUCTS):
                with fits.open(source.open(brick, product, band)) as hdul:
                    data = hdul[1].section if lazy else hdul[1].data
                    if product == "psfsize":
                        psf[j] = Cutout2D(data, (x, y), (1, 1), wcs=wcs, mode="strict").data[0, 0]
                    else:
                        cut = Cutout2D(data, (x, y), (CUTOUT_SIZE, CUTOUT_SIZE), wcs=wcs)
                        stack[k, j] = cut.data
    return len(xs)


def whole_band(brick: str, objects: pd.DataFrame, source: LocalCoaddSource) -> int:
    """Per brick: decompress each of the 9 files once, slice every object."""
    xs, ys = _pixels(brick, objects)
    n = len(xs)
    img = np.empty((n, len(BANDS), CUTOUT_SIZE, CUTOUT_SIZE), dtype=np.float32)
    ivar = np.empty_like(img)
    psf = np.empty((n, len(BANDS)), dtype=np.float32)
    for j, band in enumerate(BANDS):
        for product in PRODUCTS:
            with fits.open(source.open(brick, product, band)) as hdul:
                data = hdul[1].data
                if product == "psfsize":
                    psf[:, j] = data[ys, xs]
                    continue
                out = img if product == "image" else ivar
                for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
                    out[i, j] = data[y - H : y + H + 1, x - H : x + H + 1]
    return n


def rate(method: Method, work: list[tuple[str, pd.DataFrame]], source, repeats: int) -> float:
    """Best-of-``repeats`` cutouts per second over all (brick, objects) pairs."""
    return rates({"m": method}, work, source, repeats)["m"]


def rates(
    methods: dict[str, Method], work: list[tuple[str, pd.DataFrame]], source, repeats: int
) -> dict[str, float]:
    """Best-of-``repeats`` cutouts/s of several methods, interleaved (fair under load)."""
    best = dict.fromkeys(methods, np.inf)
    count = dict.fromkeys(methods, 0)
    for _ in range(repeats):
        for name, method in methods.items():
            t0 = CLOCK[0]()
            count[name] = sum(method(brick, objects, source) for brick, objects in work)
            best[name] = min(best[name], CLOCK[0]() - t0)
    return {name: count[name] / best[name] for name in methods}


def check_equal(work: list[tuple[str, pd.DataFrame]], source: LocalCoaddSource) -> None:
    """Ours equals the whole-band reference (pixels are not resampled)."""
    brick, objects = work[0]
    result = extract_brick_cutouts(brick, objects, source.opener(brick))
    xs, ys = _pixels(brick, objects)
    with fits.open(source.open(brick, "image", "r")) as hdul:
        data = hdul[1].data
    for row, (x, y) in enumerate(zip(xs, ys, strict=True)):
        ref = data[y - H : y + H + 1, x - H : x + H + 1]
        assert np.array_equal(result.cutouts[row, 1], ref), "cutout differs from the brick"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_dir = os.environ.get("STRONGLENS_BENCH_DIR", "/tmp/stronglens_bench_cutouts")
    parser.add_argument("--dir", default=default_dir, help="where the bench bricks are cached")
    parser.add_argument("--bricks", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--naive-objects", type=int, default=3, help="objects timed for (a)")
    parser.add_argument("--sweep", action="store_true", help="sparse vs dense over densities")
    parser.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        default="cpu",
        help="cpu: process time (robust on a shared machine; all methods are single-threaded)",
    )
    args = parser.parse_args()
    CLOCK[0] = time.process_time if args.clock == "cpu" else time.perf_counter

    root = Path(args.dir)
    bricks = ensure_bricks(root, args.bricks)
    source = LocalCoaddSource(root)
    print(f"bricks: {', '.join(bricks)} ({BRICK_NPIX}x{BRICK_NPIX}, RICE_1, 9 files each)")
    print(
        f"cutouts/s ({args.clock} time, best of {args.repeats}), one cutout = image + invvar "
        "(101x101) + psfsize in g, r, z\n"
    )

    header = f"{'per brick':>9} {'ours':>8} {'(a) naive':>10} {'(a) lazy':>9} {'(b) whole':>10}"
    header += f" {'ours/(a)':>9} {'ours/(a lazy)':>13} {'ours/(b)':>9}"
    print(header)
    for density in (6, 300):
        work = [(b, make_objects(b, density, seed=i)) for i, b in enumerate(bricks)]
        check_equal(work, source)
        timed = rates({"ours": ours, "b": whole_band}, work, source, args.repeats)
        r_ours, r_b = timed["ours"], timed["b"]
        few = [(work[0][0], work[0][1].iloc[: args.naive_objects])]
        r_a = rate(lambda b, o, s: naive(b, o, s, lazy=False), few, source, 1)
        lazy_work = work if density <= 6 else [(work[0][0], work[0][1].iloc[:30])]
        r_al = rate(lambda b, o, s: naive(b, o, s, lazy=True), lazy_work, source, 1)
        print(
            f"{density:>9} {r_ours:>8.2f} {r_a:>10.3f} {r_al:>9.2f} {r_b:>10.2f}"
            f" {r_ours / r_a:>9.1f} {r_ours / r_al:>13.2f} {r_ours / r_b:>9.2f}",
            flush=True,
        )

    if args.sweep:
        print("\nsweep: ours forced sparse (.section blocks) vs forced dense (whole file)")
        print(f"{'per brick':>9} {'tile frac':>9} {'sparse/s':>9} {'dense/s':>8} {'auto/s':>7}")
        for density in (6, 12, 25, 40, 60, 100, 300):
            work = [(b, make_objects(b, density, seed=i)) for i, b in enumerate(bricks)]
            fracs = []
            for brick, objects in work:
                xs, ys = _pixels(brick, objects)
                _, frac = _plan_blocks(
                    ys - H, xs - H, CUTOUT_SIZE, CUTOUT_SIZE, (1, BRICK_NPIX),
                    (BRICK_NPIX, BRICK_NPIX), 100_000,
                )  # fmt: skip
                fracs.append(frac)
            timed = rates(
                {
                    "sparse": lambda b, o, s: ours(b, o, s, dense_fraction=2.0),
                    "dense": lambda b, o, s: ours(b, o, s, dense_fraction=0.0),
                    "auto": ours,
                },
                work,
                source,
                args.repeats,
            )
            sparse, dense, auto = timed["sparse"], timed["dense"], timed["auto"]
            print(
                f"{density:>9} {np.mean(fracs):>9.2f} {sparse:>9.2f} {dense:>8.2f} {auto:>7.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
