"""Linear probe (cross-validated AUC) and Fréchet distance against analytic Gaussian cases."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from stronglens_assets.science.experiments.probe import (
    frechet_distance,
    gaussian_frechet_distance,
    linear_probe_auc,
)


def test_frechet_diagonal_gaussians_analytic() -> None:
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.0])
    a, b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert gaussian_frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected)


def test_frechet_general_covariances_match_scipy_sqrtm() -> None:
    rng = np.random.default_rng(0)
    m1, m2 = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    s1, s2 = m1 @ m1.T + 0.1 * np.eye(6), m2 @ m2.T + 0.1 * np.eye(6)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    reference = np.sum((mu1 - mu2) ** 2) + np.trace(
        s1 + s2 - 2 * np.real(scipy.linalg.sqrtm(s1 @ s2))
    )
    assert gaussian_frechet_distance(mu1, s1, mu2, s2) == pytest.approx(reference, rel=1e-8)
    assert gaussian_frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-9)


def test_frechet_of_samples_converges_to_the_analytic_value() -> None:
    rng = np.random.default_rng(1)
    n = 200_000
    x1 = rng.normal([0.0, 0.0], [1.0, 2.0], size=(n, 2))
    x2 = rng.normal([3.0, 0.0], [2.0, 2.0], size=(n, 2))
    expected = 9.0 + (1.0 - 2.0) ** 2 + 0.0
    result = frechet_distance(x1, x2, regularisation=0.0)
    assert result["distance"] == pytest.approx(expected, rel=0.01)
    assert result["n1"] == n and result["dim"] == 2


def test_frechet_with_fewer_samples_than_dimensions_is_regularised() -> None:
    rng = np.random.default_rng(2)
    x1, x2 = rng.normal(size=(5, 32)), rng.normal(size=(6, 32)) + 1.0
    result = frechet_distance(x1, x2, regularisation=1e-6)
    assert np.isfinite(result["distance"]) and result["distance"] > 0
    assert result["eps"] > 0 and "eps * I" in result["regularisation"]
    with pytest.raises(ValueError, match=">= 2 members"):
        frechet_distance(x1[:1], x2)
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(np.full((3, 2), np.nan), x2[:, :2])


def test_linear_probe_separable_and_indistinguishable_sets() -> None:
    rng = np.random.default_rng(3)
    far = linear_probe_auc(
        rng.normal(5.0, 1.0, size=(100, 8)), rng.normal(-5.0, 1.0, size=(120, 8)), seed=1
    )
    assert far["auc_mean"] == 1.0 and far["auc_std"] == 0.0 and far["n_folds"] == 5
    same = linear_probe_auc(rng.normal(size=(400, 4)), rng.normal(size=(400, 4)), seed=1, n_folds=5)
    assert abs(same["auc_mean"] - 0.5) < 0.08
    assert len(same["fold_aucs"]) == 5
    assert same["auc_std"] == pytest.approx(np.std(same["fold_aucs"]))


def test_linear_probe_small_classes() -> None:
    rng = np.random.default_rng(4)
    result = linear_probe_auc(rng.normal(size=(3, 4)), rng.normal(size=(30, 4)), n_folds=5)
    assert result["n_folds"] == 3 and result["n_folds_requested"] == 5
    with pytest.raises(ValueError, match=">= 2 members per class"):
        linear_probe_auc(rng.normal(size=(1, 4)), rng.normal(size=(30, 4)))
    with pytest.raises(ValueError, match="dimension"):
        linear_probe_auc(rng.normal(size=(5, 4)), rng.normal(size=(5, 3)))


def test_grouped_folds_do_not_reward_recognising_hosts() -> None:
    """Both sets come from one distribution, but the negatives are 6 hosts x 10 near-copies:
    ungrouped folds put copies of a host on both sides and the probe 'separates' them; grouped
    folds (the host is the group) leave nothing to learn, so the AUC falls to chance."""
    rng = np.random.default_rng(7)
    dim = 40
    positives = rng.normal(size=(60, dim))
    hosts = rng.normal(size=(6, dim))
    negatives = np.repeat(hosts, 10, axis=0) + 0.01 * rng.normal(size=(60, dim))
    host_of = np.repeat(np.arange(6), 10)
    plain = linear_probe_auc(positives, negatives, n_folds=3, seed=1)
    grouped = linear_probe_auc(
        positives,
        negatives,
        n_folds=3,
        seed=1,
        positive_groups=np.arange(60),
        negative_groups=host_of,
    )
    assert not plain["grouped"] and grouped["grouped"]
    assert plain["auc_mean"] > 0.9
    assert grouped["auc_mean"] < 0.75
    with pytest.raises(ValueError, match="groups for both sets or for neither"):
        linear_probe_auc(positives, negatives, positive_groups=np.arange(60))
    with pytest.raises(ValueError, match=">= 2 groups per class"):
        linear_probe_auc(
            positives, negatives, positive_groups=np.arange(60), negative_groups=np.zeros(60)
        )


def test_probe_significance_separable_sets() -> None:
    from stronglens_assets.science.experiments.probe import probe_significance

    rng = np.random.default_rng(0)
    pos = rng.normal(0, 1, (40, 5)) + np.array([4.0, 0, 0, 0, 0])
    neg = rng.normal(0, 1, (40, 5))
    out = probe_significance(pos, neg, n_folds=4, n_permutations=40, n_bootstrap=200, seed=1)
    assert out["observed_auc_mean"] > 0.99
    perm = out["permutation_test"]
    assert perm["n_exceeding"] == 0 and perm["p_value"] == pytest.approx(1 / 41)
    assert perm["max_perm_auc"] < 0.9
    assert out["bootstrap_ci"]["ci_95_lower"] > 0.95
    assert out["bootstrap_ci"]["n_valid"] == 200


def test_probe_significance_identical_distributions_are_not_significant() -> None:
    from stronglens_assets.science.experiments.probe import probe_significance

    rng = np.random.default_rng(2)
    pos, neg = rng.normal(0, 1, (40, 3)), rng.normal(0, 1, (40, 3))
    out = probe_significance(pos, neg, n_folds=4, n_permutations=60, n_bootstrap=300, seed=3)
    assert out["permutation_test"]["p_value"] > 0.05
    lo, hi = out["bootstrap_ci"]["ci_95_lower"], out["bootstrap_ci"]["ci_95_upper"]
    assert lo < 0.5 < hi + 0.1


def test_brightness_features_of_a_constructed_ring() -> None:
    from stronglens_assets.science.experiments.probe import brightness_features

    size, scale = 101, 0.262
    c = (np.arange(size) - 50) * scale
    r = np.hypot(c[None, :], c[:, None])
    ring = np.abs(r - 1.5) <= 0.75
    image = np.full((1, 3, size, size), 0.01)  # flat sky, subtracted
    image[0, 1][ring] += 1.0 / ring.sum()  # 1 nanomaggy in the annulus -> 22.5 mag
    invvar = np.full((1, 3, size, size), 100.0)
    mag, snr = brightness_features(image, invvar, band=1, theta_e=1.5)[0]
    assert mag == pytest.approx(22.5, abs=1e-9)
    assert snr == pytest.approx(1.0 / np.sqrt(ring.sum() / 100.0))


def test_probe_significance_with_a_tiny_class_stays_finite() -> None:
    from stronglens_assets.science.experiments.probe import probe_significance

    rng = np.random.default_rng(4)
    pos, neg = rng.normal(3, 1, (3, 4)), rng.normal(0, 1, (24, 4))
    out = probe_significance(pos, neg, n_folds=3, n_permutations=30, n_bootstrap=50, seed=0)
    assert np.isfinite(out["permutation_test"]["max_perm_auc"])
    with pytest.raises(ValueError, match=">= 2 members"):
        probe_significance(pos[:1], neg, n_folds=3, n_permutations=3, n_bootstrap=5)
