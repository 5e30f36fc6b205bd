"""Honest labels: "real" only for lenscat objects on real data (issue 20)."""

from __future__ import annotations

import pytest

from stronglens_assets.science.reporting.labels import (
    EMBEDDED_DEFAULT_LABEL,
    data_label,
    is_mock_environment,
    lens_kind,
    lens_set_label,
    with_data_label,
)


def test_lens_kind_is_real_only_for_lenscat_on_real_data() -> None:
    assert lens_kind("lenscat", mock_data=False) == "real"
    assert lens_kind("lenscat", mock_data=True) == "mock"  # rendered by the mock survey
    assert lens_kind("mock", mock_data=False) == "mock"
    assert lens_kind("mock", mock_data=True) == "mock"


def test_set_labels_and_data_labels() -> None:
    assert lens_set_label(["mock", "mock"]) == "mock Tier-A lenses"
    assert lens_set_label(["real"]) == "real Tier-A lenses"
    assert lens_set_label(["real", "mock", "mock"]) == "Tier-A lenses (1 real, 2 mock)"
    with pytest.raises(ValueError, match="lens kinds"):
        lens_set_label(["injection"])
    assert is_mock_environment("local") and not is_mock_environment("s3")
    assert EMBEDDED_DEFAULT_LABEL == "embedded default (mock DR10)"
    assert data_label(True) == EMBEDDED_DEFAULT_LABEL and data_label(False) == "DR10"
    assert with_data_label("Figure 1", True) == "Figure 1 [embedded default (mock DR10)]"
    assert with_data_label("Figure 1", False) == "Figure 1"
