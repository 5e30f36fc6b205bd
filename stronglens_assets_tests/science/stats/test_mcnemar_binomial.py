"""McNemar's test and the Jeffreys interval against analytic values and the published files."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2

from stronglens_assets.science.stats.binomial import jeffreys_interval
from stronglens_assets.science.stats.mcnemar import mcnemar_test, pooled_mcnemar
from stronglens_assets_tests.science.reporting.published import PUBLISHED_DIR


def _exact_two_sided(b: int, c: int) -> float:
    """Two-sided binomial p at 1/2 written out: 2 P(X <= min(b, c)), capped at 1."""
    n = b + c
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2**n
    return min(1.0, 2 * tail)


@pytest.mark.parametrize(
    ("b", "c"), [(27, 6), (21, 3), (73, 28), (0, 1), (1, 1), (7, 7), (0, 12), (40, 35)]
)
def test_mcnemar_matches_the_formulas(b: int, c: int) -> None:
    result = mcnemar_test(b, c)
    statistic = (abs(b - c) - 1) ** 2 / (b + c)
    assert (result.b, result.c) == (b, c)
    assert result.chi2 == pytest.approx(statistic, rel=1e-12)
    assert result.p_chi2 == pytest.approx(chi2.sf(statistic, 1), rel=1e-12)
    assert result.p_exact == pytest.approx(_exact_two_sided(b, c), rel=1e-9)


def test_mcnemar_edge_cases() -> None:
    assert mcnemar_test(0, 12).p_exact == pytest.approx(2 * 0.5**12)
    assert mcnemar_test(5, 5).chi2 == pytest.approx(0.1)  # (|b-c|-1)^2 unclamped, as published
    none = mcnemar_test(0, 0)
    assert (none.chi2, none.p_chi2, none.p_exact) == (0.0, 1.0, 1.0)
    pooled = pooled_mcnemar([(25, 19), (27, 6), (21, 3)])
    assert (pooled.b, pooled.c) == (73, 28)
    assert pooled.p_chi2 == pytest.approx(1.2e-5, rel=0.01)  # PROTOCOL: pooled 20-23
    for bad in ((-1, 2), (1.5, 2), (True, 2)):
        with pytest.raises(ValueError, match="non-negative integer"):
            mcnemar_test(*bad)


def test_jeffreys_interval_reproduces_every_published_cell() -> None:
    table = pd.read_csv(PUBLISHED_DIR / "grid_no_poisson_selection_function.csv")
    present = table[table["n_injections"] > 0]
    k, n = present["n_detected"].to_numpy(), present["n_injections"].to_numpy()
    for level, lo, hi in ((0.68, "ci68_lo", "ci68_hi"), (0.95, "ci95_lo", "ci95_hi")):
        low, high = jeffreys_interval(k, n, level)
        np.testing.assert_allclose(low, present[lo], rtol=0, atol=1e-12)
        np.testing.assert_allclose(high, present[hi], rtol=0, atol=1e-12)
    assert (k == 0).any() and (k == n).any()  # the edge cases are among them


def test_jeffreys_interval_edges() -> None:
    # k = n = 1: the posterior is Beta(1.5, 0.5); the bounds are its 2.5% and 97.5% points
    low, high = jeffreys_interval(1, 1, 0.95)
    from scipy.stats import beta

    assert beta.cdf(low, 1.5, 0.5) == pytest.approx(0.025)
    assert beta.cdf(high, 1.5, 0.5) == pytest.approx(0.975)
    low, high = jeffreys_interval([0, 3], [0, 10])
    assert np.isnan(low[0]) and np.isnan(high[0]) and 0 < low[1] < 0.3 < high[1] < 1
    with pytest.raises(ValueError, match="k <= n"):
        jeffreys_interval(5, 4)
    with pytest.raises(ValueError, match="confidence"):
        jeffreys_interval(1, 4, 1.5)
