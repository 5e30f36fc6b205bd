"""The survey footprint from the Legacy Surveys' per-brick summary file.

DR10 publishes ``south/survey-bricks-dr10-south.fits.gz``: one row per brick with data, with
(among others) ``brickname``, ``ra``, ``dec`` (brick centre, deg) and ``nexp_g``, ``nexp_r``,
``nexp_i``, ``nexp_z``: the median number of exposures in the brick's unique
(``BRICK_PRIMARY``) area per band. The study cuts ``grz`` cutouts, so a brick is in the
footprint when each of g, r and z has at least one exposure there.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from stronglens_assets.science.catalogs.lenscat import CatalogSchemaError
from stronglens_assets.science.catalogs.sweeps import first_binary_table
from stronglens_assets.science.core.columns import require_columns

#: Bands a brick needs exposures in (the cutouts are grz).
FOOTPRINT_BANDS: tuple[str, ...] = ("g", "r", "z")


def read_survey_bricks(
    path: str | os.PathLike[str], bands: Sequence[str] = FOOTPRINT_BANDS
) -> pd.DataFrame:
    """``brickname``, ``ra``, ``dec`` and ``nexp_<band>`` of a ``survey-bricks-*.fits[.gz]``
    summary (column names in any case); a missing column or an unreadable file is a
    :class:`CatalogSchemaError` naming the file."""
    source = str(path)
    with first_binary_table(path, source, memmap=False) as hdu:
        data = hdu.data
        by_upper = {name.upper(): name for name in data.columns.names}
        wanted = ["BRICKNAME", "RA", "DEC", *(f"NEXP_{b.upper()}" for b in bands)]
        require_columns(
            by_upper,
            wanted,
            source,
            hint="expected the Legacy Surveys survey-bricks-<release>-<region> summary",
            error=CatalogSchemaError,
        )
        table = pd.DataFrame({name.lower(): np.asarray(data[by_upper[name]]) for name in wanted})
    table["brickname"] = table["brickname"].astype(str).str.strip()
    return table


def bricks_with_coverage(
    table: pd.DataFrame, bands: Sequence[str] = FOOTPRINT_BANDS, min_exposures: int = 1
) -> list[str]:
    """Names of the bricks with at least ``min_exposures`` (median, unique area) in every
    band of ``bands``, sorted."""
    if min_exposures < 1:
        raise ValueError(f"min_exposures must be >= 1, got {min_exposures}")
    covered = np.ones(len(table), dtype=bool)
    for band in bands:
        covered &= table[f"nexp_{band}"].to_numpy() >= min_exposures
    return sorted(table.loc[covered, "brickname"])


def footprint_yaml(bricks: Sequence[str], partition_nside: int, note: str) -> str:
    """A footprint config (``STRONGLENS_FOOTPRINT``) listing ``bricks``; ``note`` becomes its
    leading comment (where the list came from)."""
    lines = [f"# {line}" for line in note.splitlines()]
    lines.append(f"partition_nside: {partition_nside}")
    lines.append("bricks:")
    lines.extend(f"  - {name}" for name in bricks)
    return "\n".join(lines) + "\n"
