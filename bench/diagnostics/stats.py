"""Statistics of a training set's sample: seeded sampling, identity centres, intra-class and
inter-class similarity, near duplicates, images per identity, and per-image statistics.

Embeddings here are L2-normalised rows (cosine = dot product). A centre is the normalised mean
of an identity's sampled embeddings. The similarity of an image to its own centre includes the
image itself (as CemiFace and others report it), so it is biased upward for small samples; the
mean same-identity PAIR similarity, reported beside it, has no such bias."""

from __future__ import annotations

import hashlib

import numpy as np

from bench.core.errors import DatasetError

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
HISTOGRAM_BINS = 40
# A pixel is "grey" when its channels differ by at most this much (JPEG chroma noise), and an
# image is grayscale when its mean channel spread is at most this (a few coloured pixels aside).
GRAY_SPREAD = 3.0
# ITU-R BT.601 luma, the weights PIL's convert("L") uses.
LUMA = np.asarray([0.299, 0.587, 0.114], np.float32)


def sample_indices(labels: np.ndarray, per_identity: int | None, seed: int) -> np.ndarray:
    """Record indices: `per_identity` random images of every identity (all when it has fewer,
    all images when per_identity is None), sorted; the same seed gives the same sample."""
    labels = np.asarray(labels, np.int64)
    if per_identity is not None and per_identity < 1:
        raise DatasetError(f"--per-identity must be at least 1, got {per_identity}")
    if per_identity is None:
        return np.arange(len(labels), dtype=np.int64)
    shuffled = np.random.default_rng(seed).permutation(len(labels))
    # Stable sort by label keeps the random order within each identity: take its first k.
    by_label = shuffled[np.argsort(labels[shuffled], kind="stable")]
    sorted_labels = labels[by_label]
    starts = np.searchsorted(sorted_labels, sorted_labels, side="left")
    rank = np.arange(len(by_label)) - starts
    return np.sort(by_label[rank < per_identity])


def summary(values: np.ndarray, bins: int = HISTOGRAM_BINS, value_range=None) -> dict:
    """Mean, std, min, quantiles, max and a histogram (edges, counts) of a 1-D array."""
    values = np.asarray(values, np.float64)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return {"count": 0}
    counts, edges = np.histogram(values, bins=bins, range=value_range)
    result = {"count": int(len(values)), "mean": float(values.mean()), "std": float(values.std())}
    result["min"] = float(values.min())
    for q in QUANTILES:
        result[f"q{int(round(q * 100)):02d}"] = float(np.quantile(values, q))
    result["max"] = float(values.max())
    result["histogram"] = {"edges": edges.tolist(), "counts": counts.tolist()}
    return result


def normalise(embeddings: np.ndarray) -> np.ndarray:
    """Row-wise L2 normalisation in float32 (zero rows stay zero)."""
    embeddings = np.asarray(embeddings, np.float32)
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    return embeddings / np.maximum(norms, np.float32(1e-12))


def identity_centres(embeddings: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(identities present, sorted; their normalised centres (C, D)) of normalised embeddings."""
    identities, position = np.unique(labels, return_inverse=True)
    sums = np.zeros((len(identities), embeddings.shape[1]), np.float64)
    np.add.at(sums, position, embeddings)
    return identities, normalise(sums)


def intra_class(embeddings: np.ndarray, labels: np.ndarray) -> dict:
    """Cosine of every image to its identity centre, and of every same-identity image pair."""
    identities, centres = identity_centres(embeddings, labels)
    position = np.searchsorted(identities, labels)
    to_centre = np.einsum("ij,ij->i", embeddings, centres[position])
    pair_sims = _same_identity_pairs(embeddings, labels)
    return {
        "centre_similarity": summary(to_centre, value_range=(-1.0, 1.0)),
        "pair_similarity": summary(pair_sims, value_range=(-1.0, 1.0)),
    }


def _groups(labels: np.ndarray):
    """(label, indices) of every identity, indices in sample order."""
    order = np.argsort(labels, kind="stable")
    boundaries = np.flatnonzero(np.diff(labels[order])) + 1
    for group in np.split(order, boundaries):
        if len(group):
            yield int(labels[group[0]]), group


def _same_identity_pairs(embeddings: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Cosine of every unordered pair of images of one identity (k(k-1)/2 per identity)."""
    found = []
    for _label, group in _groups(labels):
        if len(group) > 1:
            vectors = embeddings[group]
            i, j = np.triu_indices(len(group), k=1)
            found.append(np.einsum("ij,ij->i", vectors[i], vectors[j]))
    return np.concatenate(found) if found else np.zeros(0, np.float32)


def near_duplicates(embeddings: np.ndarray, labels: np.ndarray, threshold: float) -> dict:
    """Same-identity image pairs with cosine > threshold, and the share of images in one."""
    flagged_images = 0
    pairs = 0
    for _label, group in _groups(labels):
        if len(group) < 2:
            continue
        sims = embeddings[group] @ embeddings[group].T
        np.fill_diagonal(sims, -np.inf)
        close = sims > threshold
        pairs += int(close.sum()) // 2
        flagged_images += int(close.any(axis=1).sum())
    return {
        "threshold": float(threshold),
        "pairs": pairs,
        "images": flagged_images,
        "rate": flagged_images / max(len(labels), 1),
    }


def exact_duplicates(hashes: list[str], labels: np.ndarray) -> dict:
    """Images whose pixels equal an earlier sampled image's (within and across identities)."""
    first_label: dict[str, int] = {}
    within = across = 0
    for digest, label in zip(hashes, labels.tolist(), strict=True):
        if digest not in first_label:
            first_label[digest] = label
        elif first_label[digest] == label:
            within += 1
        else:
            across += 1
    return {
        "images": within + across,
        "within_identity": within,
        "across_identities": across,
        "rate": (within + across) / max(len(hashes), 1),
    }


def per_identity_counts(labels: np.ndarray) -> dict:
    """Images-per-identity statistics of the whole set (from its labels, no decoding)."""
    _, counts = np.unique(np.asarray(labels), return_counts=True)
    result = summary(counts, bins=min(HISTOGRAM_BINS, max(int(np.ptp(counts)) + 1, 1)))
    result["identities"] = int(len(counts))
    result["images"] = int(counts.sum())
    result["singletons"] = int(np.sum(counts == 1))
    return result


def image_statistics(images: np.ndarray) -> dict[str, np.ndarray]:
    """Per image: mean luma brightness (0-255), Laplacian-variance sharpness, grayscale flag."""
    pixels = images.astype(np.float32)
    luma = pixels @ LUMA
    # 4-neighbour Laplacian on the interior; its variance is the usual focus measure.
    laplacian = (
        luma[:, :-2, 1:-1]
        + luma[:, 2:, 1:-1]
        + luma[:, 1:-1, :-2]
        + luma[:, 1:-1, 2:]
        - 4.0 * luma[:, 1:-1, 1:-1]
    )
    spread = pixels.max(axis=3) - pixels.min(axis=3)
    return {
        "brightness": luma.mean(axis=(1, 2)),
        "sharpness": laplacian.reshape(len(images), -1).var(axis=1),
        "grayscale": spread.mean(axis=(1, 2)) <= GRAY_SPREAD,
    }


def pixel_hashes(images: np.ndarray) -> list[str]:
    """A sha1 of every image's pixels (exact-duplicate detection independent of the encoding)."""
    return [hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest() for image in images]


def image_summary(stats: dict[str, np.ndarray]) -> dict:
    """The JSON form of the collected per-image statistics."""
    return {
        "brightness": summary(stats["brightness"], value_range=(0.0, 255.0)),
        "sharpness": summary(np.log10(1.0 + stats["sharpness"])),
        "sharpness_scale": "log10(1 + variance of the 4-neighbour Laplacian of luma)",
        "grayscale_share": float(np.mean(stats["grayscale"])) if len(stats["grayscale"]) else 0.0,
    }


def split_half_similarity(embeddings: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per identity with >= 2 sampled images: cosine between the centres of its two halves
    (alternate images). How close two centres of the SAME identity come: the yardstick for
    calling two different labels' centres a collision."""
    found = []
    for _label, group in _groups(labels):
        if len(group) >= 2:
            first = embeddings[group[0::2]].sum(axis=0)
            second = embeddings[group[1::2]].sum(axis=0)
            found.append(float(normalise(first[None])[0] @ normalise(second[None])[0]))
    return np.asarray(found, np.float32)
