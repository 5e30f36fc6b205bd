"""The published D06 files (vendored test data) laid out as the published results directory,
and synthetic pieces the published directory lacks (the Poisson grid, five bright-arc
variants, per-object inputs) for tests that need a complete directory."""

from __future__ import annotations

import copy
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from stronglens_assets.science.stats.binomial import jeffreys_interval

PUBLISHED_DIR = Path(__file__).resolve().parents[2] / "data" / "published_d06"
"""The vendored published files, flat names ``<subdir>_<file>`` (MIT notice inside)."""

PUBLISHED_FILES: dict[str, str] = {
    "grid_no_poisson_selection_function.csv": "grid_no_poisson/selection_function.csv",
    "grid_no_poisson_selection_function_meta.json": "grid_no_poisson/selection_function_meta.json",
    "ba_baseline_bright_arc_results.json": "ba_baseline/bright_arc_results.json",
    "linear_probe_feature_space_results.json": "linear_probe/feature_space_results.json",
    "linear_probe_permutation_bootstrap_results.json": (
        "linear_probe/permutation_bootstrap_results.json"
    ),
    "tier_a_scoring_real_lens_scoring_results.json": (
        "tier_a_scoring/real_lens_scoring_results.json"
    ),
    "poisson_diagnostics_mcnemar_results.json": "poisson_diagnostics/mcnemar_results.json",
}


def published_layout(root: Path) -> Path:
    """Copy the vendored files into ``root`` as the published directory; return ``root``."""
    for flat, nested in PUBLISHED_FILES.items():
        target = root / nested
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(PUBLISHED_DIR / flat, target)
    return root


def read_json(root: Path, key: str) -> dict:
    return json.loads((root / key).read_text())


def write_json(root: Path, key: str, value: dict) -> None:
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2))


def add_poisson_grid(root: Path, keep: float = 0.73) -> None:
    """A synthetic Poisson grid: the no-Poisson table with ``floor(keep x k)`` detections per
    row, its intervals recomputed, and the metadata of a gain-150 run."""
    table = pd.read_csv(root / "grid_no_poisson/selection_function.csv")
    k = np.floor(table["n_detected"] * keep).astype(int)
    n = table["n_injections"]
    table["n_detected"] = k
    present = n > 0
    table.loc[present, "completeness"] = k[present] / n[present]
    for level, lo, hi in ((0.68, "ci68_lo", "ci68_hi"), (0.95, "ci95_lo", "ci95_hi")):
        low, high = jeffreys_interval(k[present].to_numpy(), n[present].to_numpy(), level)
        table.loc[present, lo] = low
        table.loc[present, hi] = high
    (root / "grid_poisson").mkdir(parents=True, exist_ok=True)
    table.to_csv(root / "grid_poisson/selection_function.csv", index=False)
    meta = read_json(root, "grid_no_poisson/selection_function_meta.json")
    meta.update(add_poisson_noise=True, gain_e_per_nmgy=150.0)
    write_json(root, "grid_poisson/selection_function_meta.json", meta)


def add_bright_arc_variants(root: Path) -> None:
    """The five other variants, synthetic: the baseline file with shifted detections, except
    ``poisson``, whose p > 0.3 rates are the paired table's (as in the real run)."""
    base = read_json(root, "ba_baseline/bright_arc_results.json")
    paired = read_json(root, "poisson_diagnostics/mcnemar_results.json")["per_bin"]
    shifts = {"poisson": 6, "clip20": -4, "gain_1e12": 0, "poisson_clip20": 2, "unrestricted": -10}
    for variant, shift in shifts.items():
        data = copy.deepcopy(base)
        for mag_bin, entry in data["results_by_bin"].items():
            n = entry["n_scored"]
            k03 = min(n, max(0, round(entry["detection_rate_p03"] * n) + shift))
            if variant == "poisson":
                k03 = round(paired[mag_bin]["poisson_det_rate"] * n)
            k05 = min(k03, round(entry["detection_rate_p05"] * n))
            entry["detection_rate_p03"] = k03 / n
            entry["detection_rate_p05"] = k05 / n
        config = data["phase1_config"]
        if "poisson" in variant:
            config["add_poisson_noise"] = True
        if variant == "gain_1e12":
            config.update(add_poisson_noise=True, gain_e_per_nmgy=1e12)
        if "clip20" in variant:
            data["preprocessing"]["clip_range"] = 20.0
        if variant == "unrestricted":
            config["beta_frac_range"] = [0.1, 1.0]
        write_json(root, f"ba_{variant}/bright_arc_results.json", data)


def tier_a_scores() -> np.ndarray:
    """112 Tier-A scores with the published counts: 100 above 0.3, 94 above 0.5, 89 above
    0.8059 and 54 above 0.9951."""
    return np.array(
        [0.999] * 54 + [0.9] * 35 + [0.6] * 5 + [0.4] * 6 + [0.01 * i for i in range(12)]
    )


def add_per_object_inputs(root: Path, seed: int = 3, width: int = 16) -> None:
    """Synthetic embeddings and scores of the probe's groups (the published group sizes),
    per-lens Tier-A scores and comparison cutouts (two of the real lenses mock)."""
    rng = np.random.default_rng(seed)
    sizes = {"real_tier_a": 112, "inj_low_bf": 500, "inj_high_bf": 500, "negatives": 500}
    centres = {"real_tier_a": 2.0, "inj_low_bf": -1.0, "inj_high_bf": -1.5, "negatives": 0.0}
    medians = read_json(root, "linear_probe/feature_space_results.json")["median_scores"]
    arrays: dict[str, np.ndarray] = {}
    for group, n in sizes.items():
        arrays[group] = rng.normal(centres[group], 1.0, (n, width)).astype(np.float32)
        # scores whose median is the file's: half just below, half just above
        median = medians[group]
        below = rng.uniform(median * 1e-3, median, n // 2)
        above = rng.uniform(median, min(1.0, median * 3 + 1e-6), n - n // 2)
        scores = np.sort(np.concatenate([below, above]))
        scores[n // 2 - 1] = scores[n // 2] = median
        arrays[f"{group}_score"] = rng.permutation(scores)
    arrays["real_tier_a_is_mock"] = np.arange(112) < 10
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    (root / "linear_probe/embeddings.npz").write_bytes(buffer.getvalue())
    scores = tier_a_scores()
    lenses = pd.DataFrame(
        {
            "object_id": [f"DESI-{i:03d}" for i in range(112)],
            "score": scores,
            "source": ["mock" if i % 9 == 0 else "real" for i in range(112)],
            "ra": np.linspace(10, 50, 112),
            "dec": np.linspace(-5, 5, 112),
            "mag_r": np.linspace(17.0, 20.0, 112),
            "z_lens": np.linspace(0.2, 0.8, 112),
        }
    )
    (root / "tier_a_scoring").mkdir(parents=True, exist_ok=True)
    lenses.to_parquet(root / "tier_a_scoring/tier_a_scores.parquet")
    size = 33
    y, x = np.mgrid[:size, :size] - size // 2
    galaxy = np.exp(-(x**2 + y**2) / 18.0)
    ring = np.exp(-((np.hypot(x, y) - 8.0) ** 2) / 2.0)
    real = np.stack(
        [
            np.stack([galaxy * s + ring * a for s, a in ((0.5, 0.3), (1, 0.2), (1.6, 0.1))])
            for _ in range(5)
        ]
    )
    injected = real[:, :, :, ::-1].copy()
    cutouts = {
        "real_images": real.astype(np.float32),
        "real_ids": np.array([f"lens-{i}" for i in range(5)]),
        "real_scores": np.array([0.99, 0.9, 0.5, 0.2, 0.01]),
        "real_is_mock": np.array([True, False, False, True, False]),
        "injection_images": injected.astype(np.float32),
        "injection_ids": np.array([f"inj-{i}" for i in range(5)]),
        "injection_scores": np.array([0.8, 0.3, 0.1, 0.05, 0.001]),
    }
    buffer = io.BytesIO()
    np.savez(buffer, **cutouts)
    (root / "real_vs_injection").mkdir(parents=True, exist_ok=True)
    (root / "real_vs_injection/cutouts.npz").write_bytes(buffer.getvalue())


def complete_layout(root: Path) -> Path:
    """Published files plus every synthetic piece: nothing is missing."""
    published_layout(root)
    add_poisson_grid(root)
    add_bright_arc_variants(root)
    add_per_object_inputs(root)
    return root
