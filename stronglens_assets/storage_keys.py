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
    "BRIGHT_ARC_SET",
    "CHECKPOINT_KEY",
    "CUTOUT_SHARD_PREFIXES",
    "D06_HOST_CACHE_PREFIX",
    "D06_ROOT",
    "EVALUATION_THRESHOLDS_KEY",
    "FIGURE5_KEY",
    "FIGURES_PREFIX",
    "GALLERY_KEY",
    "GRID_SET",
    "HISTORY_KEY",
    "LAST_CHECKPOINT_KEY",
    "PARITY_KEY",
    "PARITY_META_KEY",
    "PARITY_SPLITS_KEY",
    "POISSON_DIAGNOSTICS_SET",
    "PREPROCESSING_KEY",
    "PROBE_SET",
    "PROVENANCE_KEY",
    "TABLES_PREFIX",
    "TIER_A_SET",
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
"""Root of the D06 result sets (``resources/result_sets.py``): ``<name>/<version>/<file>``
with the pointer ``<name>.json``; read in the published layout through ``ResultSetSource``."""
D06_HOST_CACHE_PREFIX = "d06/hosts"
"""``d06_hosts``' shard set (partition ``cache``): the hosts' cutouts, invvar and psfsize."""
GRID_SET = "grid_{variant}"
BRIGHT_ARC_SET = "ba_{variant}"
PROBE_SET = "linear_probe"
TIER_A_SET = "tier_a_scoring"
POISSON_DIAGNOSTICS_SET = "poisson_diagnostics"

# --- paper (assets/paper.py) -----------------------------------------------------------------
PROVENANCE_KEY = D06_ROOT + "/provenance.json"
FIGURE5_KEY = D06_ROOT + "/comparison_figure/figure5"
"""Stem of Figure 5 (``.pdf``, ``.png``, ``.json``)."""
GALLERY_KEY = D06_ROOT + "/gallery/index.html"
FIGURES_PREFIX = "paper/figures"
TABLES_PREFIX = "paper/tables"
