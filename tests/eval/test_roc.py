"""bench.eval.roc: exact ROC, AUC, EER, TAR@FAR and downsampling against brute-force references."""

from __future__ import annotations

import numpy as np
import pytest

from bench.core.errors import EvalError
from bench.eval.roc import (
    auc,
    downsample,
    equal_error_rate,
    far_key,
    roc_curve,
    roc_metrics,
    tar_at_far,
)


def brute_force_roc(distances, issame):
    """For each distinct distance t (ascending): accept pairs with distance <= t."""
    points = [(0.0, 0.0)]
    for threshold in np.unique(distances):
        accepted = distances <= threshold
        points.append((accepted[~issame].mean(), accepted[issame].mean()))
    return np.array(points).T


def mann_whitney_auc(distances, issame):
    """P(a different pair is farther than a same pair), ties counting one half."""
    positives, negatives = distances[issame], distances[~issame]
    wins = 0.0
    for p in positives:
        wins += np.sum(negatives > p) + 0.5 * np.sum(negatives == p)
    return wins / (positives.size * negatives.size)


def random_scores(seed, pairs=300, ties=False):
    rng = np.random.default_rng(seed)
    issame = rng.random(pairs) < 0.4
    distances = rng.normal(1.4, 0.3, pairs) - 0.5 * issame
    if ties:
        distances = np.round(distances, 1)
    return distances, issame


@pytest.mark.parametrize("seed,ties", [(0, False), (1, True), (2, True)])
def test_roc_and_auc_match_brute_force(seed, ties):
    distances, issame = random_scores(seed, ties=ties)
    fpr, tpr = roc_curve(distances, issame)
    ref_fpr, ref_tpr = brute_force_roc(distances, issame)
    np.testing.assert_allclose(fpr, ref_fpr, rtol=0, atol=1e-15)
    np.testing.assert_allclose(tpr, ref_tpr, rtol=0, atol=1e-15)
    assert auc(fpr, tpr) == pytest.approx(mann_whitney_auc(distances, issame), abs=1e-12)


def test_tar_at_far_matches_brute_force():
    distances, issame = random_scores(3, pairs=2000)
    fpr, tpr = roc_curve(distances, issame)
    result = tar_at_far(fpr, tpr, (1e-3, 1e-2, 1e-1))
    negatives = np.sort(distances[~issame])
    for far in (1e-3, 1e-2, 1e-1):
        best = 0.0
        for threshold in np.unique(distances):
            if np.mean(negatives <= threshold) <= far:
                best = max(best, np.mean(distances[issame] <= threshold))
        assert result[far_key(far)] == pytest.approx(best, abs=1e-15)


@pytest.mark.parametrize(
    "positives,negatives,expected",
    [
        ([1, 2, 3, 6], [4, 5, 7, 8], 0.25),  # FAR = FRR = 1/4 exactly at threshold 4
        ([1, 3], [2, 4], 0.5),
        ([1, 2, 3], [2.5, 4], 1 / 3),  # FRR stays 1/3 while FAR rises 0 -> 1/2: crosses at 1/3
        ([1, 2], [3, 4], 0.0),
    ],
)
def test_eer_hand_computed(positives, negatives, expected):
    distances = np.array(positives + negatives, dtype=float)
    issame = np.array([True] * len(positives) + [False] * len(negatives))
    fpr, tpr = roc_curve(distances, issame)
    assert equal_error_rate(fpr, tpr) == pytest.approx(expected, abs=1e-12)


def test_downsample_keeps_endpoints_and_low_far_detail():
    distances, issame = random_scores(4, pairs=6000)
    fpr, tpr = roc_curve(distances, issame)
    assert fpr.size > 1000
    small_fpr, small_tpr = downsample(fpr, tpr)
    assert len(small_fpr) == len(small_tpr) <= 200
    assert (small_fpr[0], small_tpr[0]) == (0.0, 0.0)
    assert (small_fpr[-1], small_tpr[-1]) == (1.0, 1.0)
    assert np.all(np.diff(small_fpr) >= 0) and np.all(np.diff(small_tpr) >= 0)
    original = set(zip(fpr.tolist(), tpr.tolist(), strict=True))
    assert all(point in original for point in zip(small_fpr, small_tpr, strict=True))
    # the log-FAR grid keeps several points below FAR 1e-2
    assert sum(value < 1e-2 for value in small_fpr) >= 10


def test_short_roc_is_stored_whole():
    fpr, tpr = np.array([0.0, 0.5, 1.0]), np.array([0.0, 1.0, 1.0])
    assert downsample(fpr, tpr) == ([0.0, 0.5, 1.0], [0.0, 1.0, 1.0])


def test_roc_metrics_keys_and_far_keys():
    distances, issame = random_scores(5)
    metrics = roc_metrics(distances, issame)
    assert set(metrics) == {"auc", "eer", "tar_at_far", "roc"}
    assert list(metrics["tar_at_far"]) == ["1e-04", "1e-03", "1e-02", "1e-01"]
    assert 0.5 < metrics["auc"] <= 1.0 and 0.0 <= metrics["eer"] < 0.5


def test_roc_needs_both_labels():
    with pytest.raises(EvalError, match="both same and different"):
        roc_curve(np.array([0.1, 0.2]), np.array([True, True]))
