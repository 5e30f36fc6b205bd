"""D06 hosts: validation-split non-lenses with their observing conditions, binned to the grid.

* Hosts are the non-lenses (label 0) of the manifest splits the config names (the paper: the
  validation split), at most ``max_hosts`` of them drawn uniformly (seeded), sorted by
  ``object_id``.
* Observing conditions per host, from the manifest (catalog columns): ``psf_fwhm`` = the
  r-band ``psfsize_r`` (arcsec FWHM) and ``depth_5sig`` = the r-band 5-sigma point-source
  depth ``22.5 - 2.5 log10(5 / sqrt(psfdepth_r))`` (AB mag; ``psfdepth`` is the PSF-flux
  inverse variance in 1/nanomaggy^2). A host whose psfsize or psfdepth is missing, not finite
  or <= 0 cannot be binned: it is left out and counted (``n_bad_conditions``).
* Binning: each grid axis value is a bin centre; bin edges lie midway between neighbouring
  centres and the outer edges half a neighbour spacing beyond the first and last centre
  (``[c - s/2, c + s/2)`` on a uniform grid of step ``s``). A value outside every bin gets
  index -1 (the host serves no cell).
* Cutouts (:func:`read_host_arrays`): ``cutout`` (nanomaggies), ``invvar`` (1/nanomaggy^2) and
  ``psfsize`` (arcsec) of each host, each shard read once; ``usable`` is False where the cutout
  has a non-finite pixel or the psfsize is not finite and > 0 (the injection then retries with
  another host and counts the failure).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from stronglens_assets.errors import StronglensError
from stronglens_assets.science.core.columns import require_columns
from stronglens_assets.science.core.npz import decode_npz
from stronglens_assets.science.core.units import AB_ZERO_POINT

__all__ = [
    "HOST_COLUMNS",
    "HOST_MEMBERS",
    "HostError",
    "axis_bins",
    "depth_5sig",
    "host_table",
    "manifest_lenses",
    "manifest_negatives",
    "read_host_arrays",
]

#: Manifest columns the D06 hosts need.
HOST_COLUMNS: tuple[str, ...] = (
    "object_id",
    "label",
    "split",
    "cutout_key",
    "cutout_row",
    "psfsize_r",
    "psfdepth_r",
)
#: Arrays of a host read from its cutout shard.
HOST_MEMBERS: tuple[str, ...] = ("cutout", "invvar", "psfsize")


class HostError(StronglensError, ValueError):
    """Hosts or lenses cannot be chosen or read; the message names the column, file or row."""


def _require(manifest: pd.DataFrame, columns: Sequence[str]) -> None:
    require_columns(
        manifest.columns,
        columns,
        "training_manifest",
        hint="needed by the D06 hosts (psfsize_r, psfdepth_r give the observing conditions)",
        error=HostError,
    )


def manifest_negatives(manifest: pd.DataFrame, splits: Sequence[str]) -> pd.DataFrame:
    """Non-lenses (label 0) of ``splits``, sorted by ``object_id``."""
    _require(manifest, HOST_COLUMNS)
    rows = manifest[(manifest["label"] == 0) & manifest["split"].isin(list(splits))]
    return rows.sort_values("object_id", ignore_index=True)


def manifest_lenses(
    manifest: pd.DataFrame, splits: Sequence[str], tiers: Sequence[str], sources: Sequence[str]
) -> pd.DataFrame:
    """Lenses (label 1) of ``splits``, ``tiers`` and ``sources``, sorted by ``object_id``."""
    _require(manifest, ("object_id", "label", "split", "tier", "source", "cutout_key"))
    rows = manifest[
        (manifest["label"] == 1)
        & manifest["split"].isin(list(splits))
        & manifest["tier"].isin(list(tiers))
        & manifest["source"].isin(list(sources))
    ]
    return rows.sort_values("object_id", ignore_index=True)


def depth_5sig(psfdepth: np.ndarray, zero_point: float = AB_ZERO_POINT) -> np.ndarray:
    """5-sigma point-source depth (AB mag) of a PSF-flux inverse variance (1/nanomaggy^2);
    NaN where it is not finite and > 0."""
    ivar = np.asarray(psfdepth, dtype=np.float64)
    good = np.isfinite(ivar) & (ivar > 0)
    out = np.full(ivar.shape, np.nan)
    out[good] = zero_point - 2.5 * np.log10(5.0 / np.sqrt(ivar[good]))
    return out


def axis_bins(values: np.ndarray, centres: Sequence[float]) -> np.ndarray:
    """Index of the bin (centred on ``centres``, module docstring) holding each value; -1
    outside every bin or for NaN."""
    c = np.asarray(centres, dtype=np.float64)
    if len(c) == 1:
        half = np.array([0.5 * abs(c[0]) if c[0] else 0.5])
        edges = np.array([c[0] - half[0], c[0] + half[0]])
    else:
        mids = 0.5 * (c[1:] + c[:-1])
        edges = np.concatenate([[c[0] - (mids[0] - c[0])], mids, [c[-1] + (c[-1] - mids[-1])]])
    v = np.asarray(values, dtype=np.float64)
    index = np.searchsorted(edges, v, side="right") - 1
    inside = np.isfinite(v) & (index >= 0) & (index < len(c))
    return np.where(inside, index, -1).astype(np.int64)


def host_table(
    negatives: pd.DataFrame,
    *,
    psf_fwhm: Sequence[float],
    depth: Sequence[float],
    max_hosts: int,
    rng: np.random.Generator,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """The hosts (module docstring): at most ``max_hosts`` of ``negatives`` with finite,
    positive conditions, with ``psf_fwhm``, ``depth_5sig``, ``psf_bin``, ``depth_bin``.

    Returns ``(table, counts)``; counts: ``n_candidates``, ``n_bad_conditions``,
    ``n_hosts``, ``n_binned`` (hosts inside a grid bin on both axes).
    """
    if len(negatives) == 0:
        raise HostError("no non-lens in the host splits: nothing to inject into")
    psf = pd.to_numeric(negatives["psfsize_r"], errors="coerce").to_numpy(np.float64)
    depth_mag = depth_5sig(pd.to_numeric(negatives["psfdepth_r"], errors="coerce").to_numpy())
    good = np.isfinite(psf) & (psf > 0) & np.isfinite(depth_mag)
    candidates = np.flatnonzero(good)
    if len(candidates) == 0:
        raise HostError(
            f"none of the {len(negatives)} candidate hosts has a finite psfsize_r > 0 and "
            "psfdepth_r > 0 in training_manifest"
        )
    n = min(max_hosts, len(candidates))
    chosen = np.sort(rng.choice(candidates, size=n, replace=False))
    table = negatives.iloc[chosen].reset_index(drop=True).copy()
    table["psf_fwhm"] = psf[chosen]
    table["depth_5sig"] = depth_mag[chosen]
    table["psf_bin"] = axis_bins(table["psf_fwhm"].to_numpy(), psf_fwhm)
    table["depth_bin"] = axis_bins(table["depth_5sig"].to_numpy(), depth)
    binned = int(((table["psf_bin"] >= 0) & (table["depth_bin"] >= 0)).sum())
    counts = {
        "n_candidates": len(negatives),
        "n_bad_conditions": int((~good).sum()),
        "n_hosts": int(n),
        "n_binned": binned,
    }
    return table, counts


def read_host_arrays(
    read_bytes: Callable[[str], bytes],
    table: pd.DataFrame,
    members: Sequence[str] = HOST_MEMBERS,
) -> dict[str, np.ndarray]:
    """``members`` of the rows of ``table`` (its order), each shard read once, plus ``usable``.

    ``read_bytes(key)`` returns a shard's bytes. A shard without a member or a row out of
    range is a :class:`HostError` naming the shard key; NaN pixels or a bad psfsize only mark
    the host unusable (module docstring).
    """
    if len(table) == 0:
        raise HostError("no host cutout to read")
    out: dict[str, np.ndarray] = {}
    keys = table["cutout_key"].astype(str).to_numpy()
    rows = table["cutout_row"].to_numpy(dtype=np.int64)
    for key in sorted(set(keys)):
        where = np.flatnonzero(keys == key)
        shard = decode_npz(read_bytes(key), members)
        for member in members:
            if member not in shard:
                raise HostError(f"cutout shard {key} has no array {member!r}")
            data = shard[member]
            if rows[where].max() >= len(data) or rows[where].min() < 0:
                raise HostError(f"cutout_row out of range for shard {key} ({len(data)} rows)")
            if member not in out:
                out[member] = np.empty((len(table), *data.shape[1:]), dtype=np.float32)
            out[member][where] = data[rows[where]]
    usable = np.ones(len(table), dtype=bool)
    if "cutout" in out:
        usable &= np.isfinite(out["cutout"]).reshape(len(table), -1).all(axis=1)
    if "psfsize" in out:
        usable &= (np.isfinite(out["psfsize"]) & (out["psfsize"] > 0)).all(axis=1)
    out["usable"] = usable
    return out
