"""Statistics for the leaderboard: seed confidence intervals, fold assignment, paired tests.

No SciPy: Student-t quantiles come from the regularised incomplete beta function (continued
fraction, accurate to ~1e-12 for every df), inverted by bisection; McNemar's test is the exact
two-sided binomial test at every discordant count (exact is never worse than the chi-square
approximation and costs nothing at these sizes)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bench.core.errors import ResultError

SIGNIFICANCE = 0.05  # rows with p >= this are marked as tied with the next row
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 20240601  # fixed so reports are reproducible


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        for numerator in (
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta function I_x(a, b) for x in [0, 1]."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    # The continued fraction converges fast only for x < (a+1)/(a+b+2); use symmetry otherwise.
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """Cumulative distribution function of Student's t with `df` degrees of freedom."""
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """Quantile of Student's t (e.g. p=0.975 gives the two-sided 95% critical value)."""
    if not 0.0 < p < 1.0 or df <= 0:
        raise ValueError(f"t_quantile needs 0 < p < 1 and df > 0 (got p={p}, df={df})")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:  # bracket first: df=1 has very heavy tails
        high *= 2.0
    for _ in range(200):
        middle = 0.5 * (low + high)
        if t_cdf(middle, df) < p:
            low = middle
        else:
            high = middle
        if high - low < 1e-12 * max(1.0, high):
            break
    return 0.5 * (low + high)


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Mean and half-width of its t confidence interval (half-width 0 for one value)."""
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        raise ValueError("mean_ci needs at least one value")
    mean = float(data.mean())
    if data.size == 1:
        return mean, 0.0
    standard_error = float(data.std(ddof=1)) / math.sqrt(data.size)
    return mean, t_quantile(0.5 + confidence / 2.0, data.size - 1) * standard_error


def fold_ids(pairs: int, n_folds: int = 10) -> np.ndarray:
    """Fold of each pair under KFold(n_folds, shuffle=False): the first pairs % n_folds folds
    hold one pair more (the split insightface's verification protocol uses)."""
    sizes = np.full(n_folds, pairs // n_folds, dtype=np.int64)
    sizes[: pairs % n_folds] += 1
    return np.repeat(np.arange(n_folds), sizes)


def pair_correct(
    scores: np.ndarray, issame: np.ndarray, fold_thresholds: Sequence[float]
) -> np.ndarray:
    """Per-pair correctness: decision 'same' = distance < the threshold of the pair's fold."""
    scores = np.asarray(scores, dtype=np.float64)
    issame = np.asarray(issame, dtype=bool)
    thresholds = np.asarray(fold_thresholds, dtype=np.float64)
    if scores.shape != issame.shape:
        raise ResultError(f"{scores.size} scores but {issame.size} pair labels")
    folds = fold_ids(scores.size, thresholds.size)
    return (scores < thresholds[folds]) == issame


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts (a right/b wrong and back)."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    k = min(only_a, only_b)
    # P(X <= k) for X ~ Binomial(n, 1/2), summed in log space so n in the thousands is safe.
    log_terms = [
        math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) - n * math.log(2.0)
        for i in range(k + 1)
    ]
    top = max(log_terms)
    tail = math.exp(top) * sum(math.exp(term - top) for term in log_terms)
    return min(1.0, 2.0 * tail)


@dataclass(frozen=True)
class PairedTest:
    """Outcome of a paired comparison of two rows on the same pairs."""

    method: str  # "mcnemar" or "bootstrap"
    p_value: float
    pairs: int
    only_a: int = 0  # discordant counts (McNemar only)
    only_b: int = 0

    @property
    def tied(self) -> bool:
        return self.p_value >= SIGNIFICANCE


def compare_rows(correct_a: Sequence[np.ndarray], correct_b: Sequence[np.ndarray]) -> PairedTest:
    """Paired test of two rows given per-target arrays of per-pair correctness.

    Each array has shape (seeds, pairs). With one seed each, McNemar on the pooled pairs of all
    targets; with several seeds, a paired bootstrap over pairs (resampled within each target) of
    the difference in mean accuracy, which the seed-averaged correctness enters as a fraction."""
    if len(correct_a) != len(correct_b):
        raise ValueError("compare_rows needs the same targets on both sides")
    for left, right in zip(correct_a, correct_b, strict=True):
        if left.shape[1] != right.shape[1]:
            raise ValueError("compare_rows needs the same pairs on both sides")
    pairs = sum(int(left.shape[1]) for left in correct_a)
    if all(left.shape[0] == 1 for left in correct_a) and all(r.shape[0] == 1 for r in correct_b):
        pooled_a = np.concatenate([left[0] for left in correct_a])
        pooled_b = np.concatenate([right[0] for right in correct_b])
        only_a = int(np.sum(pooled_a & ~pooled_b))
        only_b = int(np.sum(~pooled_a & pooled_b))
        return PairedTest("mcnemar", mcnemar_exact(only_a, only_b), pairs, only_a, only_b)
    return PairedTest("bootstrap", paired_bootstrap(correct_a, correct_b), pairs)


def paired_bootstrap(
    correct_a: Sequence[np.ndarray],
    correct_b: Sequence[np.ndarray],
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> float:
    """Two-sided bootstrap p-value of the mean-over-targets accuracy difference being zero."""
    rng = np.random.default_rng(seed)
    differences = np.zeros(resamples)
    for left, right in zip(correct_a, correct_b, strict=True):
        per_pair = left.mean(axis=0) - right.mean(axis=0)  # seed-averaged, paired by pair
        index = rng.integers(0, per_pair.size, size=(resamples, per_pair.size))
        differences += per_pair[index].mean(axis=1)
    differences /= len(correct_a)
    if np.all(differences == 0):
        return 1.0
    # Share of resamples on the far side of zero (ties counted), doubled for two sides.
    tail = min(np.mean(differences <= 0), np.mean(differences >= 0))
    return float(min(1.0, 2.0 * tail))
