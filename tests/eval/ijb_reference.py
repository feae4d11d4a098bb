"""Loop transcriptions of insightface's IJB maths (eval_ijbc.py, ijb_evals.py) and of sklearn's
roc_curve / auc, written for clarity, not speed: the oracle the vectorised code is tested against."""

from __future__ import annotations

import numpy as np


def process_embeddings(features, scores, flip, image_norm, detector_score):
    """eval_ijbc.py: flip-sum, optional per-image normalisation, optional detector weighting."""
    half = features.shape[1] // 2
    feats = features[:, :half] + features[:, half:] if flip else features[:, :half]
    if image_norm:
        feats = feats / np.sqrt(np.sum(feats**2, -1, keepdims=True))
    if detector_score:
        feats = feats * scores[:, np.newaxis]
    return feats


def sklearn_normalize(x):
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))
    norms[norms < 10 * np.finfo(norms.dtype).eps] = 1.0
    return x / norms[:, np.newaxis]


def image2template_feature(img_feats, templates, medias, choose_templates=None, choose_ids=None):
    """The reference's per-template loop (ijb_evals.py image2template_feature)."""
    if choose_templates is not None:
        unique_templates, indices = np.unique(choose_templates, return_index=True)
        unique_subjects = choose_ids[indices]
    else:
        unique_templates, unique_subjects = np.unique(templates), None
    template_feats = np.zeros((len(unique_templates), img_feats.shape[1]))
    for count, template in enumerate(unique_templates):
        (ind_t,) = np.where(templates == template)
        face_feats, face_medias = img_feats[ind_t], medias[ind_t]
        unique_medias, media_counts = np.unique(face_medias, return_counts=True)
        media_feats = []
        for media, media_count in zip(unique_medias, media_counts, strict=True):
            (ind_m,) = np.where(face_medias == media)
            if media_count == 1:
                media_feats += [face_feats[ind_m]]
            else:
                media_feats += [np.mean(face_feats[ind_m], 0, keepdims=True)]
        template_feats[count] = np.sum(np.array(media_feats), 0)
    return sklearn_normalize(template_feats), unique_templates, unique_subjects


def verification(template_feats, unique_templates, p1, p2):
    template2id = np.zeros(max(unique_templates) + 1, dtype=int)
    template2id[unique_templates] = np.arange(len(unique_templates))
    return np.array(
        [
            np.sum(template_feats[template2id[a]] * template_feats[template2id[b]])
            for a, b in zip(p1, p2, strict=True)
        ]
    )


def roc_curve(labels, scores):
    """sklearn.metrics.roc_curve (drop_intermediate=True) as loops over distinct thresholds."""
    thresholds = sorted(set(scores.tolist()), reverse=True)
    tps = [float(np.sum((scores >= t) & (labels == 1))) for t in thresholds]
    fps = [float(np.sum((scores >= t) & (labels != 1))) for t in thresholds]
    if len(fps) > 2:
        keep = [0]
        for i in range(1, len(fps) - 1):
            if (
                fps[i - 1] - 2 * fps[i] + fps[i + 1] != 0
                or tps[i - 1] - 2 * tps[i] + tps[i + 1] != 0
            ):
                keep.append(i)
        keep.append(len(fps) - 1)
        tps, fps, thresholds = (
            [tps[i] for i in keep],
            [fps[i] for i in keep],
            [thresholds[i] for i in keep],
        )
    tps, fps = np.array([0.0, *tps]), np.array([0.0, *fps])
    return fps / fps[-1], tps / tps[-1], np.array([np.inf, *thresholds])


def auc(fpr, tpr):
    return sum((fpr[i + 1] - fpr[i]) * (tpr[i + 1] + tpr[i]) / 2.0 for i in range(len(fpr) - 1))


def tar_at_fars(labels, scores, fars=(1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)):
    """eval_ijbc.py: flip the curve, take the first nearest FPR (so the larger TPR on ties)."""
    fpr, tpr, _ = roc_curve(labels, scores)
    area = auc(fpr, tpr)
    fpr, tpr = np.flipud(fpr), np.flipud(tpr)
    result = []
    for far in fars:
        _, index = min(zip(abs(fpr - far), range(len(fpr)), strict=True))
        result.append(tpr[index])
    return result, area


def evaluation_1n(query_feats, gallery_feats, query_ids, reg_ids, fars):
    """ijb_evals.py evaluation_1N (the corrected 1:N)."""
    similarity = np.dot(query_feats, gallery_feats.T)
    top1 = top5 = top10 = 0
    pos_sims, neg_sims, non_gallery_sims = [], [], []
    for index, query_id in enumerate(query_ids):
        if query_id in reg_ids:
            gallery_label = np.argwhere(reg_ids == query_id)[0, 0]
            index_sorted = np.argsort(similarity[index])[::-1]
            top1 += gallery_label in index_sorted[:1]
            top5 += gallery_label in index_sorted[:5]
            top10 += gallery_label in index_sorted[:10]
            pos_sims.append(similarity[index][reg_ids == query_id][0])
            neg_sims.append(similarity[index][reg_ids != query_id])
        else:
            non_gallery_sims.append(similarity[index])
    pos_sims, neg_sims, non_gallery_sims = (
        np.array(pos_sims),
        np.array(neg_sims),
        np.array(non_gallery_sims),
    )
    correct_pos_cond = pos_sims > neg_sims.max(1)
    non_gallery_sorted = np.sort(non_gallery_sims.max(1))[::-1]
    recalls = []
    for far in fars:
        thresh = non_gallery_sorted[max(int(non_gallery_sorted.shape[0] * far) - 1, 0)]
        recalls.append(
            np.logical_and(correct_pos_cond, pos_sims > thresh).sum() / pos_sims.shape[0]
        )
    return top1, top5, top10, recalls, len(pos_sims)
