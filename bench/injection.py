"""Injection-engine throughput: ``render_arcs`` (batched) vs lenstronomy, same run.

One grz injection = one elliptical Sersic source lensed by an SIE + external shear (lens
centre jittered off the stamp centre) rendered in g, r and z on a 101x101 stamp at
0.262"/pixel, supersampling 4, Gaussian PSF (r-band FWHM U(0.9, 1.8)" scaled by 1.05 / 1 /
0.94 for g / r / z). Parameters are drawn from the paper's priors
(``stronglens_assets.testing.lensing.random_arc_parameters``: theta_E 0.5-3", n 0.5-2,
R_e 0.15-0.5", q 0.3-1, beta/theta_E 0.1-0.4, q_lens 0.5-1, gamma N(0, 0.05)).

* reference: lenstronomy ``ImageModel`` (``SIE`` + ``SHEAR`` + ``SERSIC_ELLIPSE``,
  ``PSF("GAUSSIAN")``, ``supersampling_factor=4``), one image per call, 3 calls per grz
  injection; the time counted is ``ImageModel.image`` only (the model construction a new
  PSF needs is excluded, which favours lenstronomy);
* ours: ``render_arcs`` on the whole batch (``bn="lenstronomy"`` so that the accuracy is
  measured on the same profile; the exact b_n costs the same), default backend (the fused
  numba kernel on a CPU), ``workers`` = all cores in the all-cores run.

Both are timed in the same process, interleaved (each of ``--repeats`` rounds times
lenstronomy then ours; medians and the median ratio are printed), with one thread
(``OMP_NUM_THREADS=1`` etc., set before NumPy is imported: a child process; timed in
process CPU time, so that other load on a shared machine does not count) and with all
cores (wall-clock time). The single-thread run is repeated with glibc's heap trimming
and mmap thresholds raised (``MALLOC_TUNED``): in its default state lenstronomy returns
its large temporaries to the OS and page-faults them back on every render (~3x slower);
the tuned run is lenstronomy at its best and the fair reference for the ratio.

Printed: grz injections/s of each, the ratio, and the accuracy achieved on the
benchmarked set (worst and median ``max|ours - lenstronomy| / peak`` and total
flux error over all lenstronomy-rendered images). With CuPy and a GPU it also prints
absolute injections/s for batches of 1k to 100k and the time for 110,000.

Run: ``.venv/bin/python bench/injection.py [--n 2000] [--n-ref 40] [--repeats 5]``;
``--profile`` prints a cProfile of ``render_arcs`` alone (one thread, tuned malloc);
``--backend xp`` times the NumPy array path instead of the numba kernel.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

#: glibc settings that keep freed memory in the heap: lenstronomy's ~1.3 MB float64
#: temporaries otherwise go back to the OS (heap trimming / mmap) and are page-faulted in
#: again on every render, which makes it ~3x slower than its best.
MALLOC_TUNED = {"MALLOC_TRIM_THRESHOLD_": "536870912", "MALLOC_MMAP_THRESHOLD_": "268435456"}
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def clock() -> float:
    """CPU time of this process with one thread (immune to other load on a shared
    machine); wall-clock time with all cores."""
    if os.environ.get("OMP_NUM_THREADS") == "1":
        return time.process_time()
    return time.perf_counter()


def lenstronomy_jobs(p: dict, n_ref: int) -> list:
    """One (ImageModel, kwargs_lens, kwargs_source) per band image of n_ref injections."""
    from stronglens_assets.testing.lensing import LenstronomyReference

    ref = LenstronomyReference()
    jobs = []
    for i in range(n_ref):
        for b in range(3):
            lens, source = ref.kwargs(p, i, b)
            jobs.append((ref.model(float(p["psf_fwhm"][i, b])), lens, source))
    return jobs


def child(args: argparse.Namespace) -> dict:
    import numpy as np

    from stronglens_assets.testing.lensing import random_arc_parameters, render_arc_set

    p = random_arc_parameters(args.n, args.seed)
    jobs = lenstronomy_jobs(p, args.n_ref)
    first = {k: v[:50] for k, v in p.items()}
    render_arc_set(first, bn="lenstronomy", backend=args.backend)  # compile / load the kernel
    workers = 1 if os.environ.get("OMP_NUM_THREADS") == "1" else (os.cpu_count() or 1)
    # interleaved: each repeat times lenstronomy then ours, so both see the same load
    ratios, t_refs, t_ours = [], [], []
    for _ in range(args.repeats):
        t0 = clock()
        ref_imgs = [m.image(kwargs_lens=kl, kwargs_source=ks) for m, kl, ks in jobs]
        t_refs.append(clock() - t0)
        t0 = clock()
        ours = render_arc_set(p, bn="lenstronomy", workers=workers, backend=args.backend)
        t_ours.append(clock() - t0)
        ratios.append((args.n / t_ours[-1]) / (args.n_ref / t_refs[-1]))
    errs, ferrs = [], []
    for j, ref in enumerate(ref_imgs):
        img = ours[j // 3, j % 3]
        errs.append(float(np.abs(img - ref).max() / ref.max()))
        ferrs.append(float(abs(img.sum() / ref.sum() - 1.0)))
    return {
        "threads": os.environ.get("OMP_NUM_THREADS", "all"),
        "lenstronomy_grz_per_s": args.n_ref / float(np.median(t_refs)),
        "ours_grz_per_s": args.n / float(np.median(t_ours)),
        "ratio": float(np.median(ratios)),
        "ratio_min": float(np.min(ratios)),
        "ratio_max": float(np.max(ratios)),
        "peak_err_max": max(errs),
        "peak_err_median": float(np.median(errs)),
        "flux_err_max": max(ferrs),
        "n": args.n,
        "n_ref": args.n_ref,
    }


def profile(args: argparse.Namespace) -> None:
    """cProfile of one render_arcs call (where the time goes), one thread."""
    import cProfile
    import pstats

    from stronglens_assets.testing.lensing import random_arc_parameters, render_arc_set

    p = random_arc_parameters(args.n, args.seed)
    render_arc_set({k: v[:50] for k, v in p.items()}, backend=args.backend)
    prof = cProfile.Profile(time.process_time)
    prof.runcall(render_arc_set, p, backend=args.backend)
    stats = pstats.Stats(prof)
    total = stats.total_tt  # type: ignore[attr-defined]
    print(f"render_arcs, {args.n} grz injections: {total / args.n * 1e3:.3f} ms CPU each")
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])  # type: ignore[attr-defined]
    for (path, line, name), (_, ncalls, tottime, _, _) in rows[:12]:
        where = f"{os.path.basename(path)}:{line}({name})" if line else name
        share = 100 * tottime / total
        print(f"  {tottime / args.n * 1e3:7.3f} ms/inj {share:5.1f}%  {ncalls:5d} calls  {where}")


def gpu_section(seed: int) -> None:
    import numpy as np

    from stronglens_assets.science.core.arrays import gpu_array_module

    cupy = gpu_array_module()  # a broken CuPy install raises instead of being skipped
    if cupy is None:
        print("GPU: not measured (CuPy not installed or no GPU)")
        return
    from stronglens_assets.testing.lensing import random_arc_parameters, render_arc_set

    p = {k: cupy.asarray(v) for k, v in random_arc_parameters(110_000, seed).items()}
    render_arc_set({k: v[:1000] for k, v in p.items()}, xp=cupy)
    cupy.cuda.Device().synchronize()
    for n in (1_000, 10_000, 100_000, 110_000):
        t0 = time.perf_counter()
        out = render_arc_set({k: v[:n] for k, v in p.items()}, xp=cupy)
        cupy.cuda.Device().synchronize()
        dt = time.perf_counter() - t0
        print(f"GPU batch {n:>7}: {n / dt:12.0f} grz injections/s ({dt:.2f} s)")
        del out
    del np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=2000, help="injections rendered by render_arcs")
    ap.add_argument("--n-ref", type=int, default=40, help="injections rendered by lenstronomy")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--profile", action="store_true", help="cProfile render_arcs only")
    ap.add_argument("--backend", default="auto", choices=("auto", "numba", "xp"))
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return
    if args.profile:
        if os.environ.get("OMP_NUM_THREADS") != "1":
            env = dict(os.environ, **{var: "1" for var in THREAD_VARS}, **MALLOC_TUNED)
            subprocess.run([sys.executable, *sys.argv], env=env, check=True)
        else:
            profile(args)
        return
    base = [sys.executable, __file__, "--child", f"--n={args.n}", f"--n-ref={args.n_ref}"]
    base += [f"--repeats={args.repeats}", f"--seed={args.seed}", f"--backend={args.backend}"]
    print(
        'grz injections, SIE + shear + Sersic (101x101, 0.262"/pix, supersampling 4, Gaussian '
        f"PSF), ours n={args.n} (backend {args.backend}), lenstronomy SIE + SHEAR + "
        f"SERSIC_ELLIPSE n={args.n_ref} (3 renders each)"
    )
    configs = [
        ("1 thread", True, False),
        ("1 thread, glibc malloc tuned", True, True),
        (f"all cores ({os.cpu_count()})", False, False),
    ]
    for label, single, tuned in configs:
        env = dict(os.environ)
        for var in THREAD_VARS:
            if single:
                env[var] = "1"
            else:
                env.pop(var, None)
        for var, val in MALLOC_TUNED.items():
            if tuned:
                env[var] = val
            else:
                env.pop(var, None)
        res = json.loads(subprocess.run(base, env=env, check=True, capture_output=True).stdout)
        print(
            f"{label}: lenstronomy {res['lenstronomy_grz_per_s']:8.1f}/s  "
            f"render_arcs {res['ours_grz_per_s']:9.1f}/s  ratio {res['ratio']:6.1f}x per "
            f"{'core' if single else 'machine'} "
            f"(repeats {res['ratio_min']:.0f}-{res['ratio_max']:.0f}x)  "
            f"accuracy: max|diff|/peak worst {res['peak_err_max']:.2e} "
            f"median {res['peak_err_median']:.2e}, flux worst {res['flux_err_max']:.2e}"
        )
    gpu_section(args.seed)


if __name__ == "__main__":
    main()
