"""D06 grid throughput: inject + score per second, extrapolated to the paper's 2 x 110,000.

Runs the grid's code path (:func:`~stronglens_assets.science.experiments.injections.
run_injections` = the paper prior's draw + ``render_arcs`` (SIE + shear) + ``arc_truth`` +
``inject``, then ``score_cutouts`` = preprocessing + the model) for ``--cells`` cells of the
full-size grid (theta_E from its axis, ``injections_per_cell`` each) with the FULL-size model
config (untrained weights: the arithmetic is the same) on synthetic 101 px hosts, and
extrapolates to 2 x 110,000 injections (both grid partitions). Reference measured in the same
run: scoring the hosts alone (no injection), so the injection overhead is a ratio. Throughput
is also given per torch thread (the CPU "per core" figure).

    .venv/bin/python bench/d06.py [--cells 2] [--per-cell 500] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from stronglens_assets.science.experiments.config import derived_rng, load_d06_config
from stronglens_assets.science.experiments.injections import run_injections
from stronglens_assets.science.learning.model_config import load_model_config
from stronglens_assets.science.learning.models import build_model
from stronglens_assets.science.learning.scoring import score_cutouts
from stronglens_assets.science.lensing.priors import load_priors
from stronglens_assets.settings import PROJECT_ROOT

FULL = 2 * 110_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=2)
    parser.add_argument("--per-cell", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    config_dir = PROJECT_ROOT / "configs"
    d06 = load_d06_config(config_dir, "full")
    priors = load_priors(config_dir, "full")
    model = build_model(load_model_config(config_dir, d06.model_config_name, "full"))
    model.eval().to(args.device)
    xp = np
    if args.device.startswith("cuda"):
        import cupy

        xp = cupy
    rng = np.random.default_rng(0)
    n_hosts = 256
    y, x = np.mgrid[:101, :101] - 50.0
    galaxy = np.exp(-(x**2 + y**2) / 18.0)
    hosts = {
        "cutout": (rng.normal(0, 0.006, (n_hosts, 3, 101, 101)) + 0.5 * galaxy).astype(np.float32),
        "invvar": np.full((n_hosts, 3, 101, 101), 1 / 0.006**2, np.float32),
        "psfsize": rng.uniform(1.1, 1.6, (n_hosts, 3)).astype(np.float32),
        "usable": np.ones(n_hosts, bool),
    }
    per_cell = args.per_cell or d06.grid.injections_per_cell
    t_inject = t_score = 0.0
    done = 0
    for cell, theta_e in enumerate(d06.grid.theta_e[: args.cells]):
        t0 = time.perf_counter()
        run = run_injections(
            priors,
            hosts,
            np.arange(n_hosts),
            per_cell,
            prior=d06.prior,
            theta_e=theta_e,
            source_mag=tuple(d06.grid.source_mag),
            beta_frac=None,
            params_rng=derived_rng(1, "grid", cell),
            chunk_size=d06.chunk_size,
            xp=xp,
        )
        t1 = time.perf_counter()
        score_cutouts(model, run.images, batch_size=d06.batch_size, device=args.device)
        t2 = time.perf_counter()
        t_inject += t1 - t0
        t_score += t2 - t1
        done += len(run)
    t0 = time.perf_counter()
    reference_n = min(done, 2 * n_hosts)
    reference_images = hosts["cutout"][np.arange(reference_n) % n_hosts]
    score_cutouts(model, reference_images, batch_size=d06.batch_size, device=args.device)
    t_reference = (time.perf_counter() - t0) * done / reference_n
    total = t_inject + t_score
    threads = torch.get_num_threads()
    print(f"torch threads {threads}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
    print(f"{done} injections in {args.cells} cells of the full grid ({per_cell} per cell)")
    print(f"  inject (draw + render + truth + add): {done / t_inject:8.1f} /s")
    print(f"  score (preprocess + model):           {done / t_score:8.1f} /s")
    print(f"  total:                                {done / total:8.1f} /s")
    print(f"  total per torch thread:               {done / total / threads:8.1f} /s")
    print(f"  reference, scoring hosts only:        {done / t_reference:8.1f} /s")
    print(f"  ratio total / reference time:         {total / t_reference:.2f}")
    print(f"extrapolated: {FULL} injections in {FULL * total / done / 3600:.2f} h on {args.device}")


if __name__ == "__main__":
    main()
