"""FPR-derived thresholds on constructed score sets with known answers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from stronglens_assets.science.stats.detection import count_detected
from stronglens_assets.science.stats.thresholds import (
    ThresholdResolutionError,
    ThresholdsFormatError,
    ThresholdSpec,
    derive_thresholds,
    fpr_label,
    fpr_threshold,
    minimum_negatives,
    threshold_entries,
    thresholds_from_entries,
)


def test_threshold_on_an_evenly_spaced_set_leaves_exactly_the_allowed_negatives_above():
    # 10,000 distinct scores k / 10,000: FPR 1e-3 allows 10 above, so t is the 11th highest.
    scores = np.arange(10_000) / 10_000
    t = fpr_threshold(np.random.default_rng(0).permutation(scores), 1e-3)
    assert t == pytest.approx(9_989 / 10_000)
    assert count_detected(scores, t) == 10
    assert fpr_threshold(scores, 1e-4) == pytest.approx(9_998 / 10_000)


def test_ties_at_the_threshold_are_not_detections_so_the_fpr_stays_within_target():
    scores = np.concatenate([np.zeros(990), np.full(10, 0.9)])
    t = fpr_threshold(scores, 5e-3)  # 5 allowed; the 6th highest is 0.9
    assert t == 0.9
    assert count_detected(scores, t) == 0


def test_an_unresolvable_target_names_the_negatives_needed():
    with pytest.raises(ThresholdResolutionError, match=r"at least 10000 negatives.*only 83"):
        fpr_threshold(np.linspace(0, 1, 83), 1e-4)
    assert minimum_negatives(1e-3) == 1000


@pytest.mark.parametrize("bad", [[], [0.1, np.nan, 0.2]])
def test_empty_or_non_finite_scores_are_errors(bad):
    with pytest.raises(ThresholdResolutionError, match="negative_scores"):
        fpr_threshold(bad, 0.5)


def test_derive_thresholds_lists_fixed_then_fpr_with_the_negatives_behind_them():
    scores = np.arange(1_000) / 1_000
    specs = derive_thresholds(scores, fixed=(0.3, 0.5), fpr_targets=(1e-2, 1e-3))
    assert [s.label for s in specs] == ["p>0.3", "p>0.5", "FPR=1e-2", "FPR=1e-3"]
    assert [s.n_negatives for s in specs] == [None, None, 1000, 1000]
    assert specs[2].value == pytest.approx(0.989) and specs[3].value == pytest.approx(0.998)
    assert fpr_label(1e-4) == "FPR=1e-4"


def test_entries_keep_an_unresolvable_target_with_its_reason_and_read_back():
    scores = np.arange(1_234) / 1_234
    entries = threshold_entries(scores, fixed=(0.3,), fpr_targets=(1e-3, 1e-4))
    assert entries[0] == {
        "label": "p>0.3",
        "value": 0.3,
        "fpr_target": None,
        "n_negatives": None,
        "resolved": True,
    }
    # 1e-3 of 1,234 allows one negative above: t is the second-highest score
    assert entries[1]["value"] == pytest.approx(1_232 / 1_234) and entries[1]["resolved"]
    assert entries[1]["n_negatives"] == 1_234
    assert entries[2]["value"] is None and entries[2]["resolved"] is False
    assert "at least 10000 negatives" in entries[2]["reason"] and "1234" in entries[2]["reason"]
    specs, unresolved = thresholds_from_entries(json.loads(json.dumps(entries)))
    assert [s.label for s in specs] == ["p>0.3", "FPR=1e-3"]
    assert specs[1] == ThresholdSpec("FPR=1e-3", entries[1]["value"], 1e-3, 1_234)
    assert [u["label"] for u in unresolved] == ["FPR=1e-4"]


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ({"label": "p>0.3"}, "must be a list"),
        ([["p>0.3", 0.3]], r"thresholds\[0\] is not a mapping"),
        ([{"label": "p>0.3", "value": 0.3}], r"lacks field\(s\) \['fpr_target'"),
        (
            [
                {
                    "label": "x",
                    "value": 1.5,
                    "fpr_target": None,
                    "n_negatives": None,
                    "resolved": True,
                }
            ],
            "not a score",
        ),
        (
            [{"label": "x", "value": None, "fpr_target": 0.1, "n_negatives": 3, "resolved": False}],
            "needs a 'reason'",
        ),
    ],
)
def test_malformed_entries_are_errors_naming_the_source(entries, message):
    with pytest.raises(ThresholdsFormatError, match=message) as info:
        thresholds_from_entries(entries, "evaluation/m/thresholds.json")
    assert "evaluation/m/thresholds.json" in str(info.value)
