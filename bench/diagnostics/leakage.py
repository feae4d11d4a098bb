"""Identity-leakage audit: do people of an evaluation set (or of another training set) reappear
among a training set's identities?

Evaluation sets carry no identity labels, so the unit that is flagged is the evaluation IMAGE:
every image is a query, matched against all C training-identity centres (chunked search), and
its statistic is the similarity to the NEAREST centre, a maximum over C identities.

Calibration on a null distribution of that same statistic. The null is the nearest-OTHER-centre
similarity of the sampled training images themselves (leave-own-identity-out): each of them is an
image known NOT to show any of the other C - 1 identities, matched against those centres exactly
as a query is. The threshold is the q-quantile of the null (q = 0.99 by default, --leak-quantile),
so an evaluation set of people absent from the training set flags about (1 - q) of its images;
the report gives that expected count (`expected_if_clean`) and an exact rank test of the flagged
count (`p_value`: the distribution of the number of exchangeable queries above an order statistic
of the null, see `rank_tail`; `leak_detected` when p is below 1e-3). Approximate only in that
the images of one pair or one person are not independent; with n null images a quantile above
1 - 10/n rests on fewer than 10 of them (a warning says so). Measured with the demo model (IR-18
width 8) on demo_diverse (500 identities x 4 images): the null and the clean demo sets' best
matches have the same median (0.83) and q99 (0.94); at q = 0.99 the clean demo_random set flags
15 of 1,600 images (16.8 expected, p = 0.64); `make demo`'s own sample gives 25, 11, 17 for the
three clean sets against demo_diverse (p 0.09, 0.88, 0.49) and 20 each against demo_consistent
(p 0.29). Counts at q = 0.99, 0.999,
0.9999 are all reported (`flagged_at_quantiles`).

Why not a rule from genuine-pair cosines (the earlier rho / sqrt(rho + (1 - rho)/k)): the best of
C centres is a maximum over C impostors, and for a model whose embeddings sit in a narrow cone
that maximum is routinely as high as a genuine match, so such a rule flagged 465, 1129 and 433
of the 1,600 images of the clean demo_random, demo_pose and demo_lookalike sets. The genuine-pair
cosines are still summarised (`genuine_similarity`) as a measure of how well the model verifies
the set, and that rule's threshold and count are still reported beside the null's
(`genuine_rule`, for comparison with tools that use it); they no longer decide what is flagged.

Caveat: the null images are TRAINING images (possibly seen by the model, another domain than the
evaluation photos). When the evaluation images' best matches run systematically higher than the
null, even a clean set flags more than (1 - q); compare `best_match` with `null_similarity`.

Power depends on the model: a leaked image is flagged only when it is closer to its person's
training centre than (nearly) every impostor maximum. With the demo model, about 6% of the
images of planted people pass q = 0.99 against 500 centres (15 planted people of demo_random's
200: 27 flagged, 17 expected, p = 0.05, not detected; 50 planted: 47 flagged, p = 1e-5), so read
the flagged
count against `expected_if_clean` and `p_value`, not as a recall; a stronger model separates
better.

Identity-level evidence: `matched_identities` counts the training identities that flagged images
point to (several flagged images pointing to one identity is one leaked person, likely); a genuine
pair whose two images are both flagged and match the same training identity is a leaked pair.

Training set against training set (e.g. a synthetic set against its generator's source): the
queries are the sampled images of the audited set, the centres those of the other (reference)
set, and the null is the reference images' own nearest-other-centre similarity (the same C
centres, so the same maximum). A queried identity is flagged when at least half of its sampled
images are flagged."""

from __future__ import annotations

import logging
import math

import numpy as np

from bench.core.errors import EvalError
from bench.diagnostics.search import nearest_centres
from bench.diagnostics.stats import summary

log = logging.getLogger(__name__)
DEFAULT_QUANTILE = 0.99
MIN_NULL_TAIL = 10  # null images wanted above the quantile for it to be estimated at all
REPORTED_QUANTILES = (0.99, 0.999, 0.9999)
P_VALUE_LEVEL = 1e-3  # `leak_detected` when the flagged count is this unlikely for a clean set
CALIBRATION_RULE = (
    "q-quantile of the null: sampled training images' similarity to their nearest OTHER "
    "identity centre"
)
GENUINE_RULE = "rho / sqrt(rho + (1 - rho) / k), rho = quantile of genuine-pair cosines"


def pair_similarities(embeddings: np.ndarray) -> np.ndarray:
    """Cosine of pairs (2i, 2i+1) of normalised embeddings, the verification-set layout."""
    return np.einsum("ij,ij->i", embeddings[0::2], embeddings[1::2])


def null_similarities(
    embeddings: np.ndarray,
    labels: np.ndarray,
    identities: np.ndarray,
    centres: np.ndarray,
    search: dict | None = None,
) -> np.ndarray:
    """Similarity of every labelled image to the nearest centre of ANOTHER identity (the null)."""
    if len(identities) < 2:
        raise EvalError("leakage audit: the null needs at least 2 training identities")
    own = np.searchsorted(identities, labels)
    found = nearest_centres(embeddings, centres, k=1, exclude=own, **(search or {}))
    return found.similarities[:, 0]


def threshold_from_null(null: np.ndarray, quantile: float = DEFAULT_QUANTILE) -> float:
    """The q-quantile of the null similarities (see module)."""
    if len(null) == 0:
        raise EvalError("leakage audit: no null similarities to calibrate the threshold on")
    if not 0.0 < quantile < 1.0:
        raise EvalError(f"leakage quantile must lie in (0, 1), got {quantile}")
    return float(np.quantile(null, quantile))


def genuine_rule(
    best: np.ndarray, genuine: np.ndarray, centre_images: float, quantile: float = 0.5
) -> dict:
    """The genuine-pair rule, reported for comparison only: rho = the q-quantile of the set's
    genuine-pair cosines; a photo and the mean of k other photos of one person have cosine
    rho / sqrt(rho + (1 - rho) / k) when each photo is sqrt(rho) person + sqrt(1 - rho) noise."""
    if len(genuine) == 0:
        return {"rule": GENUINE_RULE, "quantile": quantile, "threshold": None, "flagged": None}
    rho = min(max(float(np.quantile(genuine, quantile)), 0.0), 1.0)
    k = max(float(centre_images), 1.0)
    threshold = float(rho / np.sqrt(rho + (1.0 - rho) / k)) if rho > 0.0 else 0.0
    return {
        "rule": GENUINE_RULE,
        "quantile": quantile,
        "centre_images": k,
        "threshold": threshold,
        "flagged": int(np.sum(best > threshold)),
    }


def _log_choose(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def rank_tail(count: int, queries: int, null: int, null_above: int) -> float:
    """P(X >= count), X = the number of queries ranked above the (r+1)-th largest null value
    (r = null_above) when the queries and the null values are exchangeable: a negative
    hypergeometric, P(X = x) = C(x + r, x) C(n + m - x - r - 1, m - x) / C(n + m, m)."""
    if count <= 0:
        return 1.0
    if null_above >= null:  # every null value is above: nothing bounds the queries
        return 1.0
    total = _log_choose(null + queries, queries)
    terms = [
        _log_choose(x + null_above, x)
        + _log_choose(null + queries - x - null_above - 1, queries - x)
        - total
        for x in range(count, queries + 1)
    ]
    if not terms:
        return 0.0
    top = max(terms)
    return min(1.0, math.exp(top) * sum(math.exp(t - top) for t in terms))


def _flag_counts(best: np.ndarray, null: np.ndarray, quantile: float) -> dict:
    """Flagged count at `quantile`, what a clean set would give, and how unlikely the excess is.

    Exact and slightly conservative under exchangeability (queries drawn like the null images):
    r null values lie above the threshold, so every flagged query also lies above the (r+1)-th
    largest null value, and the number of queries above that order statistic has a known
    distribution (`rank_tail`) with mean m (r + 1) / (n + 1). A binomial at rate 1 - q would
    ignore that the threshold is itself estimated from the n null values: it fires far too often,
    most at extreme quantiles where the threshold is the null's maximum."""
    threshold = threshold_from_null(null, quantile)
    flagged = int(np.sum(best > threshold))
    null_above = int(np.sum(null > threshold))
    return {
        "threshold": threshold,
        "flagged": flagged,
        "expected_if_clean": len(best) * (null_above + 1) / (len(null) + 1),
        "null_above": null_above,
        "p_value": rank_tail(flagged, len(best), len(null), null_above),
    }


def matched_identities(flagged: np.ndarray, matched: np.ndarray, top: int = 20) -> dict:
    """Training identities that flagged images point to, most-pointed-to first."""
    identities, counts = np.unique(matched[flagged], return_counts=True)
    order = np.lexsort((identities, -counts))[:top]
    return {
        "count": int(len(identities)),
        "with_several_images": int(np.sum(counts >= 2)),
        "top": [{"identity": int(identities[i]), "images": int(counts[i])} for i in order],
    }


def audit(
    queries: np.ndarray,
    centres: np.ndarray,
    centre_labels: np.ndarray,
    null: np.ndarray,
    quantile: float = DEFAULT_QUANTILE,
    worst: int = 16,
    search: dict | None = None,
    genuine: np.ndarray | None = None,
    centre_images: float = 1.0,
) -> tuple[dict, np.ndarray, np.ndarray]:
    """Nearest training centre of every query, the null-calibrated threshold, the flagged count
    against the count expected of a clean set, and the `worst` matches; also returns the
    per-query best similarity and matched identity label."""
    threshold_from_null(null, quantile)  # a bad quantile or empty null fails before the search
    if (1.0 - quantile) * len(null) < MIN_NULL_TAIL:
        log.warning(
            "leak threshold: only %.1f of %d null images lie above quantile %g; the threshold is "
            "a noisy extreme (sample more images per identity or lower --leak-quantile)",
            (1.0 - quantile) * len(null),
            len(null),
            quantile,
        )
    found = nearest_centres(queries, centres, k=1, **(search or {}))
    best = found.similarities[:, 0]
    matched = np.asarray(centre_labels)[np.maximum(found.indices[:, 0], 0)]
    counts = _flag_counts(best, null, quantile)
    flagged = best > counts["threshold"]
    order = np.argsort(-best, kind="stable")[:worst]
    report = {
        "unit": "image",
        "queries": int(len(queries)),
        "identities_searched": int(len(centres)),
        **counts,
        "flagged_fraction": float(flagged.mean()) if len(flagged) else 0.0,
        "leak_detected": bool(counts["p_value"] < P_VALUE_LEVEL),
        "calibration": {
            "rule": CALIBRATION_RULE,
            "quantile": quantile,
            "null_images": int(len(null)),
            "null_similarity": summary(null, value_range=(-1.0, 1.0)),
            "clean_false_positive_rate": 1.0 - quantile,
        },
        "best_match": summary(best, value_range=(-1.0, 1.0)),
        "flagged_at_quantiles": {f"{q:g}": _flag_counts(best, null, q) for q in REPORTED_QUANTILES},
        "matched_identities": matched_identities(flagged, matched),
        "worst": [
            {"query": int(i), "identity": int(matched[i]), "similarity": float(best[i])}
            for i in order
        ],
    }
    if genuine is not None:
        report["genuine_similarity"] = _genuine_summary(genuine)
        report["genuine_rule"] = genuine_rule(best, genuine, centre_images)
    return report, best, matched


def _genuine_summary(genuine: np.ndarray) -> dict:
    """How well the model verifies the set (context only; it no longer sets the threshold)."""
    if len(genuine) and np.median(genuine) < 0.1:
        log.warning(
            "median genuine-pair cosine is %.3f: the model barely verifies this set, so a leaked "
            "person is unlikely to match their training identity either",
            float(np.median(genuine)),
        )
    return {"pairs": int(len(genuine)), **summary(genuine, value_range=(-1.0, 1.0))}


def pair_leaks(best: np.ndarray, matched: np.ndarray, issame: np.ndarray, threshold: float) -> dict:
    """Verification pairs: genuine pairs leaked (both images flagged, same training identity) and
    pairs with at least one flagged image."""
    flagged = best > threshold
    both = flagged[0::2] & flagged[1::2] & (matched[0::2] == matched[1::2])
    issame = np.asarray(issame, bool)
    return {
        "pairs": int(len(issame)),
        "genuine": int(issame.sum()),
        "genuine_leaked": int(np.sum(both & issame)),
        "with_flagged_image": int(np.sum(flagged[0::2] | flagged[1::2])),
    }


def group_leaks(best: np.ndarray, groups: np.ndarray, threshold: float) -> dict:
    """Queried identities (training set vs training set) flagged: >= half their images flagged."""
    identities, position = np.unique(groups, return_inverse=True)
    share = np.bincount(position, weights=(best > threshold).astype(np.float64))
    share /= np.maximum(np.bincount(position), 1)
    flagged = share >= 0.5
    return {
        "identities": int(len(identities)),
        "flagged": int(flagged.sum()),
        "flagged_fraction": float(flagged.mean()) if len(flagged) else 0.0,
        "flagged_identities": identities[flagged][:1000].tolist(),
    }


def consecutive_genuine(embeddings: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Genuine pairs from a labelled sample: images (0,1), (2,3) ... of each identity."""
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    position = np.arange(len(order))
    rank = position - np.searchsorted(sorted_labels, sorted_labels, side="left")
    ends = np.searchsorted(sorted_labels, sorted_labels, side="right")
    # An even-ranked image pairs with the next one when that one is of the same identity.
    first = position[(rank % 2 == 0) & (position + 1 < ends)]
    a, b = order[first], order[first + 1]
    return np.einsum("ij,ij->i", embeddings[a], embeddings[b])
