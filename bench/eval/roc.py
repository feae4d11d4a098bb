"""Whole-set ROC metrics over pair distances: exact ROC curve, AUC, EER, TAR@FAR, downsampling.

Scores are squared L2 distances (lower = same identity); a pair is accepted as "same" when its
distance is <= the operating threshold, so every distinct distance is one operating point. Pure
numpy; the 10-fold insightface protocol lives in bench/evaluate.py."""

from __future__ import annotations

import numpy as np

from bench.core.errors import EvalError

TAR_FARS: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1)
MAX_STORED_POINTS = 200


def far_key(far: float) -> str:
    """The result-JSON key of a FAR level: 1e-3 -> "1e-03"."""
    return f"{far:.0e}"


def roc_curve(distances: np.ndarray, issame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact ROC (fpr, tpr), starting at (0, 0), one point per distinct distance."""
    distances = np.asarray(distances, dtype=np.float64)
    issame = np.asarray(issame, dtype=bool)
    positives = int(issame.sum())
    negatives = int(issame.size - positives)
    if positives == 0 or negatives == 0:
        raise EvalError(
            f"ROC needs both same and different pairs (got {positives} same, {negatives} "
            "different); check the verification set's labels"
        )
    order = np.argsort(distances, kind="stable")
    sorted_distances = distances[order]
    true_accepts = np.cumsum(issame[order])
    false_accepts = np.arange(1, issame.size + 1) - true_accepts
    # Tied distances are accepted together: keep the last index of each run of equal values.
    last_of_run = np.flatnonzero(np.diff(sorted_distances, append=np.inf) != 0)
    fpr = np.concatenate(([0.0], false_accepts[last_of_run] / negatives))
    tpr = np.concatenate(([0.0], true_accepts[last_of_run] / positives))
    return fpr, tpr


def auc(fpr: np.ndarray, tpr: np.ndarray) -> float:
    """Area under the ROC by the trapezoid rule (ties count one half, as Mann-Whitney)."""
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


def equal_error_rate(fpr: np.ndarray, tpr: np.ndarray) -> float:
    """The rate where FAR equals FRR, linearly interpolated between ROC points."""
    gap = fpr + tpr - 1.0  # FAR - FRR; non-decreasing from -1 at (0,0) to +1 at (1,1)
    k = int(np.argmax(gap >= 0.0))
    if gap[k] == 0.0 or k == 0:
        return float(fpr[k])
    weight = -gap[k - 1] / (gap[k] - gap[k - 1])
    return float(fpr[k - 1] + weight * (fpr[k] - fpr[k - 1]))


def tar_at_far(fpr: np.ndarray, tpr: np.ndarray, fars: tuple[float, ...] = TAR_FARS) -> dict:
    """Best TAR among operating points whose FAR is at most each target FAR."""
    result = {}
    for far in fars:
        allowed = fpr <= far
        result[far_key(far)] = float(tpr[allowed].max())  # (0, 0) is always allowed
    return result


def downsample(
    fpr: np.ndarray, tpr: np.ndarray, max_points: int = MAX_STORED_POINTS
) -> tuple[list[float], list[float]]:
    """At most `max_points` ROC points: half evenly along the curve, half on a log-FAR grid."""
    count = fpr.size
    if count <= max_points:
        return fpr.tolist(), tpr.tolist()
    half = max_points // 2
    along = np.round(np.linspace(0, count - 1, half)).astype(np.int64)
    # The low-FAR end is what face verification cares about; a log grid keeps its detail.
    grid = np.logspace(-6, 0, max_points - half)
    at_far = np.searchsorted(fpr, grid, side="right") - 1
    # `along` already holds both endpoints, so the union has at most max_points indices.
    keep = np.unique(np.concatenate((along, at_far)))
    return fpr[keep].tolist(), tpr[keep].tolist()


def roc_metrics(distances: np.ndarray, issame: np.ndarray) -> dict:
    """AUC, EER, TAR@FAR and the downsampled ROC of one verification set."""
    fpr, tpr = roc_curve(distances, issame)
    stored_fpr, stored_tpr = downsample(fpr, tpr)
    return {
        "auc": auc(fpr, tpr),
        "eer": equal_error_rate(fpr, tpr),
        "tar_at_far": tar_at_far(fpr, tpr),
        "roc": {"fpr": stored_fpr, "tpr": stored_tpr},
    }
