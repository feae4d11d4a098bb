"""bench.eval.protocol.verify against an independent, loop-based transcription of insightface's protocol.

The reference below follows insightface recognition/arcface_torch/eval/verification.py
(calculate_roc / calculate_accuracy / calculate_val / calculate_val_far) line by line, with
sklearn's KFold(shuffle=False) and SciPy (< 1.9.3) interp1d(kind='slinear') written out literally
(stable sort, degree-1 B-spline knots, find_interval, de Boor), so no sklearn/scipy is needed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.core.errors import EvalError
from bench.eval.protocol import interp_slinear_legacy, kfold_splits, pair_distances, verify

# ---------------------------------------------------------------- the independent reference


def reference_kfold(count: int, n_splits: int):
    """sklearn.model_selection.KFold(n_splits, shuffle=False).split(np.arange(count))."""
    indices = np.arange(count)
    fold_sizes = np.full(n_splits, count // n_splits, dtype=int)
    fold_sizes[: count % n_splits] += 1
    current = 0
    for fold_size in fold_sizes:
        start, stop = current, current + fold_size
        test_mask = np.zeros(count, dtype=bool)
        test_mask[start:stop] = True
        yield indices[~test_mask], indices[test_mask]
        current = stop


def reference_slinear(x, y, x_new):
    """SciPy 1.6-1.9.2 interp1d(x, y, kind='slinear')(x_new), transcribed from its sources."""
    order = np.argsort(x, kind="mergesort")
    x, y = np.asarray(x, float)[order], np.asarray(y, float)[order]
    k = 1
    t = np.r_[x[0], x, x[-1]]  # make_interp_spline(x, y, k=1) knots; coefficients c = y
    c = y
    n = t.shape[0] - k - 1
    # _bspl.pyx find_interval (prev_l = k)
    ell = k
    while x_new < t[ell] and ell != k:
        ell -= 1
    ell += 1
    while x_new >= t[ell] and ell != n:
        ell += 1
    ell -= 1
    # __fitpack.h _deBoor_D for k = 1, m = 0
    h = [1.0, 0.0]
    hh = [h[0]]
    h[0] = 0.0
    xb, xa = t[ell + 1], t[ell]
    if xb == xa:
        h[1] = 0.0
    else:
        w = hh[0] / (xb - xa)
        h[0] += w * (xb - x_new)
        h[1] = w * (x_new - xa)
    out = 0.0
    for a in range(k + 1):
        out = out + c[ell + a - k] * h[a]
    return out


def reference_calculate_accuracy(threshold, dist, actual_issame):
    predict_issame = np.less(dist, threshold)
    tp = np.sum(np.logical_and(predict_issame, actual_issame))
    fp = np.sum(np.logical_and(predict_issame, np.logical_not(actual_issame)))
    tn = np.sum(np.logical_and(np.logical_not(predict_issame), np.logical_not(actual_issame)))
    fn = np.sum(np.logical_and(np.logical_not(predict_issame), actual_issame))
    tpr = 0 if (tp + fn == 0) else float(tp) / float(tp + fn)
    fpr = 0 if (fp + tn == 0) else float(fp) / float(fp + tn)
    acc = float(tp + tn) / dist.size
    return tpr, fpr, acc


def reference_calculate_roc(thresholds, embeddings1, embeddings2, actual_issame, nrof_folds):
    dist = np.sum(np.square(np.subtract(embeddings1, embeddings2)), 1)
    accuracy = np.zeros(nrof_folds)
    best = np.zeros(nrof_folds)
    for fold_idx, (train_set, test_set) in enumerate(reference_kfold(len(dist), nrof_folds)):
        acc_train = np.zeros(len(thresholds))
        for threshold_idx, threshold in enumerate(thresholds):
            _, _, acc_train[threshold_idx] = reference_calculate_accuracy(
                threshold, dist[train_set], actual_issame[train_set]
            )
        best_threshold_index = np.argmax(acc_train)
        best[fold_idx] = thresholds[best_threshold_index]
        _, _, accuracy[fold_idx] = reference_calculate_accuracy(
            thresholds[best_threshold_index], dist[test_set], actual_issame[test_set]
        )
    return accuracy, best


def reference_calculate_val_far(threshold, dist, actual_issame):
    predict_issame = np.less(dist, threshold)
    true_accept = np.sum(np.logical_and(predict_issame, actual_issame))
    false_accept = np.sum(np.logical_and(predict_issame, np.logical_not(actual_issame)))
    n_same = np.sum(actual_issame)
    n_diff = np.sum(np.logical_not(actual_issame))
    return float(true_accept) / float(n_same), float(false_accept) / float(n_diff)


def reference_calculate_val(thresholds, embeddings1, embeddings2, actual_issame, far_target, folds):
    val, far = np.zeros(folds), np.zeros(folds)
    dist = np.sum(np.square(np.subtract(embeddings1, embeddings2)), 1)
    for fold_idx, (train_set, test_set) in enumerate(reference_kfold(len(dist), folds)):
        far_train = np.zeros(len(thresholds))
        for threshold_idx, threshold in enumerate(thresholds):
            _, far_train[threshold_idx] = reference_calculate_val_far(
                threshold, dist[train_set], actual_issame[train_set]
            )
        if np.max(far_train) >= far_target:
            threshold = reference_slinear(far_train, thresholds, far_target)
        else:
            threshold = 0.0
        val[fold_idx], far[fold_idx] = reference_calculate_val_far(
            threshold, dist[test_set], actual_issame[test_set]
        )
    return np.mean(val), np.std(val), np.mean(far)


def normalised(array: np.ndarray) -> np.ndarray:
    return array / np.linalg.norm(array, axis=1, keepdims=True)


def random_pairs(seed: int, pairs: int, dim: int, noise: float, decimals: int | None = None):
    """Pair embeddings where same pairs are noisy copies; rounding makes many tied distances."""
    rng = np.random.default_rng(seed)
    issame = rng.random(pairs) < 0.5
    first = rng.standard_normal((pairs, dim))
    second = np.where(
        issame[:, None],
        first + noise * rng.standard_normal((pairs, dim)),
        rng.standard_normal((pairs, dim)),
    )
    embeddings = np.empty((2 * pairs, dim))
    embeddings[0::2], embeddings[1::2] = first, second
    if decimals is not None:
        embeddings = np.round(embeddings, decimals)
        embeddings[np.all(embeddings == 0, axis=1), 0] = 1.0  # no zero vector to normalise
    return normalised(embeddings), issame


# ---------------------------------------------------------------- verify == reference


@pytest.mark.parametrize(
    "seed,pairs,dim,noise,decimals",
    [(0, 600, 16, 1.5, None), (1, 523, 8, 0.8, None), (2, 407, 4, 1.0, 1), (3, 300, 32, 3.0, None)],
)
def test_verify_matches_reference_exactly(seed, pairs, dim, noise, decimals):
    embeddings, issame = random_pairs(seed, pairs, dim, noise, decimals)
    result = verify(embeddings, issame)
    accuracy, best = reference_calculate_roc(
        np.arange(0, 4, 0.01), embeddings[0::2], embeddings[1::2], issame, 10
    )
    val, val_std, far = reference_calculate_val(
        np.arange(0, 4, 0.001), embeddings[0::2], embeddings[1::2], issame, 1e-3, 10
    )
    assert result["acc"] == np.mean(accuracy)
    assert result["acc_std"] == np.std(accuracy)
    assert result["fold_thresholds"] == best.tolist()
    assert result["threshold"] == np.mean(best)
    assert (result["val"], result["val_std"], result["far"]) == (val, val_std, far)
    assert result["pairs"] == pairs
    np.testing.assert_array_equal(
        result["scores"], np.sum(np.square(embeddings[0::2] - embeddings[1::2]), 1)
    )


@pytest.mark.parametrize("count,folds", [(23, 10), (6000, 10), (7000, 10), (10, 10), (9, 2)])
def test_kfold_matches_sklearn_semantics(count, folds):
    ours = kfold_splits(count, folds)
    reference = list(reference_kfold(count, folds))
    assert len(ours) == len(reference) == folds
    for (train, test), (ref_train, ref_test) in zip(ours, reference, strict=True):
        np.testing.assert_array_equal(train, ref_train)
        np.testing.assert_array_equal(test, ref_test)


def test_kfold_rejects_more_folds_than_pairs():
    with pytest.raises(EvalError, match="folds"):
        kfold_splits(5, 10)


# ---------------------------------------------------------------- hand-computable cases


def _orthogonal_pairs(issame: np.ndarray) -> np.ndarray:
    """Same pairs: identical unit vectors (distance 0); different: orthogonal (distance 2)."""
    embeddings = np.zeros((2 * issame.size, 2))
    embeddings[0::2, 0] = 1.0
    embeddings[1::2] = np.where(issame[:, None], [1.0, 0.0], [0.0, 1.0])
    return embeddings


def test_perfectly_separable():
    issame = np.tile([True, False], 50)
    result = verify(_orthogonal_pairs(issame), issame)
    # The first threshold that separates 0 from 2 is 0.01 (d < t), chosen in every fold.
    assert result["acc"] == 1.0 and result["acc_std"] == 0.0
    assert result["fold_thresholds"] == [0.01] * 10
    assert result["auc"] == 1.0 and result["eer"] == 0.0
    assert result["tar_at_far"]["1e-04"] == 1.0
    # FAR on the training folds is 0 up to threshold 2.000 and 1 from 2.001, so insightface's
    # interpolation gives 2.0 * 0.999 + 2.001 * 0.001 = 2.000001: the distance-2 negatives fall
    # below it, hence VAL = 1 and FAR = 1 (a faithful quirk of the protocol).
    assert result["val"] == 1.0 and result["far"] == 1.0


def test_all_equal_distances():
    issame = np.tile([True, False], 10)
    embeddings = np.zeros((40, 2))
    embeddings[0::2, 0] = 1.0
    embeddings[1::2, 1] = 1.0  # every pair at distance 2, whatever its label
    result = verify(embeddings, issame)
    # Every threshold scores 50% on every split: argmax picks the first, 0.0.
    assert result["acc"] == 0.5 and result["acc_std"] == 0.0
    assert result["fold_thresholds"] == [0.0] * 10 and result["threshold"] == 0.0
    assert result["auc"] == 0.5 and result["eer"] == 0.5
    assert result["roc"] == {"fpr": [0.0, 1.0], "tpr": [0.0, 1.0]}


def test_hand_computed_two_folds():
    # 4 pairs, 2 folds: fold 0 = pairs 0-1, fold 1 = pairs 2-3 (distances kept off the grid).
    distances = np.array([0.505, 1.505, 0.905, 1.005])
    issame = np.array([True, False, True, False])
    embeddings = np.zeros((8, 2))
    embeddings[0::2, 0] = 1.0
    cosines = 1 - distances / 2  # unit vectors at squared distance d from (1, 0)
    embeddings[1::2] = np.stack([cosines, np.sqrt(1 - cosines**2)], 1)
    np.testing.assert_allclose(pair_distances(embeddings), distances, atol=1e-12)
    result = verify(embeddings, issame, n_folds=2)
    # Fold 0 trains on {0.905 same, 1.005 diff}: the first perfect threshold is 0.91; on
    # {0.505 same, 1.505 diff} it scores 100%. Fold 1 trains on {0.505, 1.505}: first perfect
    # is 0.51; on {0.905 same, 1.005 diff} 0.905 is not < 0.51, so 50%.
    grid = np.arange(0, 4, 0.01)
    assert result["fold_thresholds"] == [grid[91], grid[51]]
    assert result["fold_accuracies"] == [1.0, 0.5]
    assert result["acc"] == 0.75 and result["acc_std"] == 0.25


def test_odd_fold_sizes_match_reference():
    embeddings, issame = random_pairs(7, 23, 4, 1.0)  # folds of 3,3,3,2,2,2,2,2,2,2 pairs
    result = verify(embeddings, issame)
    accuracy, best = reference_calculate_roc(
        np.arange(0, 4, 0.01), embeddings[0::2], embeddings[1::2], issame, 10
    )
    assert result["fold_accuracies"] == accuracy.tolist()
    assert result["fold_thresholds"] == best.tolist()


def test_fold_without_negatives_gives_nan_far_not_a_crash():
    issame = np.array([True] * 10 + [False] * 10)  # folds 0-4 hold only same pairs
    embeddings, _ = random_pairs(3, 20, 8, 0.5)
    result = verify(embeddings, issame)
    assert 0.0 <= result["acc"] <= 1.0
    assert math.isnan(result["far"]) and math.isnan(result["val"])


# ---------------------------------------------------------------- interpolation semantics


def test_slinear_equals_plain_linear_interpolation_without_duplicates():
    rng = np.random.default_rng(0)
    for _ in range(200):
        x = np.sort(rng.random(rng.integers(2, 50)))
        x = np.unique(x)
        if x.size < 2:
            continue
        y = rng.random(x.size) * 4
        for x_new in [x[0], x[-1], *rng.uniform(x[0], x[-1], 5)]:
            assert interp_slinear_legacy(x, y, x_new) == pytest.approx(
                float(np.interp(x_new, x, y)), rel=1e-12, abs=1e-12
            )


def test_slinear_with_duplicates_matches_literal_scipy_transcription():
    rng = np.random.default_rng(1)
    for _ in range(300):
        steps = rng.integers(0, 3, rng.integers(2, 80)) * (rng.random(1) < 0.5)
        x = np.cumsum(steps) / 97.0
        x[0] = 0.0
        if x[-1] == 0:
            continue
        y = np.arange(x.size) * 0.001
        for x_new in [x[-1], x[rng.integers(x.size)], rng.uniform(0, x[-1])]:
            assert interp_slinear_legacy(x, y, x_new) == reference_slinear(x, y, x_new)


def test_slinear_duplicate_cases_by_hand():
    x = np.array([0.0, 0.0, 0.5, 0.5, 1.0])
    y = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    # last x <= 0.25 is index 1 (y=1), next is index 2 (y=2): halfway -> 1.5
    assert interp_slinear_legacy(x, y, 0.25) == 1.5
    # exactly on a duplicated value: the last of the run (index 3, y=3) starts the interval
    assert interp_slinear_legacy(x, y, 0.5) == 3.0
    # the largest x when it is duplicated: zero-width interval -> 0.0 (de Boor)
    assert interp_slinear_legacy(np.array([0.0, 1.0, 1.0]), np.array([0.0, 1.0, 2.0]), 1.0) == 0.0
    with pytest.raises(EvalError, match="outside"):
        interp_slinear_legacy(x, y, 1.5)


# ---------------------------------------------------------------- input checks


def test_verify_rejects_bad_inputs():
    embeddings, issame = random_pairs(0, 20, 4, 1.0)
    with pytest.raises(EvalError, match="shape"):
        verify(embeddings[:-1], issame)
    with pytest.raises(EvalError, match="boolean"):
        verify(embeddings, issame.astype(int))
    broken = embeddings.copy()
    broken[3, 0] = np.nan
    with pytest.raises(EvalError, match="NaN"):
        verify(broken, issame)
