"""Image features -> template features, with the reference's exact float32 arithmetic.

Per image: flip-sum (model(x) + model(mirror(x))) or the plain embedding, optionally L2
normalised, optionally weighted by the detector score. Per template: the mean over the frames
of one media (one video or one still), summed over the media, then L2 normalised in float64.
insightface does this with a Python loop over templates and media; here vectorised group sums
add the same float32 rows in the same order, so the result is bitwise equal to the loop (tests/eval/test_ijb_scoring.py checks it)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.core.errors import EvalError


@dataclass(frozen=True)
class ScoringFlags:
    """How image features become template features; the default is the reference's."""

    flip: bool = True  # add the mirrored image's embedding
    image_norm: bool = False  # L2-normalise each image feature before pooling
    detector_score: bool = True  # weight each image feature by its detector score

    def to_dict(self) -> dict[str, bool]:
        return {
            "flip": self.flip,
            "image_norm": self.image_norm,
            "detector_score": self.detector_score,
        }

    @property
    def name(self) -> str:
        """insightface's N/D/F spelling with N = per-image normalisation (as ijb_evals.py)."""
        return f"N{self.image_norm:d}D{self.detector_score:d}F{self.flip:d}"


def image_features(
    features: np.ndarray, detector_scores: np.ndarray, flags: ScoringFlags
) -> np.ndarray:
    """float32 (N, D) image features from the (N, 2D) [embedding | flipped embedding] layout."""
    if features.ndim != 2 or features.shape[1] % 2:
        raise EvalError(f"expected (N, 2D) image features, got shape {features.shape}")
    if len(detector_scores) != len(features):
        raise EvalError(
            f"{len(features)} image features but {len(detector_scores)} detector scores"
        )
    features = np.asarray(features, dtype=np.float32)
    half = features.shape[1] // 2
    result = features[:, :half] + features[:, half:] if flags.flip else features[:, :half].copy()
    # In place: IJB-C's 470K x 512 float32 features are ~1 GB per copy.
    if flags.image_norm:
        result /= np.sqrt(np.sum(result**2, -1, keepdims=True))
    if flags.detector_score:
        result *= np.asarray(detector_scores, dtype=np.float32)[:, np.newaxis]
    return result


@dataclass(frozen=True)
class Templates:
    """Sorted template ids and their L2-normalised float64 features (row i = ids[i])."""

    ids: np.ndarray
    features: np.ndarray


def pool_templates(features: np.ndarray, templates: np.ndarray, medias: np.ndarray) -> Templates:
    """Mean over the frames of each media, sum over a template's media, L2 normalisation."""
    from bench.eval.embed import l2_normalize

    if not len(features) == len(templates) == len(medias):
        raise EvalError(
            f"{len(features)} image features for {len(templates)} media-list rows; "
            "row i of the features must be line i of the meta files"
        )
    # One group per (template, media), numbered in (template, media) order.
    medias = medias - medias.min()  # ids are >= 0 in IJB; the shift keeps the key order anyway
    span = int(medias.max()) + 1
    if int(np.abs(templates).max()) >= np.iinfo(np.int64).max // (2 * span):
        raise EvalError(f"template and media ids too large to combine ({templates.max()}, {span})")
    media_keys, media_of_row = np.unique(templates * span + medias, return_inverse=True)
    media_of_row = media_of_row.reshape(-1)
    counts = np.bincount(media_of_row, minlength=len(media_keys)).astype(np.float32)
    media_sums = ordered_group_sum(features, media_of_row, len(media_keys))
    media_means = media_sums / counts[:, np.newaxis]  # float32, as np.mean of float32 frames
    ids, template_of_media = np.unique(media_keys // span, return_inverse=True)
    template_sums = ordered_group_sum(media_means, template_of_media.reshape(-1), len(ids))
    return Templates(ids=ids, features=l2_normalize(template_sums.astype(np.float64)))


def ordered_group_sum(values: np.ndarray, group: np.ndarray, groups: int) -> np.ndarray:
    """Row sums per group, each accumulated one row after another in the rows' order.

    float32 addition is not associative: the reference's np.mean / np.sum over axis 0 add rows
    sequentially, so this does too (np.add.reduceat does not, np.add.at is 20x slower). Step k
    adds the k-th row of every group that has one: as many steps as the largest group."""
    order = np.argsort(group, kind="stable")
    sorted_group = group[order]
    starts = np.searchsorted(sorted_group, np.arange(groups))
    position = np.arange(len(order)) - starts[sorted_group]  # rank of each row in its group
    by_position = np.argsort(position, kind="stable")
    bounds = np.searchsorted(position[by_position], np.arange(position.max(initial=0) + 2))
    sums = np.zeros((groups, values.shape[1]), dtype=values.dtype)
    for step in range(len(bounds) - 1):
        members = order[by_position[bounds[step] : bounds[step + 1]]]
        sums[group[members]] += values[members]  # one row per group: no repeated index
    return sums
