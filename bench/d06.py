"""D06 grid throughput: time to inject and score 110,000 injections, from a measured subset.

Runs the grid's code path (``make_injections`` = priors draw + ``render_arcs`` + ``inject``,
then ``score_cutouts`` = ``preprocess`` + the model) on the first cells of the FULL-size grid
with the FULL-size ``paperIV_bottlenecked_resnet`` (untrained weights: the arithmetic is the
same) on synthetic hosts, and extrapolates to 110,000 injections. Reference measured in the
same run: scoring the hosts alone (no injection), so the injection overhead is a ratio.

    .venv/bin/python bench/d06.py [--injections 1000] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd
import torch

from stronglens_assets.science.experiments import host_pool, make_injections
from stronglens_assets.science.learning.model_config import load_model_config
from stronglens_assets.science.learning.models import build_model
from stronglens_assets.science.learning.scoring import score_cutouts
from stronglens_assets.science.lensing.priors import PARAMETERS, grid_cells, load_priors
from stronglens_assets.settings import PROJECT_ROOT

FULL = 110_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--injections", type=int, default=1000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=512)
    args = parser.parse_args()
    config_dir = PROJECT_ROOT / "configs"
    priors = load_priors(config_dir, "full")
    model = build_model(load_model_config(config_dir, "paperIV_bottlenecked_resnet", "full"))
    model.eval().to(args.device)
    rng = np.random.default_rng(0)
    n_hosts = 256
    table = pd.DataFrame({"object_id": [f"h{i}" for i in range(n_hosts)]})
    pool = host_pool(table, None, mode="random", rng=rng)
    y, x = np.mgrid[:101, :101] - 50.0
    galaxy = np.exp(-(x**2 + y**2) / 18.0)
    hosts = {
        "cutout": (rng.normal(0, 0.006, (n_hosts, 3, 101, 101)) + 0.5 * galaxy[None, None]).astype(
            np.float32
        ),
        "psfsize": rng.uniform(1.1, 1.6, (n_hosts, 3)).astype(np.float32),
    }
    cells = grid_cells(priors.grid)
    per_cell = FULL // len(cells)
    n_cells = max(1, args.injections // per_cell)
    t_inject = t_score = 0.0
    done = 0
    for row in cells.head(n_cells).itertuples(index=False):
        t0 = time.perf_counter()
        batch = make_injections(
            priors,
            pool,
            hosts,
            per_cell,
            seed=1,
            tags=("grid", int(row.cell)),
            fixed={p: float(getattr(row, p)) for p in PARAMETERS},
        )
        t1 = time.perf_counter()
        score_cutouts(model, batch.images, batch_size=args.batch_size, device=args.device)
        t2 = time.perf_counter()
        t_inject += t1 - t0
        t_score += t2 - t1
        done += per_cell
    t0 = time.perf_counter()
    reference_n = min(done, 2 * n_hosts)
    reference_images = hosts["cutout"][np.arange(reference_n) % n_hosts]
    score_cutouts(model, reference_images, batch_size=args.batch_size, device=args.device)
    t_reference = (time.perf_counter() - t0) * done / reference_n
    total = t_inject + t_score
    threads = os.environ.get("OMP_NUM_THREADS")
    print(f"torch threads {torch.get_num_threads()}, OMP_NUM_THREADS={threads}")
    print(f"{done} injections in {n_cells} cells of the full grid ({per_cell} per cell)")
    print(f"  inject (draw + render + add): {done / t_inject:8.1f} /s")
    print(f"  score (preprocess + model):   {done / t_score:8.1f} /s")
    print(f"  total:                        {done / total:8.1f} /s")
    print(f"  reference, scoring hosts only: {done / t_reference:8.1f} /s")
    print(f"  ratio total / reference time: {total / t_reference:.2f}")
    print(f"extrapolated: {FULL} injections in {FULL * total / done / 60:.1f} min on {args.device}")


if __name__ == "__main__":
    main()
