"""Storage keys of every output an asset writes itself, in one place.

Keys are relative to the storage root (``$STRONGLENS_HOME/storage`` or
``s3://<bucket>/<prefix>``), ``/``-separated, in the seeds' layout. Values an asset returns go
through the IO manager to ``<asset/key/path>.<ext>`` (:mod:`stronglens_assets.resources.storage`)
and are not listed here; everything an asset writes or reads by key is: the writer and every
reader (training reads the parity manifest, evaluation and D06 the checkpoint, the paper the D06
results) use these names, so a layout change happens here once.
"""

from __future__ import annotations

__all__ = [
    "ABLATION_CHECKPOINT_KEY",
    "BRIGHT_ARC_CUTOUTS_KEY",
    "BRIGHT_ARC_RESULTS_KEY",
    "CHECKPOINT_KEY",
    "CUTOUT_SHARD_PREFIXES",
    "D06_ROOT",
    "EVALUATION_THRESHOLDS_KEY",
    "FIGURE5_KEY",
    "FIGURES_PREFIX",
    "GALLERY_KEY",
    "GRID_CELL_KEY",
    "GRID_CUTOUTS_PREFIX",
    "GRID_RESULTS_KEY",
    "HISTORY_KEY",
    "LAST_CHECKPOINT_KEY",
    "PARITY_KEY",
    "PARITY_META_KEY",
    "PARITY_SPLITS_KEY",
    "POISSON_DIAGNOSTICS_KEY",
    "POISSON_DIAGNOSTICS_PLOT_KEY",
    "PREPROCESSING_KEY",
    "PROBE_EMBEDDINGS_KEY",
    "PROBE_RESULTS_KEY",
    "PROVENANCE_KEY",
    "SELECTION_KEY",
    "TABLES_PREFIX",
    "TIER_A_SCORES_KEY",
    "ba_keys",
    "cell_key",
    "grid_keys",
]

# --- cutouts (assets/cutouts.py) ---------------------------------------------------------------
CUTOUT_SHARD_PREFIXES: dict[str, str] = {
    "positive_cutouts": "cutouts/positives",
    "negative_cutouts": "cutouts/negatives",
}
"""Shard-set prefix of each cutout asset: ``<prefix>/<partition>/<version>/shard-*.npz``, an
index Parquet, and the pointer ``<prefix>/<partition>.json`` (resources/shards.py)."""
PARITY_KEY = "manifests/training_parity_70_30_{version}.parquet"
"""The seeds' 70/30 train/val view of ``training_manifest`` (``version``: configs/cutouts.yaml):
val and test together as val, as the seeds' layout has it. Nothing trains or scores on it."""
PARITY_SPLITS_KEY = "manifests/training_parity_splits_{version}.parquet"
"""The parity manifest training and evaluation read: train / val / test kept apart (val picks
the epoch and the FPR thresholds, test gives the reported metrics)."""
PARITY_META_KEY = "manifests/training_parity_{version}.json"

# --- training and evaluation (assets/training.py, assets/evaluation.py) ---------------------
CHECKPOINT_KEY = "checkpoints/{name}/best.pt"
"""``model_checkpoint``'s frozen model (``name``: the model config); read by evaluation, D06."""
LAST_CHECKPOINT_KEY = "checkpoints/{name}/last.pt"
HISTORY_KEY = "checkpoints/{name}/history.json"
ABLATION_CHECKPOINT_KEY = "checkpoints/{name}/ablation_{variant}.pt"
PREPROCESSING_KEY = "checkpoints/{name}/preprocessing.json"
"""The preprocessing ``best.pt`` was trained with (or declared for a ``pretrained:`` import)."""
EVALUATION_THRESHOLDS_KEY = "evaluation/{name}/thresholds.json"
"""A model's score thresholds (fixed and FPR-derived from its val negatives; contract 2),
written by ``evaluation_thresholds``, read by every evaluation consumer and D06."""

# --- D06 (assets/d06.py; read by assets/paper.py) --------------------------------------------
D06_ROOT = "results/D06"
GRID_RESULTS_KEY = D06_ROOT + "/grid_{variant}/grid_results.json"
SELECTION_KEY = D06_ROOT + "/grid_{variant}/selection_function.parquet"
GRID_CUTOUTS_PREFIX = D06_ROOT + "/grid_{variant}/cutouts"
GRID_CELL_KEY = GRID_CUTOUTS_PREFIX + "/cell{cell:04d}.npz"
BRIGHT_ARC_RESULTS_KEY = D06_ROOT + "/ba_{variant}/results.json"
BRIGHT_ARC_CUTOUTS_KEY = D06_ROOT + "/ba_{variant}/cutouts.npz"
PROBE_RESULTS_KEY = D06_ROOT + "/linear_probe/linear_probe_results.json"
PROBE_EMBEDDINGS_KEY = D06_ROOT + "/linear_probe/embeddings.npz"
TIER_A_SCORES_KEY = D06_ROOT + "/tier_a_scoring/tier_a_scores.parquet"
POISSON_DIAGNOSTICS_KEY = D06_ROOT + "/poisson_diagnostics/poisson_diagnostics.json"
POISSON_DIAGNOSTICS_PLOT_KEY = D06_ROOT + "/poisson_diagnostics/poisson_diagnostics.png"

# --- paper (assets/paper.py) -----------------------------------------------------------------
PROVENANCE_KEY = D06_ROOT + "/provenance.json"
FIGURE5_KEY = D06_ROOT + "/comparison_figure/figure5"
"""Stem of Figure 5 (``.pdf``, ``.png``, ``.json``)."""
GALLERY_KEY = D06_ROOT + "/gallery/index.html"
FIGURES_PREFIX = "paper/figures"
TABLES_PREFIX = "paper/tables"


def grid_keys(variant: str) -> dict[str, str]:
    """Keys of a D06 grid partition: ``results_key``, ``selection_function_key``,
    ``cutouts_prefix``."""
    return {
        "results_key": GRID_RESULTS_KEY.format(variant=variant),
        "selection_function_key": SELECTION_KEY.format(variant=variant),
        "cutouts_prefix": GRID_CUTOUTS_PREFIX.format(variant=variant),
    }


def cell_key(variant: str, cell: int) -> str:
    """The ``.npz`` of one grid cell (parameters, host ids, scores, optional cutouts)."""
    return GRID_CELL_KEY.format(variant=variant, cell=cell)


def ba_keys(variant: str) -> dict[str, str]:
    """Keys of a bright-arc variant: ``results_key``, ``cutouts_key``."""
    return {
        "results_key": BRIGHT_ARC_RESULTS_KEY.format(variant=variant),
        "cutouts_key": BRIGHT_ARC_CUTOUTS_KEY.format(variant=variant),
    }
