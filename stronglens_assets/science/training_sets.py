"""Objects to cut (positives, negatives) and the training manifest built from their cutouts.

Labels: 1 = lens, 0 = non-lens. Tiers: ``A`` (lenscat confident), ``B`` (probable), ``N1``,
``N2`` (negative pool classes). Every row keeps ``source``: ``lenscat`` for real candidates,
``mock`` for lenses the embedded mock survey planted (never mixed into lenscat tables),
``dr10`` for negatives. Object ids are strings: lenscat name, mock lens name, or
``<BRICKNAME>-<OBJID>`` for survey sources.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

OBJECT_COLUMNS: tuple[str, ...] = (
    "object_id",
    "ra",
    "dec",
    "brickname",
    "label",
    "tier",
    "source",
    "split",
)


def positive_objects(
    crossmatch: pd.DataFrame,
    planted: pd.DataFrame,
    bricks: Sequence[str],
    mock_tier_a_min_arc_snr: float,
) -> pd.DataFrame:
    """Lenses to cut in ``bricks``: matched lenscat candidates plus planted mock lenses.

    Args:
        crossmatch: ``positives_dr10_crossmatch`` rows (name, ra, dec, tier, matched,
            BRICKNAME); only matched ones are cut, at the candidate's position.
        planted: the survey's planted lenses (columns source, name, ra, dec, arc_snr_max);
            rows with ``source == "mock"`` are added, tier A when ``arc_snr_max`` reaches
            ``mock_tier_a_min_arc_snr`` else B. Empty for real DR10.
    """
    wanted = set(bricks)
    real = crossmatch[crossmatch["matched"].astype(bool) & crossmatch["BRICKNAME"].isin(wanted)]
    frames = [
        pd.DataFrame(
            {
                "object_id": real["name"].astype(str),
                "ra": real["ra"].astype(float),
                "dec": real["dec"].astype(float),
                "brickname": real["BRICKNAME"].astype(str),
                "tier": real["tier"].astype(str),
                "source": "lenscat",
            }
        )
    ]
    if len(planted):
        mock = planted[(planted["source"] == "mock") & planted["brickname"].isin(wanted)]
        frames.append(
            pd.DataFrame(
                {
                    "object_id": mock["name"].astype(str),
                    "ra": mock["ra"].astype(float),
                    "dec": mock["dec"].astype(float),
                    "brickname": mock["brickname"].astype(str),
                    "tier": np.where(mock["arc_snr_max"] >= mock_tier_a_min_arc_snr, "A", "B"),
                    "source": "mock",
                }
            )
        )
    objects = pd.concat(frames, ignore_index=True)
    objects["label"] = np.int8(1)
    objects["split"] = ""
    return objects[list(OBJECT_COLUMNS)].sort_values("object_id", ignore_index=True)


def negative_objects(manifest: pd.DataFrame, bricks: Sequence[str]) -> pd.DataFrame:
    """Negatives of ``negative_manifest`` in ``bricks``, with their tier (N1/N2) and split."""
    rows = manifest[manifest["BRICKNAME"].isin(set(bricks))]
    objects = pd.DataFrame(
        {
            "object_id": rows["BRICKNAME"].astype(str) + "-" + rows["OBJID"].astype(str),
            "ra": rows["RA"].astype(float),
            "dec": rows["DEC"].astype(float),
            "brickname": rows["BRICKNAME"].astype(str),
            "label": np.int8(0),
            "tier": rows["pool_class"].astype(str),
            "source": "dr10",
            "split": rows["split"].astype(str),
        }
    )
    return objects[list(OBJECT_COLUMNS)].sort_values("object_id", ignore_index=True)


def training_manifest(
    indexes: Sequence[pd.DataFrame],
    split_of: Callable[[np.ndarray, np.ndarray], np.ndarray],
    tier_weights: Mapping[str, float],
) -> pd.DataFrame:
    """One row per usable cutout (status ``ok``) of the given shard-set indexes.

    ``indexes``: index tables of positive and negative shard sets (object columns plus
    ``status``, ``cutout_uri``, ``cutout_row``, ``partition``). Positives carry no split of
    their own: ``split_of(ra, dec)`` (deg) gives it, the same sky-cell split as the
    negatives. ``sample_weight`` comes from ``tier_weights``.
    """
    table = pd.concat(list(indexes), ignore_index=True)
    table = table[table["status"] == "ok"].reset_index(drop=True)
    positives = (table["label"] == 1).to_numpy()
    if positives.any():
        table.loc[positives, "split"] = np.asarray(
            split_of(table["ra"].to_numpy()[positives], table["dec"].to_numpy()[positives])
        )
    unknown = sorted(set(table["tier"]) - set(tier_weights))
    if unknown:
        raise ValueError(f"no sample weight configured for tier(s) {unknown}")
    table["sample_weight"] = table["tier"].map(tier_weights).astype(np.float32)
    columns = [*OBJECT_COLUMNS, "sample_weight", "cutout_uri", "cutout_row", "partition"]
    return table[columns].sort_values(["label", "object_id"], ignore_index=True)


def parity_manifest(
    manifest: pd.DataFrame, parity_splits: Mapping[str, Sequence[str]]
) -> pd.DataFrame:
    """The train/val parity manifest: ``split`` remapped (e.g. val + test -> val)."""
    mapping = {source: target for target, sources in parity_splits.items() for source in sources}
    missing = sorted(set(manifest["split"]) - set(mapping))
    if missing:
        raise ValueError(f"splits {missing} are not mapped by parity_splits")
    return manifest.assign(split=manifest["split"].map(mapping))


def split_counts(manifest: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Counts per split and tier: ``{split: {tier: n}}``."""
    counts = manifest.groupby(["split", "tier"]).size()
    out: dict[str, dict[str, int]] = {}
    for (split, tier), n in counts.items():
        out.setdefault(str(split), {})[str(tier)] = int(n)
    return out
