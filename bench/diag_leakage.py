"""Identity-leakage audit: do people of an evaluation set (or of another training set) reappear
among a training set's identities?

Evaluation sets carry no identity labels, so the unit that is flagged is the evaluation IMAGE:
every image is a query, matched against all training-identity centres (chunked search). An image
is flagged when its nearest centre is closer than a threshold calibrated on the evaluation set's
own genuine pairs:

    threshold = rho / sqrt(rho + (1 - rho) / k),   rho = q-quantile of the genuine-pair cosines
    (q = 0.5 by default), k = the median number of images behind a training centre.

Why: if the embeddings of one person are e = sqrt(rho) u + sqrt(1 - rho) n (u the person's
direction, n independent unit noise orthogonal to it), two photos of that person have cosine ~rho,
and a photo and the normalised mean of k OTHER photos of that person have cosine
rho / sqrt(rho + (1 - rho) / k): rho for k = 1, sqrt(rho) as k grows (the noise averages out).
So an image flagged at the median is at least as close to some training identity as a typical
evaluation image would be to a k-image centre of its OWN identity. Raw image-to-image scores
would be the wrong yardstick: centres are systematically closer to everything than single images.
About half of the images of a leaked person are flagged at q = 0.5 when the training photos of
that person resemble the evaluation photos as much as those resemble each other (fewer when the
training set renders the person in another style); an image of someone else is flagged only when
it is closer to a wrong identity than typical photos are to their own.

Pairs: a genuine pair whose two images are both flagged and match the same training identity is
counted as a leaked pair (that person is, very likely, in the training set).

Training set against training set (e.g. a synthetic set against its generator's source): the
queries are the sampled images of the audited set, the centres those of the other set, and the
genuine pairs that calibrate the threshold are consecutive sampled images of one identity of the
other set. A queried identity is flagged when at least half of its sampled images are flagged."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from bench.diag_search import nearest_centres
from bench.diag_stats import summary
from bench.errors import EvalError

log = logging.getLogger(__name__)
DEFAULT_QUANTILE = 0.5
REPORTED_QUANTILES = (0.25, 0.5, 0.75)
CALIBRATION_RULE = "rho / sqrt(rho + (1 - rho) / k), rho = quantile of genuine-pair cosine"


def pair_similarities(embeddings: np.ndarray) -> np.ndarray:
    """Cosine of pairs (2i, 2i+1) of normalised embeddings, the verification-set layout."""
    return np.einsum("ij,ij->i", embeddings[0::2], embeddings[1::2])


def threshold_from_genuine(
    genuine: np.ndarray, quantile: float = DEFAULT_QUANTILE, centre_images: float = 1.0
) -> float:
    """Image-to-centre threshold from genuine-pair cosines and centre size k (see module)."""
    if len(genuine) == 0:
        raise EvalError("leakage audit: no genuine pairs to calibrate the threshold on")
    if not 0.0 < quantile < 1.0:
        raise EvalError(f"leakage quantile must lie in (0, 1), got {quantile}")
    rho = min(max(float(np.quantile(genuine, quantile)), 0.0), 1.0)
    if rho == 0.0:
        return 0.0
    return float(rho / np.sqrt(rho + (1.0 - rho) / max(centre_images, 1.0)))


def audit(
    queries: np.ndarray,
    centres: np.ndarray,
    centre_labels: np.ndarray,
    genuine: np.ndarray,
    centre_images: float,
    quantile: float = DEFAULT_QUANTILE,
    worst: int = 16,
    search: dict | None = None,
) -> tuple[dict, np.ndarray, np.ndarray]:
    """Nearest training centre of every query, the calibrated threshold, the flagged count and the
    `worst` matches; also returns the per-query best similarity and matched identity label."""
    threshold = threshold_from_genuine(genuine, quantile, centre_images)
    if np.median(genuine) < 0.1:
        log.warning(
            "median genuine-pair cosine is %.3f: the model barely verifies this set, so the leak "
            "threshold (%.3f) means little",
            float(np.median(genuine)),
            threshold,
        )
    found = nearest_centres(queries, centres, k=1, **(search or {}))
    best = found.similarities[:, 0]
    matched = np.asarray(centre_labels)[np.maximum(found.indices[:, 0], 0)]
    flagged = best > threshold
    order = np.argsort(-best, kind="stable")[:worst]
    report = {
        "unit": "image",
        "queries": int(len(queries)),
        "identities_searched": int(len(centres)),
        "threshold": threshold,
        "calibration": {
            "rule": CALIBRATION_RULE,
            "quantile": quantile,
            "centre_images": float(centre_images),
            "genuine_pairs": int(len(genuine)),
            "genuine_similarity": summary(genuine, value_range=(-1.0, 1.0)),
        },
        "best_match": summary(best, value_range=(-1.0, 1.0)),
        "flagged": int(flagged.sum()),
        "flagged_fraction": float(flagged.mean()) if len(flagged) else 0.0,
        "flagged_at_quantiles": {
            f"{q:g}": int(np.sum(best > threshold_from_genuine(genuine, q, centre_images)))
            for q in REPORTED_QUANTILES
        },
        "worst": [
            {"query": int(i), "identity": int(matched[i]), "similarity": float(best[i])}
            for i in order
        ],
    }
    return report, best, matched


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


def contact_sheet(
    worst: list[dict],
    query_image: Callable[[int], np.ndarray],
    identity_images: Callable[[int], list[np.ndarray]],
    path: Path,
    query_name: str,
    thumbnails: int = 4,
) -> Path:
    """PNG: one row per worst match, the query image, a gap, then thumbnails of the matched
    training identity, captioned with the similarity."""
    if not worst:
        raise EvalError(f"{path}: no matches to draw")
    tile, gap, caption = 112, 8, 14
    width = tile * (1 + thumbnails) + gap * (thumbnails + 4)  # a wider gap after the query
    height = len(worst) * (tile + caption + gap) + gap
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for row, match in enumerate(worst):
        top = gap + row * (tile + caption + gap)
        draw.text(
            (gap, top),
            f"{query_name} image {match['query']}  vs  training identity {match['identity']}"
            f"  cos {match['similarity']:.3f}",
            fill=(0, 0, 0),
        )
        sheet.paste(Image.fromarray(query_image(match["query"])), (gap, top + caption))
        for column, image in enumerate(identity_images(match["identity"])[:thumbnails]):
            left = 4 * gap + tile + column * (tile + gap)
            sheet.paste(Image.fromarray(image), (left, top + caption))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path
