"""Detection (p > t), recall and spectroscopic recall on constructed tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stronglens_assets.science.stats.detection import (
    count_detected,
    detected,
    recall_at,
    spectroscopic_recall,
)
from stronglens_assets_tests.harness import wilson_formula


def test_detection_is_strictly_above_the_threshold():
    scores = np.array([0.3, 0.30000001, 0.29999999, 1.0, 0.0])
    assert detected(scores, 0.3).tolist() == [False, True, False, True, False]
    assert count_detected(scores, 0.3) == 2
    assert count_detected([], 0.5) == 0


def test_recall_on_a_constructed_table():
    # p > t (project-wide rule): the score exactly at 0.5 is not a detection (it was under
    # the former p >= t of recall_at, which gave k = 3)
    result = recall_at([0.9, 0.5, 0.49, 0.1, 0.7], threshold=0.5)
    assert (result["n"], result["k"], result["recall"]) == (5, 2, 0.4)
    assert (result["ci_low"], result["ci_high"]) == pytest.approx(wilson_formula(2, 5, 0.6827))
    assert recall_at([], 0.5)["recall"] is None


def test_spectroscopic_recall_matches_positions():
    arcsec = 1 / 3600
    scores = pd.DataFrame(
        {
            "object_id": ["a", "b", "c", "d", "e", "f"],
            "ra": [10.0, 20.0, 30.0, 40.0, 50.0, 60.0],
            "dec": [0.0, 1.0, -1.0, 2.0, 3.0, 4.0],
            "tier": ["A", "A", "A", "A", "B", "N1"],
            "label": [1, 1, 1, 1, 1, 0],
            "score": [0.9, 0.2, 0.6, 0.95, 0.99, 0.99],
        }
    )
    vac = pd.DataFrame(
        {
            # a, b, c within 0.5"; d at 2" (outside 1"); e (tier B) and f (non-lens) present
            "TARGET_RA": [10.0, 20.0 + 0.5 * arcsec, 30.0, 40.0, 50.0, 60.0],
            "TARGET_DEC": [0.0, 1.0, -1.0 + 0.3 * arcsec, 2.0 + 2 * arcsec, 3.0, 4.0],
        }
    )
    result = spectroscopic_recall(scores, vac, radius_arcsec=1.0, threshold=0.5)
    assert result["object_ids"] == ["a", "b", "c"]
    assert (result["n"], result["k"], result["n_tier"]) == (3, 2, 4)
    assert result["recall"] == pytest.approx(2 / 3)
