"""1:N open-set identification: CMC top-k over mated probes and TPIR at FPIR, corrected.

The corrected method is insightface's ijb_evals.py `evaluation_1N`: a mated probe counts as
detected-and-identified at a threshold when its mate is ranked first (its score beats every
non-mate gallery template) AND its score is above the threshold; the threshold for an FPIR is
read from the sorted maximum scores of the non-mated probes, and FPIR is a fraction of the
non-mated probes. The old ijb_1n.py instead counted FPIR against all probes' non-mate scores
and ignored the rank-1 condition (insightface PRs #1387/#1739, AdaFace #169)."""

from __future__ import annotations

import numpy as np

from bench.core.errors import EvalError

TOP_K = (1, 5, 10)
PROBE_CHUNK = 2048  # probes per similarity block: 2048 x gallery float64
# The FPIRs at which the reference prints TPIR: 10 ** np.arange(-4, 0, 4 / 100)[::25], i.e.
# 1e-4, 0.001000000000000002, ... (not the decimal literals). int(count * fpir) floors, so the
# exact values decide the threshold row; they are computed the reference's way.
FPIR_KEYS = ("0.0001", "0.001", "0.01", "0.1")
FPIRS = tuple(float(10**exponent) for exponent in np.arange(-4, 0, 4 / 100)[::25])


def search_scores(
    probe_features: np.ndarray,
    probe_subjects: np.ndarray,
    gallery_features: np.ndarray,
    gallery_subjects: np.ndarray,
) -> dict[str, np.ndarray]:
    """Per probe: mated or not, mate score, best non-mate score, rank of the mate."""
    if len(np.unique(gallery_subjects)) != len(gallery_subjects) or len(gallery_subjects) < 2:
        raise EvalError(
            "a 1:N gallery needs at least 2 templates and one template per subject "
            f"(got {len(gallery_subjects)} templates of {len(np.unique(gallery_subjects))} subjects)"
        )
    order = np.argsort(gallery_subjects, kind="stable")
    slot = np.searchsorted(gallery_subjects[order], probe_subjects)
    slot = np.minimum(slot, len(order) - 1)
    mated = gallery_subjects[order[slot]] == probe_subjects
    mate = np.where(mated, order[slot], 0)
    count = len(probe_subjects)
    mate_score = np.full(count, np.nan)
    best_other = np.full(count, np.nan)
    rank = np.full(count, -1, dtype=np.int64)
    for start in range(0, count, PROBE_CHUNK):
        stop = min(start + PROBE_CHUNK, count)
        similarity = probe_features[start:stop] @ gallery_features.T
        rows = np.arange(stop - start)
        own = similarity[rows, mate[start:stop]]
        above = np.sum(similarity > own[:, np.newaxis], axis=1)
        masked = similarity.copy()
        masked[rows, mate[start:stop]] = -np.inf
        block_mated = mated[start:stop]
        mate_score[start:stop] = np.where(block_mated, own, np.nan)
        # A mated probe's competitor is its best non-mate; a non-mated probe's is its best score.
        best_other[start:stop] = np.where(block_mated, masked.max(axis=1), similarity.max(axis=1))
        rank[start:stop] = np.where(block_mated, above, -1)
    return {"mated": mated, "mate_score": mate_score, "best_other": best_other, "rank": rank}


def identification_metrics(search: dict[str, np.ndarray]) -> dict:
    """top-k and TPIR@FPIR for one gallery (fractions), plus the counts the mean needs."""
    mated = search["mated"]
    mated_count, non_mated_count = int(mated.sum()), int((~mated).sum())
    if mated_count == 0 or non_mated_count == 0:
        raise EvalError(
            f"1:N needs mated and non-mated probes ({mated_count} mated, {non_mated_count} "
            "non-mated); check the gallery and probe files"
        )
    rank = search["rank"][mated]
    hits = {k: int(np.sum(rank < k)) for k in TOP_K}
    mate_score = search["mate_score"][mated]
    first = mate_score > search["best_other"][mated]  # ranked first, strictly
    impostor_best = np.sort(search["best_other"][~mated])[::-1]
    tpir = {}
    for key, fpir in zip(FPIR_KEYS, FPIRS, strict=True):
        threshold = impostor_best[max(int(non_mated_count * fpir) - 1, 0)]
        tpir[key] = float(np.sum(first & (mate_score > threshold)) / mated_count)
    return {
        **{f"top{k}": hits[k] / mated_count for k in TOP_K},
        "tpir_at_fpir": tpir,
        "probes_mated": mated_count,
        "probes_non_mated": non_mated_count,
        "hits": hits,
    }


def mean_over_galleries(per_gallery: dict[str, dict], probe_count: int) -> dict:
    """The reference's mean: top-k hits of both galleries over all probes, TPIR averaged."""
    hits = {k: sum(g["hits"][k] for g in per_gallery.values()) for k in TOP_K}
    keys = FPIR_KEYS
    return {
        **{f"top{k}": hits[k] / probe_count for k in TOP_K},
        "tpir_at_fpir": {
            key: float(np.mean([g["tpir_at_fpir"][key] for g in per_gallery.values()]))
            for key in keys
        },
    }
