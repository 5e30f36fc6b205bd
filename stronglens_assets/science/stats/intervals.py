"""Binomial proportion intervals: the Wilson score interval, the one used project-wide.

``k`` successes in ``n`` trials, confidence level ``cl`` (0.6827 = 1 sigma by default),
``z = Phi^-1((1 + cl) / 2)``, ``p = k / n``::

    centre = (k + z^2 / 2) / (n + z^2)
    half   = z sqrt(n) / (n + z^2) * sqrt(p (1 - p) + z^2 / (4 n))

(Wilson 1927; the same numbers as ``astropy.stats.binom_conf_interval(k, n, cl, "wilson")``
to ~1e-15.) Two deliberate choices where implementations differ:

* **k = 0 and k = n**: the interval is pinned to contain ``p`` and clipped to [0, 1], so
  ``k = 0`` gives a lower bound of exactly 0 and ``k = n`` an upper bound of exactly 1 (the
  analytic values; astropy returns ~1e-18 at k = 0 from rounding);
* **n = 0** (an empty cell): NaN bounds, not an error, so grids with empty cells work.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import ndtri

__all__ = ["DEFAULT_CONFIDENCE_LEVEL", "wilson_interval"]

DEFAULT_CONFIDENCE_LEVEL: float = 0.6827
"""Binomial intervals are reported at 68.27% (1 sigma) unless a caller asks otherwise."""


def wilson_interval(
    k: npt.ArrayLike, n: npt.ArrayLike, confidence_level: float = DEFAULT_CONFIDENCE_LEVEL
) -> tuple[Any, Any]:
    """Wilson score interval of ``k`` successes in ``n`` trials (module docstring).

    Scalars in, floats out; arrays in (broadcast together), float64 arrays out. NaN where
    ``n == 0``. ``ValueError`` unless ``0 <= k <= n`` and ``0 < confidence_level < 1``.
    """
    if not 0.0 < confidence_level < 1.0:
        raise ValueError(f"confidence_level must be in (0, 1), got {confidence_level}")
    k_a = np.asarray(k, dtype=np.float64)
    n_a = np.asarray(n, dtype=np.float64)
    if np.any(k_a < 0) or np.any(k_a > n_a) or not np.all(np.isfinite(n_a)):
        raise ValueError("Wilson interval needs 0 <= k <= n in every cell")
    z = float(ndtri(0.5 + confidence_level / 2.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k_a / n_a
        centre = (k_a + z * z / 2.0) / (n_a + z * z)
        half = z * np.sqrt(n_a) / (n_a + z * z) * np.sqrt(p * (1.0 - p) + z * z / (4.0 * n_a))
        # the interval always contains p; pin it there against rounding (k = 0 gives low = 0)
        low = np.minimum(np.clip(centre - half, 0.0, 1.0), p)
        high = np.maximum(np.clip(centre + half, 0.0, 1.0), p)
    empty = n_a == 0
    low = np.where(empty, np.nan, low)
    high = np.where(empty, np.nan, high)
    if low.ndim == 0:
        return float(low), float(high)
    return low, high
