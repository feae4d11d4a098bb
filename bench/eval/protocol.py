"""The insightface verification protocol in pure numpy (no torch): `verify()`.

What is replicated, from insightface recognition/arcface_torch/eval/verification.py
(`evaluate`, `calculate_roc`, `calculate_accuracy`, `calculate_val`, `calculate_val_far`):

* distance = sum((e1 - e2)**2) of the float64 L2-normalised embeddings of pair (2i, 2i+1);
* a pair is predicted "same" when distance < threshold (strictly);
* accuracy: thresholds np.arange(0, 4, 0.01); folds = sklearn KFold(10, shuffle=False) (contiguous,
  the first P % 10 folds one pair larger); per fold the FIRST threshold maximising accuracy on the
  other nine folds (np.argmax) is applied to the held-out fold; acc = mean, acc_std = np.std
  (population) of the ten fold accuracies. `threshold` is the mean of the ten chosen thresholds;
* VAL@FAR=1e-3: thresholds np.arange(0, 4, 0.001); per fold FAR(threshold) on the nine training
  folds; threshold = 0 when max FAR < 1e-3, else scipy interp1d(far, thresholds, 'slinear')(1e-3)
  as SciPy 1.6 - 1.9.2 computed it (see `interp_slinear_legacy`); VAL and FAR of that threshold on
  the held-out fold; val = mean, val_std = np.std, far = mean over folds.

Counting is vectorised with sorted distances and np.searchsorted (count of d < t), which gives the
same integer counts as insightface's per-threshold loops, and rates are the same IEEE divisions,
so results are identical to the float bit. Where insightface divides by zero (a fold without same
or without different pairs) the rate is NaN here instead of a ZeroDivisionError.

Also returned (not in insightface): whole-set ROC/AUC/EER/TAR@FAR (bench/roc.py), the per-fold
thresholds and the per-pair distances."""

from __future__ import annotations

import numpy as np

from bench.core.errors import EvalError
from bench.eval.roc import roc_metrics

ACCURACY_THRESHOLDS = np.arange(0, 4, 0.01)
VAL_THRESHOLDS = np.arange(0, 4, 0.001)
FAR_TARGET = 1e-3


def kfold_splits(count: int, n_folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) index arrays exactly as sklearn KFold(n_folds, shuffle=False).split."""
    if not 2 <= n_folds <= count:
        raise EvalError(
            f"cannot make {n_folds} folds from {count} pairs (need 2 <= folds <= pairs)"
        )
    sizes = np.full(n_folds, count // n_folds, dtype=np.int64)
    sizes[: count % n_folds] += 1
    stops = np.cumsum(sizes)
    indices = np.arange(count)
    splits = []
    for start, stop in zip(stops - sizes, stops, strict=True):
        test = indices[start:stop]
        train = np.concatenate((indices[:start], indices[stop:]))
        splits.append((train, test))
    return splits


def pair_distances(embeddings: np.ndarray) -> np.ndarray:
    """Squared L2 distance of each pair (rows 2i and 2i+1), computed as insightface does."""
    embeddings = np.asarray(embeddings, dtype=np.float64)
    diff = np.subtract(embeddings[0::2], embeddings[1::2])
    return np.sum(np.square(diff), 1)


def interp_slinear_legacy(x: np.ndarray, y: np.ndarray, x_new: float) -> float:
    """scipy.interpolate.interp1d(x, y, kind='slinear')(x_new) as SciPy 1.6 - 1.9.2 evaluated it.

    SciPy >= 1.9.3 rejects duplicate x; earlier versions accepted them. Those versions sort x with a
    stable sort (mergesort, since 1.6.0; before that the unstable default sort made ties depend on
    numpy's sort internals), build the degree-1 B-spline with knots [x0, x0..x_{m-1}, x_{m-1}] and
    coefficients y, and evaluate it with `find_interval` + de Boor: take the last i with x[i] <=
    x_new (at most m-2), interpolate between points i and i+1, and give 0 when x[i] == x[i+1]
    (de Boor's zero-width-interval rule; it happens only when x_new equals the largest x).
    x_new must lie in [min(x), max(x)] (interp1d raises otherwise)."""
    order = np.argsort(x, kind="mergesort")
    xs = np.asarray(x, dtype=np.float64)[order]
    ys = np.asarray(y, dtype=np.float64)[order]
    if not xs[0] <= x_new <= xs[-1]:
        raise EvalError(f"interpolation point {x_new} outside [{xs[0]}, {xs[-1]}]")
    i = min(int(np.searchsorted(xs, x_new, side="right")) - 1, xs.size - 2)
    left, right = xs[i], xs[i + 1]
    if right == left:
        return 0.0
    # Same operation order as SciPy's _deBoor_D + evaluate_spline for k=1.
    weight = 1.0 / (right - left)
    return float(ys[i] * (weight * (right - x_new)) + ys[i + 1] * (weight * (x_new - left)))


def _count_below(values: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """For each threshold, how many values are < threshold (np.less semantics)."""
    return np.searchsorted(np.sort(values), thresholds, side="left")


def _rate(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator as float64, NaN where the denominator is 0."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator == 0, np.nan, numerator / denominator)


class _FoldCounts:
    """Per-fold true/false accept counts at each threshold, on the test fold and the train folds."""

    def __init__(self, dist: np.ndarray, issame: np.ndarray, splits: list, thresholds: np.ndarray):
        test_tp, test_fp, test_pos, test_neg = [], [], [], []
        for _, test in splits:
            same = issame[test]
            test_tp.append(_count_below(dist[test][same], thresholds))
            test_fp.append(_count_below(dist[test][~same], thresholds))
            test_pos.append(int(same.sum()))
            test_neg.append(int(same.size - same.sum()))
        self.test_tp, self.test_fp = np.array(test_tp), np.array(test_fp)
        self.test_pos, self.test_neg = np.array(test_pos), np.array(test_neg)
        # Train folds = everything minus the test fold, so counts subtract exactly (integers).
        self.train_tp = _count_below(dist[issame], thresholds) - self.test_tp
        self.train_fp = _count_below(dist[~issame], thresholds) - self.test_fp
        self.train_pos = int(issame.sum()) - self.test_pos
        self.train_neg = int(issame.size - issame.sum()) - self.test_neg


def _accuracy(tp, fp, positives, negatives) -> np.ndarray:
    """(tp + tn) / n as insightface's calculate_accuracy: integer sum, one float division."""
    correct = tp + (negatives - fp)
    return correct.astype(np.float64) / (positives + negatives)


def calculate_accuracy_folds(dist: np.ndarray, issame: np.ndarray, splits: list) -> tuple:
    """Per-fold held-out accuracies and chosen thresholds (insightface calculate_roc)."""
    thresholds = ACCURACY_THRESHOLDS
    counts = _FoldCounts(dist, issame, splits, thresholds)
    train_acc = _accuracy(
        counts.train_tp, counts.train_fp, counts.train_pos[:, None], counts.train_neg[:, None]
    )
    best = np.argmax(train_acc, axis=1)  # first maximum per fold, as np.argmax in insightface
    folds = np.arange(len(splits))
    test_acc = _accuracy(
        counts.test_tp[folds, best], counts.test_fp[folds, best], counts.test_pos, counts.test_neg
    )
    return test_acc, thresholds[best]


def calculate_val_folds(dist: np.ndarray, issame: np.ndarray, splits: list, far_target: float):
    """Per-fold VAL and FAR at the threshold reaching `far_target` (insightface calculate_val)."""
    thresholds = VAL_THRESHOLDS
    counts = _FoldCounts(dist, issame, splits, thresholds)
    far_train = _rate(counts.train_fp, counts.train_neg[:, None])
    val, far = np.zeros(len(splits)), np.zeros(len(splits))
    for fold, (_, test) in enumerate(splits):
        # np.max is NaN when a training split has no different pairs; NaN >= x is False -> 0.0.
        if np.max(far_train[fold]) >= far_target:
            threshold = interp_slinear_legacy(far_train[fold], thresholds, far_target)
        else:
            threshold = 0.0
        accepted = np.less(dist[test], threshold)
        same = issame[test]
        val[fold] = _rate(np.sum(accepted & same), np.sum(same))
        far[fold] = _rate(np.sum(accepted & ~same), np.sum(~same))
    return val, far


def _check_inputs(embeddings: np.ndarray, issame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    embeddings = np.asarray(embeddings, dtype=np.float64)
    issame = np.asarray(issame)
    if embeddings.ndim != 2 or embeddings.shape[0] != 2 * issame.shape[0] or issame.ndim != 1:
        raise EvalError(
            f"verify needs embeddings of shape (2P, D) and issame of shape (P,); got "
            f"{embeddings.shape} and {issame.shape}"
        )
    if issame.dtype != bool:
        raise EvalError(f"issame must be a boolean array, got dtype {issame.dtype}")
    if not np.isfinite(embeddings).all():
        raise EvalError("embeddings contain NaN or Inf; the model output is broken")
    return embeddings, issame


def verify(embeddings: np.ndarray, issame: np.ndarray, n_folds: int = 10) -> dict:
    """insightface 10-fold verification of L2-normalised pair embeddings + whole-set ROC metrics."""
    embeddings, issame = _check_inputs(embeddings, issame)
    dist = pair_distances(embeddings)
    splits = kfold_splits(issame.size, n_folds)
    accuracy, fold_thresholds = calculate_accuracy_folds(dist, issame, splits)
    val, far = calculate_val_folds(dist, issame, splits, FAR_TARGET)
    return {
        "pairs": int(issame.size),
        "acc": float(np.mean(accuracy)),
        "acc_std": float(np.std(accuracy)),
        "threshold": float(np.mean(fold_thresholds)),
        "fold_thresholds": [float(t) for t in fold_thresholds],
        "fold_accuracies": [float(a) for a in accuracy],
        "val": float(np.mean(val)),
        "val_std": float(np.std(val)),
        "far": float(np.mean(far)),
        **roc_metrics(dist, issame),
        "scores": dist,
    }
