"""ROC AUC and its bootstrap against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stronglens_assets.science.stats.roc import auc, bootstrap_auc


def test_auc_hand_computed():
    # pairs (pos, neg): (0.35 > 0.1), (0.35 < 0.4), (0.8 > 0.1), (0.8 > 0.4) -> 3/4
    assert auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert math.isnan(auc([1, 1], [0.2, 0.3]))


def test_bootstrap_auc_intervals():
    labels = np.array([0] * 20 + [1] * 20)
    perfect = np.r_[np.zeros(20), np.ones(20)]
    constant = np.full(40, 0.5)
    out = bootstrap_auc(
        labels, {"full": perfect, "flat": constant}, samples=50, seed=1, reference="full"
    )
    assert out["full"]["auc"] == 1.0 and out["full"]["ci_low"] == 1.0
    assert out["flat"]["auc"] == 0.5 and out["flat"]["ci_high"] == 0.5
    assert out["flat"]["delta_vs_full"] == 0.5
    assert out["flat"]["n_bootstrap"] == 50
