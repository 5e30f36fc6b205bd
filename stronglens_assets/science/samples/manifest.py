"""The negative manifest: a stratified sample of the pool by (class, split), N1:N2 about
75:25, deterministic in the pool's content (not its row order)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from stronglens_assets.science.core.columns import require_columns
from stronglens_assets.science.samples.negative_config import NegativeSelectionConfig
from stronglens_assets.science.samples.splits import SPLIT_LABELS, splitmix64

__all__ = ["ManifestPlan", "plan_negative_manifest", "sample_negative_manifest"]


@dataclass(frozen=True)
class ManifestPlan:
    """How many negatives of each class and split the manifest takes, and why.

    ``per_stratum`` maps ``"N1/train"`` etc. to counts; ``available`` likewise for the pool.
    ``notes`` explains any shortfall (too few of a class in the pool).
    """

    requested_size: int
    n1: int
    n2: int
    n2_fraction_target: float
    n2_fraction: float
    ratio_tolerance: float
    ratio_ok: bool
    shortfall_policy: str
    per_stratum: dict[str, int] = field(default_factory=dict)
    available: dict[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        """Number of rows in the manifest."""
        return self.n1 + self.n2

    def as_dict(self) -> dict[str, Any]:
        """JSON-serializable form (for asset metadata)."""
        out = asdict(self)
        out["size"] = self.size
        out["notes"] = list(self.notes)
        return out


def _largest_remainder(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` proportionally to ``weights`` (integers, sums to ``total``, each part
    <= its weight when total <= sum(weights))."""
    wsum = sum(weights)
    if total <= 0 or wsum == 0:
        return [0] * len(weights)
    exact = [total * w / wsum for w in weights]
    parts = [int(np.floor(e)) for e in exact]
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - parts[i]), i))
    for i in order[: total - sum(parts)]:
        parts[i] += 1
    return parts


def plan_negative_manifest(
    available: Mapping[tuple[str, str], int], cfg: NegativeSelectionConfig
) -> ManifestPlan:
    """Per (class, split) sample sizes for the pool counts ``available[(cls, split)]``.

    Targets: ``n2 = round(manifest_size * n2_fraction)``, ``n1 = manifest_size - n2``. When
    the pool has too few of a class, all of it is taken and, with ``shortfall: keep_ratio``,
    the other class is cut to keep the N1:N2 ratio (the manifest shrinks); with
    ``keep_size`` the other class fills up to ``manifest_size`` (the ratio drifts; ``ratio_ok``
    says whether it stays within ``ratio_tolerance``). Within a class, the sample is split
    across train/val/test in proportion to the pool (largest remainder).
    """
    avail = {(c, s): int(available.get((c, s), 0)) for c in ("N1", "N2") for s in SPLIT_LABELS}
    a1 = sum(avail[("N1", s)] for s in SPLIT_LABELS)
    a2 = sum(avail[("N2", s)] for s in SPLIT_LABELS)
    f2 = cfg.n2_fraction
    size = cfg.manifest_size
    t2 = round(size * f2)
    t1 = size - t2
    n1, n2 = min(a1, t1), min(a2, t2)
    notes: list[str] = []
    if a2 < t2:
        notes.append(f"too few N2: pool has {a2} < target {t2}")
    if a1 < t1:
        notes.append(f"too few N1: pool has {a1} < target {t1}")
    if notes:
        if cfg.shortfall == "keep_ratio":
            n1 = min(n1, round(n2 * (1.0 - f2) / f2))
            n2 = min(n2, round(n1 * f2 / (1.0 - f2)))
        else:
            n1 = min(a1, size - n2)
            n2 = min(a2, size - n1)
        notes.append(
            f"{cfg.shortfall}: took N1 {n1} of {a1}, N2 {n2} of {a2}; "
            f"manifest {n1 + n2} of {size} requested"
        )
    frac = n2 / (n1 + n2) if n1 + n2 else 0.0
    ratio_ok = n1 + n2 > 0 and abs(frac - f2) <= cfg.ratio_tolerance
    if not ratio_ok:
        notes.append(f"N2 fraction {frac:.4f} outside {f2:.4f} +/- {cfg.ratio_tolerance}")
    per: dict[str, int] = {}
    for cls, n in (("N1", n1), ("N2", n2)):
        parts = _largest_remainder(n, [avail[(cls, s)] for s in SPLIT_LABELS])
        per.update({f"{cls}/{s}": p for s, p in zip(SPLIT_LABELS, parts, strict=True)})
    return ManifestPlan(
        requested_size=size,
        n1=n1,
        n2=n2,
        n2_fraction_target=f2,
        n2_fraction=frac,
        ratio_tolerance=cfg.ratio_tolerance,
        ratio_ok=bool(ratio_ok),
        shortfall_policy=cfg.shortfall,
        per_stratum=per,
        available={f"{c}/{s}": v for (c, s), v in avail.items()},
        notes=tuple(notes),
    )


def _sample_priority(pool_df: pd.DataFrame, seed: int) -> npt.NDArray[np.uint64]:
    """Per-row pseudo-random priority from (seed, BRICKNAME, OBJID): independent of row order
    and of which other rows are in the pool."""
    brick = pd.util.hash_array(pool_df["BRICKNAME"].astype(str).to_numpy(dtype=object))
    objid = pool_df["OBJID"].to_numpy(dtype=np.int64).astype(np.uint64)
    key = splitmix64(np.array([seed], dtype=np.uint64))[0]
    return splitmix64(splitmix64(brick.astype(np.uint64) ^ key) ^ objid)


def sample_negative_manifest(pool_df: pd.DataFrame, cfg: NegativeSelectionConfig) -> pd.DataFrame:
    """Stratified sample of the pool by (pool_class, split) per :func:`plan_negative_manifest`.

    In each stratum the rows with the smallest priority (a hash of ``sampling_seed``,
    BRICKNAME, OBJID) are taken, so the result depends only on the pool's content, not its row
    order. Output: the pool columns, sorted by class, split, priority, index reset; the plan is
    in ``result.attrs["manifest_plan"]`` (dict).
    """
    require_columns(pool_df.columns, ("pool_class", "split", "BRICKNAME", "OBJID"), "negative pool")
    cls = pool_df["pool_class"].astype(str).to_numpy(dtype=object)
    spl = pool_df["split"].astype(str).to_numpy(dtype=object)
    strata = [(c, s) for c in ("N1", "N2") for s in SPLIT_LABELS]
    cls_code = np.full(len(pool_df), -1, dtype=np.int64)
    for i, c in enumerate(("N1", "N2")):
        cls_code[cls == c] = i
    spl_code = np.full(len(pool_df), -1, dtype=np.int64)
    for i, s in enumerate(SPLIT_LABELS):
        spl_code[spl == s] = i
    stratum = np.where((cls_code >= 0) & (spl_code >= 0), cls_code * 3 + spl_code, -1)
    counts = np.bincount(stratum[stratum >= 0], minlength=6)
    plan = plan_negative_manifest({k: int(counts[i]) for i, k in enumerate(strata)}, cfg)
    quota = np.array([plan.per_stratum[f"{c}/{s}"] for c, s in strata] + [0], dtype=np.int64)
    priority = _sample_priority(pool_df, cfg.sampling_seed)
    st = np.where(stratum >= 0, stratum, 6)
    order = np.lexsort((priority, st))
    st_sorted = st[order]
    starts = np.searchsorted(st_sorted, np.arange(7))
    rank = np.arange(order.size) - starts[st_sorted]
    chosen = order[rank < quota[st_sorted]]
    manifest = pool_df.iloc[chosen].reset_index(drop=True)
    manifest.attrs = {"manifest_plan": plan.as_dict()}
    return manifest
