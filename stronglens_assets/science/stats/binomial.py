"""Binomial intervals beyond Wilson: the equal-tailed Jeffreys interval.

The D06 selection-function table (published schema) gives each cell an equal-tailed Bayesian
interval with the Jeffreys prior Beta(1/2, 1/2): for ``k`` detections in ``n`` injections the
posterior is Beta(k + 1/2, n - k + 1/2) and the interval at level ``c`` is its
``(1 - c) / 2`` and ``(1 + c) / 2`` quantiles (``scipy.stats.beta.ppf``), with no special
case at ``k = 0`` or ``k = n`` (the published files keep the plain quantiles there, so the
lower bound is above 0 at ``k = 0``). Wilson score intervals, used for marginal rates, live in
:mod:`stronglens_assets.science.stats.intervals`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.stats import beta

__all__ = ["jeffreys_interval"]


def jeffreys_interval(
    k: npt.ArrayLike, n: npt.ArrayLike, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Equal-tailed Jeffreys interval of ``k`` successes in ``n`` trials, elementwise.

    Returns ``(low, high)`` arrays of the broadcast shape of ``k`` and ``n``; NaN where
    ``n == 0``.

    Raises:
        ValueError: ``confidence`` outside (0, 1), negative counts or ``k > n``.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    k_arr, n_arr = np.broadcast_arrays(np.asarray(k, dtype=np.float64), np.asarray(n, np.float64))
    if np.any(k_arr < 0) or np.any(k_arr > n_arr):
        raise ValueError("need 0 <= k <= n")
    tail = (1.0 - confidence) / 2.0
    low = np.full(k_arr.shape, np.nan)
    high = np.full(k_arr.shape, np.nan)
    ok = n_arr > 0
    a, b = k_arr[ok] + 0.5, n_arr[ok] - k_arr[ok] + 0.5
    low[ok] = beta.ppf(tail, a, b)
    high[ok] = beta.ppf(1.0 - tail, a, b)
    return low, high
