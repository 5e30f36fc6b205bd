"""McNemar's test for paired detections (e.g. the same injections with and without noise).

Of ``n`` paired trials, ``b`` are detected only under condition B (the Poisson variant:
"gained") and ``c`` only under condition A (the baseline: "lost"); concordant pairs carry no
information. Under the null hypothesis a discordant pair is equally likely to fall either way,
so ``b ~ Binomial(b + c, 1/2)``.

* Exact test: two-sided binomial p-value of ``b`` in ``b + c`` trials at 1/2
  (``scipy.stats.binomtest``), which for p = 1/2 equals ``min(1, 2 P(X <= min(b, c)))``.
* Continuity-corrected chi-squared (Edwards 1948): ``chi2 = (|b - c| - 1)^2 / (b + c)`` with one
  degree of freedom, ``p = P(chi2_1 > chi2)``. The square is taken as written, without clamping
  ``|b - c| - 1`` at 0, as statsmodels' ``mcnemar(exact=False, correction=True)`` and the published
  study do; so ``b = c`` gives ``chi2 = 1 / (b + c)`` rather than 0. Quote the exact p for small
  ``b + c``.
* No discordant pair (``b + c = 0``): no evidence either way, ``chi2 = 0`` and both p = 1.

Pooling several strata (magnitude bins) sums ``b`` and ``c`` over them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from scipy.stats import binomtest, chi2

__all__ = ["McNemarResult", "mcnemar_test", "pooled_mcnemar"]


@dataclass(frozen=True)
class McNemarResult:
    """``b`` (only B detected), ``c`` (only A detected), the corrected chi^2 and both p-values."""

    b: int
    c: int
    chi2: float
    p_chi2: float
    p_exact: float


def _count(value: int, name: str) -> int:
    if isinstance(value, bool) or int(value) != value or value < 0:
        raise ValueError(f"McNemar count {name} must be a non-negative integer, got {value!r}")
    return int(value)


def mcnemar_test(b: int, c: int) -> McNemarResult:
    """McNemar's test on the discordant counts ``b`` and ``c`` (module docstring)."""
    b, c = _count(b, "b"), _count(c, "c")
    discordant = b + c
    if discordant == 0:
        return McNemarResult(0, 0, 0.0, 1.0, 1.0)
    statistic = (abs(b - c) - 1) ** 2 / discordant
    return McNemarResult(
        b,
        c,
        float(statistic),
        float(chi2.sf(statistic, df=1)),
        float(binomtest(b, discordant, 0.5, alternative="two-sided").pvalue),
    )


def pooled_mcnemar(pairs: Iterable[tuple[int, int]]) -> McNemarResult:
    """McNemar's test on ``(b, c)`` summed over strata."""
    total_b = total_c = 0
    for b, c in pairs:
        total_b += _count(b, "b")
        total_c += _count(c, "c")
    return mcnemar_test(total_b, total_c)
