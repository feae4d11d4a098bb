"""1:1 template verification: pair scores, sklearn's roc_curve and auc, TAR read at each FAR.

The reference (insightface eval_ijbc.py / ijb_evals.py) scores pairs as dot products of the
L2-normalised template features, builds the ROC with sklearn.metrics.roc_curve (default
drop_intermediate=True), and reads TAR at the ROC point whose FPR is nearest each target FAR,
preferring the point with the larger TPR on a tie (it flips the curve before np.argmin). This
module reproduces that arithmetic with numpy alone."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.core.errors import EvalError

TARGET_FARS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
PAIR_CHUNK = 1 << 16  # pairs per gathered block: 2 x 64K x 512 float64 = 512 MiB at most
ROW_BLOCK = 512  # templates per matrix-product block (x 20K columns x 8 bytes = 80 MiB)


@dataclass(frozen=True)
class RocCurve:
    """sklearn.metrics.roc_curve's output: fpr, tpr, thresholds (thresholds[0] = inf)."""

    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray


def template_index(
    template_ids: np.ndarray, wanted: np.ndarray, where: str, first_line: int = 1
) -> np.ndarray:
    """Row of each id of `wanted` in the sorted `template_ids`; an unknown id is an error naming
    the file line of its first occurrence (wanted[0] is on line `first_line`)."""
    low, high = int(template_ids[0]), int(template_ids[-1])
    if 0 <= low and high < 1 << 26:  # IJB ids are small integers: a lookup table, O(pairs)
        table = np.full(high + 2, -1, dtype=np.int64)
        table[template_ids] = np.arange(len(template_ids))
        rows = table[np.clip(wanted, -1, high + 1)]  # -1 and high + 1 read the -1 sentinel
        unknown = rows < 0
    else:
        rows = np.minimum(np.searchsorted(template_ids, wanted), len(template_ids) - 1)
        unknown = template_ids[rows] != wanted
    if unknown.any():
        first = int(np.flatnonzero(unknown)[0])
        raise EvalError(
            f"{where} line {first + first_line}: template {int(wanted[first])} has no image in the "
            f"media list ({int(unknown.sum())} such references); the package is inconsistent"
        )
    return rows


def _compact(indices: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """np.unique(indices, return_inverse=True) for indices in [0, size), without sorting."""
    present = np.zeros(size, dtype=bool)
    present[indices] = True
    distinct = np.flatnonzero(present)
    position = np.zeros(size, dtype=np.int64)
    position[distinct] = np.arange(len(distinct))
    return distinct, position[indices]


def pair_scores(features: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """float64 dot products features[first[i]] . features[second[i]], chunked, memory bounded.

    IJB pairs repeat few templates on one side (IJB-B: 1,845 x 10,270 templates for 8M pairs),
    so when the distinct rows times the distinct columns is not much larger than the pair count,
    scores come from blocks of one matrix product; otherwise rows are gathered pair by pair."""
    rows, row_of = _compact(first, len(features))
    columns, column_of = _compact(second, len(features))
    if len(rows) * len(columns) > 16 * len(first):
        return _gathered_scores(features, first, second)
    scores = np.empty(len(first), dtype=np.float64)
    column_features = np.ascontiguousarray(features[columns].T)
    for start in range(0, len(rows), ROW_BLOCK):
        product = features[rows[start : start + ROW_BLOCK]] @ column_features
        members = np.flatnonzero((row_of >= start) & (row_of < start + ROW_BLOCK))
        scores[members] = product[row_of[members] - start, column_of[members]]
    return scores


def _gathered_scores(features: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    scores = np.empty(len(first), dtype=np.float64)
    for start in range(0, len(first), PAIR_CHUNK):
        stop = start + PAIR_CHUNK
        scores[start:stop] = np.einsum(
            "ij,ij->i", features[first[start:stop]], features[second[start:stop]]
        )
    return scores


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> RocCurve:
    """sklearn.metrics.roc_curve(labels, scores) with drop_intermediate=True, pos_label 1."""
    positive = np.asarray(labels) == 1
    scores = np.asarray(scores, dtype=np.float64)
    if positive.all() or not positive.any():
        raise EvalError("the ROC needs both genuine (label 1) and impostor (label 0) pairs")
    if not np.isfinite(scores).all():
        raise EvalError(
            f"{int((~np.isfinite(scores)).sum())} pair scores are not finite (a template with a "
            "zero or NaN feature); check the features"
        )
    # sklearn sorts (score, label) pairs by score; a point's counts only depend on how many
    # genuine and impostor scores are >= its threshold, so sorting the scores alone (10x faster
    # than an argsort of IJB-C's 15.7M) and counting genuine scores by bisection is the same.
    sorted_scores = np.sort(scores)[::-1]
    genuine = np.sort(scores[positive])
    # The last position of each run of equal scores: one ROC point per distinct threshold.
    ends = np.r_[np.flatnonzero(np.diff(sorted_scores)), len(scores) - 1]
    thresholds = sorted_scores[ends]
    true_positives = (len(genuine) - np.searchsorted(genuine, thresholds, side="left")).astype(
        np.float64
    )
    false_positives = 1 + ends - true_positives
    if len(false_positives) > 2:  # drop points on straight segments of the curve
        corner = np.logical_or(np.diff(false_positives, 2), np.diff(true_positives, 2))
        keep = np.flatnonzero(np.r_[True, corner, True])
        false_positives, true_positives = false_positives[keep], true_positives[keep]
        thresholds = thresholds[keep]
    false_positives = np.r_[0, false_positives]
    true_positives = np.r_[0, true_positives]
    return RocCurve(
        fpr=false_positives / false_positives[-1],
        tpr=true_positives / true_positives[-1],
        thresholds=np.r_[np.inf, thresholds],
    )


def area_under(x: np.ndarray, y: np.ndarray) -> float:
    """sklearn.metrics.auc for an increasing x: the trapezoid rule as numpy computes it."""
    steps = np.diff(x)
    return float((steps * (y[1:] + y[:-1]) / 2.0).sum())


def tar_at_far(curve: RocCurve, far: float) -> float:
    """TPR at the ROC point whose FPR is nearest `far`; on a tie the later (larger-TPR) point."""
    distance = np.abs(curve.fpr - far)
    nearest = np.flatnonzero(distance == distance.min())[-1]
    return float(curve.tpr[nearest])


def verification_metrics(curve: RocCurve) -> dict:
    """{"tar_at_far": {str(far): tar}, "auc": auc} as fractions, keys as Python prints the FAR."""
    return {
        "tar_at_far": {str(far): tar_at_far(curve, far) for far in TARGET_FARS},
        "auc": area_under(curve.fpr, curve.tpr),
    }
