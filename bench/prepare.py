"""Prepared training sets: any supported format -> the canonical insightface RecordIO + manifest.

`prepare` copies every image's stored bytes unchanged (no re-encode) into
`train.rec`/`train.idx`/`property`, grouped by identity (a stable sort, so images keep their
order within an identity), with labels renumbered 0..K-1 if the source's are not. Records are read
and validated in worker processes, written sequentially, into a staging folder next to `out_dir`
that is renamed into place only when complete: an interrupted prepare leaves no half-written set.
`check` (bench.prepare_check) decodes everything again; `export_images` writes image folders.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import shutil
import sys
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from bench.errors import DatasetError, FormatError
from bench.formats import TrainingRecords, image_extension, open_dataset, write_canonical
from bench.formats.insightface import IDX_NAME, REC_NAME

if TYPE_CHECKING:
    from bench.catalog import TrainingSet
    from bench.prepare_check import CheckReport

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
CHUNK_SIZE = 1024  # records per worker task: large enough to amortise IPC, small for memory


@dataclass(frozen=True)
class Manifest:
    """What `prepare` wrote: counts and checksums (manifest.json, schema_version 1)."""

    name: str
    source_format: str
    images: int
    identities: int
    per_identity_counts: list[int]
    rec_sha256: str
    idx_sha256: str
    created: str
    schema_version: int = SCHEMA_VERSION
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("extra")
        return {"schema_version": data.pop("schema_version"), **data}


def read_manifest(prepared: str | os.PathLike) -> Manifest:
    """Load and validate `<prepared>/manifest.json`."""
    path = Path(prepared) / MANIFEST_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise DatasetError(f"{path}: missing; (re)run `bench prepare` for this set") from error
    except (OSError, json.JSONDecodeError) as error:
        raise DatasetError(
            f"{path}: unreadable ({error}); re-run `bench prepare --force`"
        ) from error
    if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
        raise DatasetError(
            f"{path}: schema_version {data.get('schema_version') if isinstance(data, dict) else None}"
            f" is not {SCHEMA_VERSION}; re-run `bench prepare --force`"
        )
    known = set(Manifest.__dataclass_fields__) - {"extra"}
    missing = sorted(known - set(data))
    if missing:
        raise DatasetError(
            f"{path}: key(s) {', '.join(missing)} missing; re-run `bench prepare --force`"
        )
    extra = {key: value for key, value in data.items() if key not in known}
    return Manifest(**{key: data[key] for key in known}, extra=extra)


def sha256_file(path: Path, block: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
    return digest.hexdigest()


# --- parallel map over chunks of a dataset (workers get the dataset once, at start-up) -------

_WORKER_DATASET: TrainingRecords | None = None


def _init_worker(dataset: TrainingRecords) -> None:
    global _WORKER_DATASET
    _WORKER_DATASET = dataset


def _call_in_worker(function: Callable, *args: Any) -> Any:
    return function(_WORKER_DATASET, *args)


def map_chunks(
    dataset: TrainingRecords, function: Callable, tasks: Iterable[tuple], workers: int
) -> Iterator[Any]:
    """Yield `function(dataset, *task)` for each task, in order, using `workers` processes.

    At most 2 x workers tasks are in flight, so results never pile up in memory. Workers are
    spawned (not forked): file handles and LMDB environments never cross a fork.
    """
    if workers <= 1:
        for task in tasks:
            yield function(dataset, *task)
        return
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_worker, initargs=(dataset,)
    )
    pending: deque = deque()
    try:
        for task in tasks:
            pending.append(pool.submit(_call_in_worker, function, *task))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def chunked(indices: np.ndarray, size: int | None = None) -> Iterator[np.ndarray]:
    """Consecutive slices of `indices` of at most `size` (default CHUNK_SIZE) elements."""
    size = size or CHUNK_SIZE
    for start in range(0, len(indices), size):
        yield indices[start : start + size]


# --- prepare --------------------------------------------------------------------------------


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


def _check_destination(out_dir: Path, force: bool) -> None:
    if out_dir.exists() and any(out_dir.iterdir()) and not force:
        what = "a prepared set" if (out_dir / MANIFEST_NAME).exists() else "a non-empty folder"
        raise DatasetError(f"{out_dir}: already exists ({what}); pass --force to replace it")


def _warn_against_registry(
    dataset: TrainingRecords, identities: int, expected: TrainingSet | None
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
    if (len(dataset), identities) != (expected.images, expected.identities):
        log.warning(
            "%s: %d images / %d identities, the registry entry %s expects %d / %d "
            "(`bench check` will report this)",
            dataset.path,
            len(dataset),
            identities,
            expected.name,
            expected.images,
            expected.identities,
        )


def prepare(
    name: str,
    source: str | os.PathLike,
    out_dir: str | os.PathLike,
    workers: int = 1,
    expected: TrainingSet | None = None,
    *,
    force: bool = False,
) -> Manifest:
    """Convert the training set at `source` into the canonical RecordIO + manifest in `out_dir`."""
    source, out_dir = Path(source), Path(out_dir)
    if not source.exists():
        raise DatasetError(f"{source}: training set {name!r} not found")
    _check_destination(out_dir, force)
    dataset = open_dataset(source)
    labels, identities = contiguous_labels(dataset.labels, str(dataset.path))
    _warn_against_registry(dataset, identities, expected)
    log.info("%s: %s, %d images, %d identities -> %s", source, dataset.format_name,
             len(labels), identities, out_dir)  # fmt: skip
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.preparing-", dir=out_dir.parent))
    finished = False
    try:
        manifest = _write_prepared(name, dataset, labels, identities, staging, workers)
        _move_into_place(staging, out_dir)
        finished = True
    finally:
        if not finished:  # interrupted or failed: leave no half-written set behind
            remove_tree(staging)
    return manifest


def _write_prepared(
    name: str,
    dataset: TrainingRecords,
    labels: np.ndarray,
    identities: int,
    staging: Path,
    workers: int,
) -> Manifest:
    """Write the canonical files + manifest.json of `dataset` into `staging`."""
    order = np.argsort(labels, kind="stable")  # group by identity, keep order within one
    tasks = ((chunk, labels[chunk]) for chunk in chunked(order))
    records = (item for chunk in map_chunks(dataset, _read_chunk, tasks, workers) for item in chunk)
    progress = tqdm(records, total=len(order), desc=f"prepare {name}", unit="img", disable=None)
    counts = write_canonical(staging, progress, identities)
    manifest = Manifest(
        name=name,
        source_format=dataset.format_name,
        images=int(counts.sum()),
        identities=identities,
        per_identity_counts=counts.tolist(),
        rec_sha256=sha256_file(staging / REC_NAME),
        idx_sha256=sha256_file(staging / IDX_NAME),
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    text = json.dumps(manifest.to_dict(), indent=1) + "\n"
    (staging / MANIFEST_NAME).write_text(text, encoding="utf-8")
    return manifest


def _move_into_place(staging: Path, out_dir: Path) -> None:
    """Rename the finished staging folder to `out_dir`, replacing an old one only at the end."""
    if out_dir.exists():
        retired = out_dir.with_name(f".{out_dir.name}.replaced-{os.getpid()}")
        os.rename(out_dir, retired)
        os.rename(staging, out_dir)
        remove_tree(retired)
    else:
        os.rename(staging, out_dir)


def remove_tree(path: Path) -> None:
    """Delete a folder tree, logging (not raising) what could not be removed."""

    def report(_function: Callable, failed: str, error: Any) -> None:
        log.warning("could not remove %s while cleaning up %s: %s", failed, path, error)

    if not path.exists():
        return
    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=report)
    else:
        shutil.rmtree(path, onerror=report)


def check(
    prepared: str | os.PathLike, expected: TrainingSet | None = None, workers: int = 1
) -> CheckReport:
    """Decode every image of a prepared set and compare it with its manifest and the registry."""
    from bench.prepare_check import run_check

    return run_check(Path(prepared), expected, workers)


# --- export ---------------------------------------------------------------------------------


def export_images(
    source: str | os.PathLike, out_dir: str | os.PathLike, force: bool = False
) -> int:
    """Write any supported set as `<label>/<n>.<ext>` image folders (stored bytes, no re-encode).

    Labels are renumbered 0..K-1 in increasing order first (as `prepare` does; a warning says so
    when the source has gaps), because an image-folder reader numbers the folders it finds 0..K-1
    whatever their names: naming the folders by the dense labels makes the names and the labels
    read back agree. Names are zero-padded, so name order is label order and record order.
    With `force`, an existing `out_dir` is replaced as a whole, only once the export is complete.
    """
    dataset = open_dataset(source)
    out = Path(out_dir)
    _check_destination(out, force)
    labels, identities = contiguous_labels(dataset.labels, str(dataset.path))
    out.parent.mkdir(parents=True, exist_ok=True)
    # Written beside `out` and renamed into place (as in prepare): no stale images of an earlier
    # export survive --force, and an interrupted export leaves no half-written folder.
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.exporting-", dir=out.parent))
    finished = False
    try:
        _write_export(dataset, labels, identities, staging)
        _move_into_place(staging, out)
        finished = True
    finally:
        if not finished:
            remove_tree(staging)
    return len(dataset)


def _write_export(
    dataset: TrainingRecords, labels: np.ndarray, identities: int, staging: Path
) -> None:
    """Write each record's stored bytes to `staging/<label>/<n>.<ext>`."""
    label_width = len(str(max(identities - 1, 0)))
    counts = np.bincount(labels, minlength=identities)
    image_width = len(str(int(counts.max()) - 1)) if len(counts) else 1
    seen = np.zeros(identities, dtype=np.int64)
    progress = tqdm(range(len(dataset)), desc="export", unit="img", disable=None)
    for index, label in zip(progress, labels.tolist(), strict=True):
        buf, _ = dataset.encoded(index)
        # Every extension image_extension names (jpg, png, bmp, gif, webp) is one the image-folder
        # reader accepts, so the export reads back with the bytes unchanged.
        extension = image_extension(buf)
        if extension is None:
            raise FormatError(f"{dataset.describe(index)}: not an encoded image; cannot export it")
        folder = staging / f"{label:0{label_width}d}"
        folder.mkdir(exist_ok=True)
        (folder / f"{seen[label]:0{image_width}d}.{extension}").write_bytes(buf)
        seen[label] += 1
