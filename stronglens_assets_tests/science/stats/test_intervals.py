"""The Wilson interval against the formula written out and against astropy."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.stats import binom_conf_interval

from stronglens_assets.science.stats.intervals import wilson_interval
from stronglens_assets_tests.harness import wilson_formula


@pytest.mark.parametrize(("k", "n"), [(29, 48), (0, 5), (5, 5), (1, 3)])
def test_wilson_interval_matches_the_formula(k, n):
    assert wilson_interval(k, n, 0.6827) == pytest.approx(wilson_formula(k, n, 0.6827), abs=1e-9)


def test_wilson_matches_astropy() -> None:
    n = np.array([1, 5, 10, 10, 10, 125, 125, 1000, 110_000, 7])
    k = np.array([0, 5, 0, 3, 10, 6, 125, 52, 5697, 1])
    for level in (0.6827, 0.95):
        low, high = wilson_interval(k, n, level)
        reference = binom_conf_interval(k, n, confidence_level=level, interval="wilson")
        np.testing.assert_allclose(low, reference[0], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(high, reference[1], rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError):
        wilson_interval(3, 0)
    with pytest.raises(ValueError):
        wilson_interval(4, 3)


def test_wilson_interval_matches_the_formula_and_handles_empty_cells():
    k = np.array([0, 3, 10, 0])
    n = np.array([10, 10, 10, 0])
    low, high = wilson_interval(k, n)
    for i in range(3):
        lo, hi = wilson_formula(int(k[i]), int(n[i]))
        assert low[i] == pytest.approx(lo, abs=1e-4)
        assert high[i] == pytest.approx(hi, abs=1e-4)
    assert np.isnan(low[3]) and np.isnan(high[3])
    with pytest.raises(ValueError, match="k <= n"):
        wilson_interval([5], [4])


@pytest.mark.parametrize("level", [0.5, 0.6827, 0.9, 0.95, 0.99])
def test_wilson_agrees_with_astropy_everywhere_and_pins_the_ends(level: float) -> None:
    """Every k of n = 1..300 within 1e-12 of astropy; k = 0 gives exactly 0 and k = n exactly
    1 (astropy's lower bound at k = 0 is a rounding residue of ~1e-18, analytically 0)."""
    n = np.repeat(np.arange(1, 301), np.arange(2, 302))
    k = np.concatenate([np.arange(m + 1) for m in range(1, 301)])
    low, high = wilson_interval(k, n, level)
    reference = binom_conf_interval(k, n, confidence_level=level, interval="wilson")
    np.testing.assert_allclose(low, reference[0], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(high, reference[1], rtol=1e-12, atol=1e-15)
    assert (low[k == 0] == 0.0).all() and (high[k == n] == 1.0).all()
    p = k / n
    assert ((low <= p) & (p <= high)).all()


def test_wilson_scalars_give_floats_and_bad_levels_fail() -> None:
    low, high = wilson_interval(3, 7)
    assert isinstance(low, float) and isinstance(high, float)
    assert wilson_interval(0, 0, 0.9) != wilson_interval(0, 0, 0.9)  # NaN pair
    for level in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="confidence_level"):
            wilson_interval(1, 2, level)
