"""The root of every error this package raises on purpose.

Each error class of the package derives from :class:`StronglensError` as well as from the
built-in it always had (``ValueError``, ``FileNotFoundError``, ``RuntimeError``, ...), so
``except StronglensError`` catches all of them and existing ``except ValueError`` still work.
Pure module: no imports, usable from ``science/`` and everywhere else.
"""

from __future__ import annotations

__all__ = ["StronglensError"]


class StronglensError(Exception):
    """Base class of the package's errors; the message names the file, field or key at fault."""
