"""Required-column checks of tables (one message format everywhere).

``require_columns(df.columns, ("ra", "dec"), "positives table")`` raises
``<error>("positives table lacks column(s) 'ra', 'dec'")`` naming every missing column; the
error class defaults to :class:`MissingColumnsError` (a ``ValueError``), and domain readers pass
their own (e.g. ``CatalogSchemaError``).
"""

from __future__ import annotations

from collections.abc import Iterable

from stronglens_assets.errors import StronglensError

__all__ = ["MissingColumnsError", "missing_columns", "require_columns"]


class MissingColumnsError(StronglensError, ValueError):
    """A table lacks columns a function needs; the message names the table and the columns."""


def missing_columns(columns: Iterable[str], required: Iterable[str]) -> list[str]:
    """The names of ``required`` not in ``columns``, in ``required``'s order."""
    present = set(columns)
    return [name for name in required if name not in present]


def require_columns(
    columns: Iterable[str],
    required: Iterable[str],
    source: str,
    *,
    hint: str = "",
    error: type[Exception] = MissingColumnsError,
) -> None:
    """Raise ``error`` naming ``source`` and every column of ``required`` not in ``columns``.

    ``hint`` (e.g. how to fix it) is appended to the message after ``"; "``.
    """
    missing = missing_columns(columns, required)
    if missing:
        names = ", ".join(repr(name) for name in missing)
        raise error(f"{source} lacks column(s) {names}" + (f"; {hint}" if hint else ""))
