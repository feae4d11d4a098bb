"""Image features -> template features, with the reference's exact float32 arithmetic.

Per image: flip-sum (model(x) + model(mirror(x))) or the plain embedding, optionally L2
normalised, optionally weighted by the detector score. Per template: the mean over the frames
of one media (one video or one still), summed over the media, then L2 normalised in float64.
insightface does this with a Python loop over templates and media; here one stable sort and two
np.add.reduceat calls give the same float32 sums in the same order, so the result is bitwise
equal to the loop (tests/eval/test_ijb_scoring.py checks it)."""

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
    if flags.image_norm:
        result = result / np.sqrt(np.sum(result**2, -1, keepdims=True))
    if flags.detector_score:
        result = result * np.asarray(detector_scores, dtype=np.float32)[:, np.newaxis]
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
    # Stable: within one (template, media) the frames keep file order, as np.where gives them.
    order = np.lexsort((medias, templates))
    sorted_templates, sorted_medias = templates[order], medias[order]
    new_group = np.r_[
        True,
        (sorted_templates[1:] != sorted_templates[:-1]) | (sorted_medias[1:] != sorted_medias[:-1]),
    ]
    media_starts = np.flatnonzero(new_group)
    counts = np.diff(np.r_[media_starts, len(order)]).astype(np.float32)
    media_sums = np.add.reduceat(features[order], media_starts, axis=0)
    media_means = media_sums / counts[:, np.newaxis]  # float32, as np.mean of float32 frames
    media_templates = sorted_templates[media_starts]
    template_starts = np.flatnonzero(np.r_[True, media_templates[1:] != media_templates[:-1]])
    template_sums = np.add.reduceat(media_means, template_starts, axis=0)
    return Templates(
        ids=media_templates[template_starts],
        features=l2_normalize(template_sums.astype(np.float64)),
    )
