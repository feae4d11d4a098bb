"""Prepared training sets: any supported format -> the canonical insightface RecordIO + manifest.

`prepare` copies every image's stored bytes unchanged (no re-encode) into
`train.rec`/`train.idx`/`property`, grouped by identity (a stable sort, so images keep their
order within an identity), with labels renumbered 0..K-1 if the source's are not. Records are read
and validated in worker processes, written sequentially, into a staging folder next to `out_dir`
that is renamed into place only when complete: an interrupted prepare leaves no half-written set.
`bench.data.check` decodes everything again; `bench.data.export` writes image folders.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from bench.core import io, leftovers, lock
from bench.core.errors import DatasetError, FormatError
from bench.data.manifest import MANIFEST_NAME, ContentHasher, Manifest, write_manifest
from bench.data.mask import load_mask
from bench.data.parallel import map_chunks, record_chunks
from bench.formats import TrainingRecords, image_extension, open_dataset, write_canonical
from bench.formats.insightface import IDX_NAME, REC_NAME

if TYPE_CHECKING:
    from bench.catalog import TrainingSet

log = logging.getLogger(__name__)
STAGING_KIND = "preparing"  # `.NAME.preparing-PID-XXXX`: the staging folder of a prepare


def _read_chunk(dataset: TrainingRecords, indices: np.ndarray, labels: np.ndarray) -> list:
    """(stored bytes, new label) of each record, checked to be an encoded image."""
    out = []
    for index, label in zip(indices.tolist(), labels.tolist(), strict=True):
        buf, _ = dataset.encoded(index)
        if image_extension(buf) is None:
            raise FormatError(
                f"{dataset.describe(index)}: not an encoded image (starts with {bytes(buf[:8]).hex()}); "
                "the source is corrupt or in a format read wrongly: check `--from`"
            )
        out.append((buf, label))
    return out


def contiguous_labels(labels: np.ndarray, source: str) -> tuple[np.ndarray, int]:
    """Labels renumbered to 0..K-1 in increasing order (unchanged if already so), and K."""
    present = np.unique(labels)
    if len(present) and present[-1] != len(present) - 1:
        log.warning(
            "%s: labels are not 0..K-1 (%d identities, largest label %d): renumbered in "
            "increasing order",
            source,
            len(present),
            int(present[-1]),
        )
        return np.searchsorted(present, labels).astype(np.int64), len(present)
    return labels, len(present)


def check_destination(out_dir: Path, force: bool) -> None:
    if out_dir.exists() and any(out_dir.iterdir()) and not force:
        what = "a prepared set" if (out_dir / MANIFEST_NAME).exists() else "a non-empty folder"
        raise DatasetError(f"{out_dir}: already exists ({what}); pass --force to replace it")


def _warn_against_registry(
    dataset: TrainingRecords, images: int, identities: int, expected: TrainingSet | None
) -> None:
    if expected is None:
        return
    if expected.format not in (dataset.format_name, "demo"):
        log.warning(
            "%s: registry says format %s, found %s",
            dataset.path,
            expected.format,
            dataset.format_name,
        )
    counts = expected.expected_counts
    if (images, identities) != (counts.images, counts.identities):
        log.warning(
            "%s: %d images / %d identities, the registry entry %s expects %d / %d%s "
            "(`bench check` will report this)",
            dataset.path,
            images,
            identities,
            expected.name,
            counts.images,
            counts.identities,
            "" if counts.verified else " (unverified counts)",
        )


def prepare(
    name: str,
    source: str | os.PathLike,
    out_dir: str | os.PathLike,
    workers: int = 1,
    expected: TrainingSet | None = None,
    *,
    force: bool = False,
    mask: str | os.PathLike | None = None,
) -> Manifest:
    """Convert the training set at `source` into the canonical RecordIO + manifest in `out_dir`;
    with `mask` (bench.data.mask), only the records of `source` it selects."""
    source, out_dir = Path(source), Path(out_dir)
    if not source.exists():
        raise DatasetError(f"{source}: training set {name!r} not found")
    # One prepare per target at a time; what a killed one left is cleaned (or restored) first.
    with lock.exclusive(out_dir, "prepare"):
        leftovers.clean_directory_leftovers(out_dir, STAGING_KIND)
        check_destination(out_dir, force)
        return _prepare(name, source, out_dir, workers, expected, mask)


def _prepare(
    name: str,
    source: Path,
    out_dir: Path,
    workers: int,
    expected: TrainingSet | None,
    mask: str | os.PathLike | None = None,
) -> Manifest:
    """The conversion itself, under the target's lock."""
    dataset = open_dataset(source)
    selected = None if mask is None else load_mask(mask, len(dataset), str(dataset.path))
    parent_labels = dataset.labels if selected is None else dataset.labels[selected]
    labels, identities = contiguous_labels(parent_labels, str(dataset.path))
    _warn_against_registry(dataset, len(labels), identities, expected)
    log.info("%s: %s, %d images, %d identities -> %s", source, dataset.format_name,
             len(labels), identities, out_dir)  # fmt: skip
    # Written into a staging folder beside out_dir and renamed into place when complete: an
    # interrupted prepare leaves no half-written set, and an old set stays until the new one is in.
    manifest = io.atomic_directory(
        out_dir,
        lambda staging: _write_prepared(
            name, dataset, labels, identities, staging, workers, selected
        ),
        staging_kind=STAGING_KIND,
    )
    return manifest


def _write_prepared(
    name: str,
    dataset: TrainingRecords,
    labels: np.ndarray,
    identities: int,
    staging: Path,
    workers: int,
    selected: np.ndarray | None = None,
) -> Manifest:
    """Write the canonical files + manifest.json of `dataset` (of its `selected` records, whose
    labels are `labels`) into `staging`."""
    order = np.argsort(labels, kind="stable")  # group by identity, keep order within one
    records = order if selected is None else selected[order]  # record indices in `dataset`
    tasks = zip(record_chunks(records), record_chunks(labels[order]), strict=True)
    items = (item for chunk in map_chunks(dataset, _read_chunk, tasks, workers) for item in chunk)
    hasher = ContentHasher()  # over the records as written: no second pass over the files
    hashed = (hasher.add(item) for item in items)
    progress = tqdm(hashed, total=len(order), desc=f"prepare {name}", unit="img", disable=None)
    counts = write_canonical(staging, progress, identities)
    manifest = Manifest(
        name=name,
        source_format=dataset.format_name,
        images=int(counts.sum()),
        identities=identities,
        per_identity_counts=counts.tolist(),
        rec_sha256=io.sha256_file(staging / REC_NAME),
        idx_sha256=io.sha256_file(staging / IDX_NAME),
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        content_sha256=hasher.hexdigest(),
    )
    write_manifest(staging, manifest)
    return manifest
