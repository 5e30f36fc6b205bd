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

from stronglens_assets.science.catalogs.crossmatch import crossmatch_positives
from stronglens_assets.science.samples.negative_config import NegativeSelectionConfig
from stronglens_assets.science.samples.quality import extinction_corrected_mag, quality_reasons
from stronglens_assets.science.stats.roc import auc

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
CATALOG_COLUMNS: tuple[str, ...] = (
    "type",
    "mag_r",
    "shape_r",
    "psfdepth_g",
    "psfdepth_r",
    "psfdepth_z",
)
"""Per-object catalog columns of the DR10 source (for a positive: its matched source, the
deflector): Tractor ``TYPE``; ``mag_r`` extinction-corrected AB r; ``shape_r`` half-light
radius [arcsec]; ``psfdepth_<b>`` sweep PSFDEPTH [1/nanomaggy^2]."""
PSFSIZE_COLUMNS: tuple[str, ...] = ("psfsize_g", "psfsize_r", "psfsize_z")
"""PSF FWHM [arcsec] at the object's pixel, read from the cutout (shard ``psfsize``)."""
MANIFEST_COLUMNS: tuple[str, ...] = (
    *OBJECT_COLUMNS,
    "sample_weight",
    "cutout_key",
    "cutout_row",
    "partition",
    *CATALOG_COLUMNS,
    *PSFSIZE_COLUMNS,
    "gate_reason",
)
"""Columns of ``training_manifest`` and the parity manifest, in order. ``cutout_key`` is the
shard's storage key relative to the storage root (never an absolute URI), ``cutout_row`` the
row in that shard; ``gate_reason`` is ``""`` or why the object fails the quality gates."""


def catalog_columns(sources: pd.DataFrame) -> pd.DataFrame:
    """:data:`CATALOG_COLUMNS` from sweep-named columns (TYPE, FLUX_R, MW_TRANSMISSION_R,
    SHAPE_R, PSFDEPTH_G/R/Z; missing values or absent PSFDEPTH columns give NaN / "")."""
    n = len(sources)

    def floats(name: str) -> np.ndarray:
        if name not in sources.columns:
            return np.full(n, np.nan)
        return sources[name].to_numpy(dtype=np.float64, na_value=np.nan)

    kind = sources["TYPE"] if "TYPE" in sources.columns else pd.Series([""] * n)
    out = pd.DataFrame(
        {
            "type": kind.fillna("").astype(str).str.strip().to_numpy(),
            "mag_r": extinction_corrected_mag(floats("FLUX_R"), floats("MW_TRANSMISSION_R")),
            "shape_r": floats("SHAPE_R"),
        }
    )
    for band in "grz":
        out[f"psfdepth_{band}"] = floats(f"PSFDEPTH_{band.upper()}")
    return out


def positive_objects(
    crossmatch: pd.DataFrame,
    planted: pd.DataFrame,
    bricks: Sequence[str],
    sweep: pd.DataFrame,
    gates: NegativeSelectionConfig,
    mock_tier_a_min_snr: float,
    *,
    mock_grade_column: str = "arc_residual_snr",
    match_radius_arcsec: float = 1.0,
) -> pd.DataFrame:
    """Lenses to cut in ``bricks``: matched lenscat candidates plus planted mock lenses.

    Args:
        crossmatch: ``positives_dr10_crossmatch`` rows (name, ra, dec, tier, matched and the
            matched source's sweep columns); only matched ones are cut, at the candidate's
            position.
        planted: the survey's planted lenses (columns source, name, brickname, ra, dec and
            ``mock_grade_column``); rows with ``source == "mock"`` are added, tier A when
            ``mock_grade_column`` reaches ``mock_tier_a_min_snr`` else B. Empty for real DR10.
        sweep: the bricks' sweep rows: a mock lens's deflector is its nearest source within
            ``match_radius_arcsec`` (the same rule as the lenscat crossmatch).
        gates: the negatives' quality gates, applied to every positive's matched source;
            ``gate_reason`` is ``""`` or the first failing gate (``unmatched`` for a mock lens
            without a source). Objects are kept here; the manifest decides.

    Returns:
        :data:`OBJECT_COLUMNS` + :data:`CATALOG_COLUMNS` + ``gate_reason``, by object_id.
    """
    wanted = set(bricks)
    real = crossmatch[crossmatch["matched"].astype(bool) & crossmatch["BRICKNAME"].isin(wanted)]
    real = real.reset_index(drop=True)
    frames = [
        pd.concat(
            [
                pd.DataFrame(
                    {
                        "object_id": real["name"].astype(str),
                        "ra": real["ra"].astype(float),
                        "dec": real["dec"].astype(float),
                        "brickname": real["BRICKNAME"].astype(str),
                        "tier": real["tier"].astype(str),
                        "source": "lenscat",
                        "gate_reason": quality_reasons(real, gates) if len(real) else [],
                    }
                ),
                catalog_columns(real),
            ],
            axis=1,
        )
    ]
    mock = planted[(planted["source"] == "mock") & planted["brickname"].isin(wanted)]
    if len(mock):
        mock = mock.reset_index(drop=True)
        if mock_grade_column not in mock.columns:
            raise ValueError(f"planted lenses lack the grading column {mock_grade_column!r}")
        matched = crossmatch_positives(mock[["ra", "dec"]], sweep, match_radius_arcsec)
        reasons = np.full(len(mock), "unmatched", dtype=object)
        found = matched["matched"].to_numpy(dtype=bool)
        if found.any():
            reasons[found] = quality_reasons(matched[found], gates)
        frames.append(
            pd.concat(
                [
                    pd.DataFrame(
                        {
                            "object_id": mock["name"].astype(str),
                            "ra": mock["ra"].astype(float),
                            "dec": mock["dec"].astype(float),
                            "brickname": mock["brickname"].astype(str),
                            "tier": np.where(
                                mock[mock_grade_column].to_numpy(float) >= mock_tier_a_min_snr,
                                "A",
                                "B",
                            ),
                            "source": "mock",
                            "gate_reason": reasons.astype(str),
                        }
                    ),
                    catalog_columns(matched),
                ],
                axis=1,
            )
        )
    objects = pd.concat(frames, ignore_index=True)
    objects["label"] = np.int8(1)
    objects["split"] = ""
    columns = [*OBJECT_COLUMNS, *CATALOG_COLUMNS, "gate_reason"]
    return objects[columns].sort_values("object_id", ignore_index=True)


def negative_objects(manifest: pd.DataFrame, bricks: Sequence[str]) -> pd.DataFrame:
    """Negatives of ``negative_manifest`` in ``bricks``, with their tier (N1/N2), split and
    :data:`CATALOG_COLUMNS` (they passed the gates in the pool: ``gate_reason`` is "")."""
    rows = manifest[manifest["BRICKNAME"].isin(set(bricks))].reset_index(drop=True)
    objects = pd.concat(
        [
            pd.DataFrame(
                {
                    "object_id": rows["BRICKNAME"].astype(str) + "-" + rows["OBJID"].astype(str),
                    "ra": rows["RA"].astype(float),
                    "dec": rows["DEC"].astype(float),
                    "brickname": rows["BRICKNAME"].astype(str),
                    "label": np.int8(0),
                    "tier": rows["pool_class"].astype(str),
                    "source": "dr10",
                    "split": rows["split"].astype(str),
                    "gate_reason": "",
                }
            ),
            catalog_columns(rows),
        ],
        axis=1,
    )
    columns = [*OBJECT_COLUMNS, *CATALOG_COLUMNS, "gate_reason"]
    return objects[columns].sort_values("object_id", ignore_index=True)


def _losses(table: pd.DataFrame) -> pd.Series:
    """Why each index row is not usable: ``cutout:<status>``, ``gate:<reason>`` or ``""``."""
    status = table["status"].astype(str)
    gate = table["gate_reason"].fillna("").astype(str) if "gate_reason" in table else ""
    reason = np.where(status != "ok", "cutout:" + status, "")
    reason = np.where((reason == "") & (gate != ""), "gate:" + gate, reason)
    return pd.Series(reason, index=table.index, dtype=object)


def _count_losses(tiers: pd.Series, reasons: pd.Series) -> dict[str, dict]:
    out: dict[str, dict] = {str(t): {} for t in sorted(tiers.astype(str).unique())}
    lost = (reasons != "").to_numpy()
    counts = pd.DataFrame({"tier": tiers.astype(str)[lost], "reason": reasons[lost]})
    for (tier, why), n in counts.groupby(["tier", "reason"]).size().items():
        out[str(tier)][str(why)] = int(n)
    return out


def rejection_counts(index: pd.DataFrame) -> dict[str, dict]:
    """Objects of a shard-set index lost per tier and reason: ``{tier: {reason: n}}``.

    Reasons: ``cutout:<status>`` (outside_brick, edge, nonfinite, zero_invvar, bad_psfsize)
    for rejected cutouts and ``gate:<reason>`` for cut objects failing the quality gates
    (positives; :data:`~stronglens_assets.science.samples.quality.GATE_REASONS`). Tiers without
    losses map to ``{}``.
    """
    return _count_losses(index["tier"], _losses(index))


def training_manifest(
    indexes: Sequence[pd.DataFrame],
    split_of: Callable[[np.ndarray, np.ndarray], np.ndarray],
    tier_weights: Mapping[str, float],
    *,
    exclude_gated: bool = True,
    guard_of: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> tuple[pd.DataFrame, dict[str, dict]]:
    """One row per usable cutout of the given shard-set indexes, and the losses per tier.

    ``indexes``: index tables of positive and negative shard sets (object, catalog and
    psfsize columns plus ``status``, ``gate_reason``, ``cutout_key``, ``cutout_row``,
    ``partition``). Usable: status ``ok`` and, with ``exclude_gated``, ``gate_reason == ""``
    (positives failing the negatives' quality gates are left out). Positives carry no split
    of their own: ``split_of(ra, dec)`` (deg) gives it, the same sky-cell split as the
    negatives; ``guard_of(ra, dec)`` (True = the cutout box may reach a cell of another
    split) drops positives as the pool drops negatives. ``sample_weight`` comes from
    ``tier_weights``.

    Returns ``(manifest, losses)``: the manifest (:data:`MANIFEST_COLUMNS`, sorted by label
    and object_id) and ``{tier: {reason: n}}`` of every index row not in it (reasons of
    :func:`rejection_counts`, plus ``split_guard``).
    """
    table = pd.concat(list(indexes), ignore_index=True)
    if "gate_reason" not in table.columns:
        table["gate_reason"] = ""
    table["gate_reason"] = table["gate_reason"].fillna("").astype(str)
    losses = _losses(table)
    if not exclude_gated:
        losses = losses.where(~losses.str.startswith("gate:"), "")
    extra = pd.Series("", index=table.index, dtype=object)
    positives = (table["label"] == 1).to_numpy() & (losses == "").to_numpy()
    if positives.any():
        ra, dec = table["ra"].to_numpy()[positives], table["dec"].to_numpy()[positives]
        table.loc[positives, "split"] = np.asarray(split_of(ra, dec))
        if guard_of is not None:
            guarded = np.asarray(guard_of(ra, dec), dtype=bool)
            extra.iloc[np.flatnonzero(positives)[guarded]] = "split_guard"
    lost = _count_losses(table["tier"], losses.where(losses != "", extra))
    table = table[(losses == "").to_numpy() & (extra == "").to_numpy()].reset_index(drop=True)
    unknown = sorted(set(table["tier"]) - set(tier_weights))
    if unknown:
        raise ValueError(f"no sample weight configured for tier(s) {unknown}")
    table["sample_weight"] = table["tier"].map(tier_weights).astype(np.float32)
    manifest = table[list(MANIFEST_COLUMNS)].sort_values(["label", "object_id"], ignore_index=True)
    return manifest, lost


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


def magnitude_auc(manifest: pd.DataFrame, negative_tier: str = "N1") -> float:
    """How well the r magnitude alone separates positives from ``negative_tier`` negatives.

    ROC AUC (:func:`~stronglens_assets.science.stats.roc.auc`) of ``mag_r`` as a score for
    label 1 against the negatives of ``negative_tier``, folded to ``max(AUC, 1 - AUC)``: 0.5
    means no information, 1 a perfect shortcut in either direction. NaN when a class is empty.
    Rows with a non-finite ``mag_r`` are ignored.
    """
    rows = (manifest["label"] == 1) | (manifest["tier"] == negative_tier)
    rows &= np.isfinite(manifest["mag_r"].to_numpy(dtype=np.float64))
    value = auc(manifest.loc[rows, "label"].to_numpy(), manifest.loc[rows, "mag_r"].to_numpy())
    return max(value, 1.0 - value)


def positive_summary(manifest: pd.DataFrame) -> dict[str, float | int | None]:
    """Counts of the positives in a manifest: per source and tier, and the mock Tier-A share."""
    pos = manifest[manifest["label"] == 1]
    mock = pos[pos["source"] == "mock"]
    out: dict[str, float | int | None] = {
        f"{source}_{tier}": int(n)
        for (source, tier), n in pos.groupby(["source", "tier"]).size().items()
    }
    out["mock_tier_a_fraction"] = float((mock["tier"] == "A").mean()) if len(mock) else None
    return out
