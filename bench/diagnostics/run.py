"""Dataset diagnostics and the identity-leakage audit (`bench diagnose`).

Embeds a seeded sample of a training set (every identity, k images each), then reports intra-class
similarity (to the identity centre and between image pairs), inter-class separability (nearest
other centre; centre pairs closer than a calibrated threshold = likely duplicate identities or
label collisions), near-duplicate images, images per identity and image statistics; then audits
leakage against evaluation sets and, optionally, another training set (see bench.diagnostics.leakage).
Writes `<out>/<dataset>.json` (schema_version 1), an overview PNG and contact-sheet PNGs.

Any embedder works: a callable mapping uint8 (N,112,112,3) RGB to (N,D) float embeddings (a
bench.eval.embed.Embedder, an ONNX model, or a fixed function in tests). Only embeddings, labels and
per-image statistics are kept in memory, never the sampled images (0.5M images would be 19 GB).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from bench.core.errors import DatasetError
from bench.diagnostics import drawing
from bench.diagnostics import leakage as diag_leakage
from bench.diagnostics import stats as diag_stats
from bench.diagnostics.results import write_diagnostics
from bench.diagnostics.search import (
    DEFAULT_CENTRE_CHUNK,
    DEFAULT_QUERY_CHUNK,
    close_pairs,
    nearest_centres,
)

log = logging.getLogger(__name__)
SCHEMA_VERSION = 1
COLLISION_SHEET_ROWS = 8  # strongest colliding identity pairs drawn with thumbnails
KIND = "facebench-diagnostics"
EmbedFn = Callable[[np.ndarray], np.ndarray]
# Split-half centres of one identity fall below this quantile only 5% of the time: two labels'
# centres closer than that are as close as one identity is to itself, i.e. a likely collision.
COLLISION_QUANTILE = 0.05


@dataclass(frozen=True)
class Options:
    """Knobs of one diagnose run (recorded in the JSON)."""

    per_identity: int | None = 20  # None = every image
    seed: int = 0
    batch_size: int = 256
    near_duplicate_threshold: float = 0.95
    collision_threshold: float | None = None  # None = calibrated on split-half centres
    leak_quantile: float = diag_leakage.DEFAULT_QUANTILE
    worst: int = 12
    device: str = "cpu"
    search_dtype: str = "float32"
    query_chunk: int = DEFAULT_QUERY_CHUNK
    centre_chunk: int = DEFAULT_CENTRE_CHUNK
    workers: int = 4  # image-decoding threads

    def search(self) -> dict:
        return {
            "query_chunk": self.query_chunk,
            "centre_chunk": self.centre_chunk,
            "device": self.device,
            "dtype": self.search_dtype,
        }


@dataclass
class Sample:
    """The embedded sample of one training set (normalised embeddings, no pixels)."""

    name: str
    records: object  # TrainingRecords: len, [i], labels (and encoded(i) when available)
    indices: np.ndarray
    labels: np.ndarray
    embeddings: np.ndarray
    image_stats: dict = field(default_factory=dict)
    hashes: list = field(default_factory=list)
    null: np.ndarray | None = None  # leave-own-identity-out similarities, computed once

    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        return diag_stats.identity_centres(self.embeddings, self.labels)

    def null_similarities(self, options: Options) -> np.ndarray:
        """Every sampled image's similarity to the nearest OTHER identity centre (the null of
        the leakage audit, see bench.diagnostics.leakage)."""
        if self.null is None:
            identities, centres = self.centres()
            self.null = diag_leakage.null_similarities(
                self.embeddings, self.labels, identities, centres, options.search()
            )
        return self.null

    def identity_images(self, label: int, count: int = 4) -> list[np.ndarray]:
        """Up to `count` sampled images of identity `label` (decoded again, for thumbnails)."""
        chosen = self.indices[self.labels == label][:count]
        return [self.records[int(index)][0] for index in chosen]


def _read_images(records, indices: np.ndarray, pool: ThreadPoolExecutor | None) -> np.ndarray:
    """Decode records `indices` (threads decode the stored bytes when the format exposes them)."""
    if pool is not None and hasattr(records, "encoded"):
        from bench.formats import decode_image

        encoded = [records.encoded(int(index))[0] for index in indices]
        return np.stack(list(pool.map(decode_image, encoded)))
    return np.stack([records[int(index)][0] for index in indices])


def embed_sample(records, embed: EmbedFn, options: Options, name: str) -> Sample:
    """Sample `records` (seeded), embed batch by batch, collect per-image statistics."""
    all_labels = np.asarray(records.labels, np.int64)
    if len(all_labels) == 0:
        raise DatasetError(f"training set {name!r} ({records}) has no images")
    indices = diag_stats.sample_indices(all_labels, options.per_identity, options.seed)
    chunks, stats, hashes = [], {"brightness": [], "sharpness": [], "grayscale": []}, []
    pool = ThreadPoolExecutor(options.workers) if options.workers > 1 else None
    try:
        for start in range(0, len(indices), options.batch_size):
            images = _read_images(records, indices[start : start + options.batch_size], pool)
            chunks.append(np.asarray(embed(images), np.float32))
            for key, values in diag_stats.image_statistics(images).items():
                stats[key].append(values)
            hashes += diag_stats.pixel_hashes(images)
            log.info("%s: embedded %d / %d images", name, start + len(images), len(indices))
    finally:
        if pool is not None:
            pool.shutdown()
    embeddings = diag_stats.normalise(np.concatenate(chunks))
    stats = {key: np.concatenate(values) for key, values in stats.items()}
    return Sample(name, records, indices, all_labels[indices], embeddings, stats, hashes)


def training_section(sample: Sample, options: Options) -> dict:
    """Diversity, separability, duplicates, images per identity, image statistics."""
    return {
        "intra_class": diag_stats.intra_class(sample.embeddings, sample.labels),
        "inter_class": inter_class(sample, options),
        "near_duplicates": {
            "embedding": diag_stats.near_duplicates(
                sample.embeddings, sample.labels, options.near_duplicate_threshold
            ),
            "exact": diag_stats.exact_duplicates(sample.hashes, sample.labels),
        },
        "images_per_identity": diag_stats.per_identity_counts(sample.records.labels),
        "image_stats": diag_stats.image_summary(sample.image_stats),
    }


def _collision_threshold(split: np.ndarray, options: Options, name: str) -> tuple[float, str]:
    """The given --collision-threshold, else the calibrated one, and where it came from."""
    if options.collision_threshold is not None:
        return float(options.collision_threshold), "--collision-threshold"
    if len(split) == 0:
        raise DatasetError(
            f"{name}: no identity has 2 sampled images, so the collision threshold cannot be "
            "calibrated; sample more per identity or pass --collision-threshold"
        )
    source = f"q{COLLISION_QUANTILE:g} of split-half same-identity centre similarity"
    return float(np.quantile(split, COLLISION_QUANTILE)), source


def inter_class(sample: Sample, options: Options) -> dict:
    """Nearest other centre of every identity and centre pairs above the collision threshold."""
    identities, centres = sample.centres()
    other = nearest_centres(
        centres, centres, k=1, exclude=np.arange(len(centres)), **options.search()
    )
    split = diag_stats.split_half_similarity(sample.embeddings, sample.labels)
    threshold, source = _collision_threshold(split, options, sample.name)
    collisions = close_pairs(
        centres,
        threshold,
        max_pairs=options.worst,
        device=options.device,
        dtype=options.search_dtype,
    )
    nearest_sims = other.similarities[:, 0]
    return {
        "nearest_other_centre": diag_stats.summary(nearest_sims, value_range=(-1.0, 1.0)),
        "split_half_centre_similarity": diag_stats.summary(split, value_range=(-1.0, 1.0)),
        "collision_threshold": threshold,
        "collision_threshold_source": source,
        "collision_pairs": collisions.count,
        "collision_fraction": collisions.count / max(len(centres) * (len(centres) - 1) // 2, 1),
        "identities_with_collision": int(np.sum(nearest_sims > threshold)),
        "strongest_pairs": [
            {"a": int(identities[i]), "b": int(identities[j]), "similarity": float(s)}
            for (i, j), s in zip(collisions.pairs, collisions.similarities, strict=True)
        ],
    }


def _embed_all(images: np.ndarray, embed: EmbedFn, batch_size: int) -> np.ndarray:
    chunks = [
        np.asarray(embed(np.ascontiguousarray(images[start : start + batch_size])), np.float32)
        for start in range(0, len(images), batch_size)
    ]
    return diag_stats.normalise(np.concatenate(chunks))


def _median_count(labels: np.ndarray) -> float:
    """Median number of sampled images per identity (the k of the genuine-pair rule)."""
    return float(np.median(np.unique(labels, return_counts=True)[1]))


def leakage_vs_eval(
    sample: Sample,
    target: str,
    images: np.ndarray,
    issame: np.ndarray,
    embed: EmbedFn,
    options: Options,
    sheet: Path | None = None,
) -> dict:
    """Audit evaluation set `target` (2P images, P pair labels) against the sample's centres."""
    issame = np.asarray(issame, bool)
    if len(images) != 2 * len(issame):
        raise DatasetError(f"{target}: {len(images)} images for {len(issame)} pairs")
    embeddings = _embed_all(images, embed, options.batch_size)
    identities, centres = sample.centres()
    report, best, matched = diag_leakage.audit(
        embeddings,
        centres,
        identities,
        sample.null_similarities(options),
        options.leak_quantile,
        options.worst,
        options.search(),
        genuine=diag_leakage.pair_similarities(embeddings)[issame],
        centre_images=_median_count(sample.labels),
    )
    report["pairs"] = diag_leakage.pair_leaks(best, matched, issame, report["threshold"])
    if sheet is not None and report["worst"]:
        drawing.leakage_sheet(
            report["worst"],
            lambda i: np.asarray(images[i]),
            sample.identity_images,
            sheet,
            target,
        )
        report["contact_sheet"] = sheet.name
    return report


def leakage_vs_training(
    sample: Sample, reference: Sample, options: Options, sheet: Path | None = None
) -> dict:
    """Audit: do identities of `sample` reproduce identities of `reference` (e.g. the real set
    a generator was trained on)? Calibrated on the reference's own nearest-other-centre null."""
    identities, centres = reference.centres()
    report, best, _ = diag_leakage.audit(
        sample.embeddings,
        centres,
        identities,
        reference.null_similarities(options),
        options.leak_quantile,
        options.worst,
        options.search(),
        genuine=diag_leakage.consecutive_genuine(reference.embeddings, reference.labels),
        centre_images=_median_count(reference.labels),
    )
    report["identities"] = diag_leakage.group_leaks(best, sample.labels, report["threshold"])
    for match in report["worst"]:  # record indices make the worst matches findable again
        match["record"] = int(sample.indices[match["query"]])
        match["query_identity"] = int(sample.labels[match["query"]])
    if sheet is not None and report["worst"]:
        drawing.leakage_sheet(
            report["worst"],
            lambda i: sample.records[int(sample.indices[i])][0],
            reference.identity_images,
            sheet,
            sample.name,
        )
        report["contact_sheet"] = sheet.name
    return report


def diagnose(
    name: str,
    records,
    embed: EmbedFn,
    out_dir: Path | None,
    eval_sets: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
    against: dict[str, object] | None = None,
    options: Options | None = None,
    model: dict | None = None,
) -> dict:
    """Run every diagnostic on training set `name`; with `out_dir`, write the JSON and plots."""
    options = options or Options()
    sample = embed_sample(records, embed, options, name)
    result = {
        "schema_version": SCHEMA_VERSION,
        "kind": KIND,
        "dataset": name,
        "model": model,
        "options": asdict(options),
        "sample": {
            "images": int(len(sample.indices)),
            "identities": int(len(np.unique(sample.labels))),
            "dataset_images": int(len(records.labels)),
        },
        **training_section(sample, options),
    }
    if out_dir is not None and result["inter_class"]["strongest_pairs"]:
        path = drawing.collision_sheet(
            sample.identity_images,
            result["inter_class"],
            Path(out_dir) / f"{name}-collisions.png",
            COLLISION_SHEET_ROWS,
        )
        result["inter_class"]["contact_sheet"] = path.name
    sheet = (lambda key: out_dir / f"{name}-leak-{key}.png") if out_dir else (lambda key: None)
    result["leakage"] = {
        target: leakage_vs_eval(sample, target, images, issame, embed, options, sheet(target))
        for target, (images, issame) in (eval_sets or {}).items()
    }
    result["against"] = {
        other: leakage_vs_training(
            sample,
            embed_sample(other_records, embed, options, other),
            options,
            sheet(f"vs-{other}"),
        )
        for other, other_records in (against or {}).items()
    }
    result["created"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    if out_dir is not None:
        write_diagnostics(result, Path(out_dir))
    return result


def eval_sets_for(targets: Sequence[str], root: Path, catalog) -> dict:
    """Decoded evaluation sets by name (a missing one is a DatasetError, never skipped)."""
    from bench.eval.sets import load_eval_set

    return {target: load_eval_set(target, root, catalog) for target in targets}
