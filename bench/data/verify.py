"""Is a prepared set still what `prepare` wrote? Checked at the start of training.

The cheap check (always) reads only the small files: the manifest is self-consistent, the `.idx`
hashes to the manifest's idx_sha256, the `.rec` is long enough for the last record the `.idx`
points at, and the set opens with the manifest's image and identity counts. The full check
(`bench train --verify-data`) also hashes the whole `.rec` against rec_sha256, which catches a
changed byte inside a record (reading the whole file once: minutes on a large set)."""

from __future__ import annotations

import logging
from pathlib import Path

from bench.core import io
from bench.core.errors import DatasetError
from bench.data.loader import check_training_image
from bench.data.manifest import MANIFEST_NAME, Manifest, read_manifest
from bench.formats import decode_image, open_dataset
from bench.formats.insightface import IDX_NAME, REC_NAME

log = logging.getLogger(__name__)
RECORD_HEADER_BYTES = 8  # magic + length of a RecordIO record


def verify_prepared(prepared: str | Path, full: bool = False) -> Manifest | None:
    """DatasetError naming the file and what differs, unless `prepared` matches its manifest.

    A canonical set with no manifest at all (written by write_canonical, not by prepare) has
    nothing to be checked against: a warning says so and None is returned."""
    prepared = Path(prepared)
    if not (prepared / MANIFEST_NAME).exists():
        log.warning("%s: no %s (not written by `bench prepare`): its records cannot be verified",
                    prepared, MANIFEST_NAME)  # fmt: skip
        return None
    manifest = read_manifest(prepared)
    redo = f"re-run `bench prepare --force` for {prepared.name} (or restore the original files)"
    _check_manifest(manifest, prepared / MANIFEST_NAME, redo)
    idx, rec = prepared / IDX_NAME, prepared / REC_NAME
    if io.sha256_file(idx) != manifest.idx_sha256:
        raise DatasetError(f"{idx}: differs from the one prepare wrote (idx_sha256); {redo}")
    last = _last_offset(idx)
    if rec.stat().st_size < last + RECORD_HEADER_BYTES:
        raise DatasetError(
            f"{rec}: {rec.stat().st_size} bytes, shorter than the records its .idx lists "
            f"(last at byte {last}): truncated; {redo}"
        )
    records = open_dataset(prepared)
    if (len(records), records.num_classes) != (manifest.images, manifest.identities):
        raise DatasetError(
            f"{prepared}: holds {len(records)} images / {records.num_classes} identities, its "
            f"manifest says {manifest.images} / {manifest.identities}; {redo}"
        )
    # One decode: a set of other-sized crops fails here, not in the first batch's torch.stack.
    buf, _ = records.encoded(0)
    check_training_image(decode_image(buf, source=records.describe(0)), records.describe(0))
    if full:
        log.info("%s: hashing every record (--verify-data)", rec)
        if io.sha256_file(rec) != manifest.rec_sha256:
            raise DatasetError(f"{rec}: differs from the one prepare wrote (rec_sha256); {redo}")
    return manifest


def _check_manifest(manifest: Manifest, path: Path, redo: str) -> None:
    counts = manifest.per_identity_counts
    if not isinstance(counts, list) or not all(isinstance(c, int) and c > 0 for c in counts):
        raise DatasetError(f"{path}: per_identity_counts must be a list of positive counts; {redo}")
    if (len(counts), sum(counts)) != (manifest.identities, manifest.images):
        raise DatasetError(
            f"{path}: per_identity_counts ({len(counts)} identities, {sum(counts)} images) do "
            f"not match identities/images ({manifest.identities}/{manifest.images}); {redo}"
        )


def _last_offset(idx: Path) -> int:
    """The largest byte offset the `.idx` lists (lines `key<TAB>offset`)."""
    last = 0
    with open(idx, encoding="ascii", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.split("\t")
            if len(fields) != 2 or not fields[1].strip().isdigit():
                raise DatasetError(f"{idx}: line {number} is not `key<TAB>offset`")
            last = max(last, int(fields[1]))
    return last
