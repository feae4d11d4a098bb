"""`bench check`: decode every image of a prepared set and compare it with manifest and registry.

Problems (make `.ok` false): counts that differ from the registry's verified counts or the
manifest, checksum or layout mismatches, damaged records (each named by file, key and offset; the
check goes on), undecodable images, images that are not 112x112. Findings that are reported
but do not fail the check: counts that differ from unverified registry counts (nobody has counted
a real copy yet), duplicate images (same decoded pixels) and grayscale images (R=G=B), which real
sets contain in small numbers.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from bench.core import io
from bench.core.errors import BenchError, DatasetError, FormatError
from bench.data import parallel
from bench.data.manifest import MANIFEST_NAME, read_manifest
from bench.data.parallel import map_chunks, record_chunks
from bench.formats import RecordIODataset, TrainingRecords
from bench.formats.insightface import IDX_NAME, PROPERTY_NAME, REC_NAME

if TYPE_CHECKING:
    from bench.catalog import TrainingSet

log = logging.getLogger(__name__)

IMAGE_SHAPE = (112, 112, 3)
SHOW = 5  # examples listed per kind of finding


@dataclass
class CheckReport:
    """What `check` found; `.ok` is False when any problem was found."""

    path: Path
    images: int = 0
    identities: int = 0
    expected_images: int | None = None
    expected_identities: int | None = None
    per_identity_counts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    corrupt: list[tuple[int, str]] = field(default_factory=list)
    duplicates: list[list[int]] = field(default_factory=list)
    grayscale: list[int] = field(default_factory=list)
    size_anomalies: list[tuple[int, tuple[int, ...]]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def histogram(self, bins: int = 10) -> list[tuple[int, int, int]]:
        """Images-per-identity histogram: (low, high inclusive, number of identities) rows."""
        counts = self.per_identity_counts
        if not len(counts):
            return []
        low, high = int(counts.min()), int(counts.max())
        if high - low < bins:
            return [(value, value, int((counts == value).sum())) for value in range(low, high + 1)]
        edges = np.unique(np.linspace(low, high + 1, bins + 1).astype(np.int64))
        number, _ = np.histogram(counts, bins=edges)
        return [
            (int(a), int(b) - 1, int(n))
            for a, b, n in zip(edges[:-1], edges[1:], number, strict=True)
        ]

    def to_text(self) -> str:
        """The human-readable report `bench check` prints."""
        lines = [f"check {self.path}: {'OK' if self.ok else 'PROBLEMS FOUND'}"]
        lines.append(f"  images      {self.images:>10,}{_versus(self.expected_images)}")
        lines.append(f"  identities  {self.identities:>10,}{_versus(self.expected_identities)}")
        lines.append(
            f"  corrupt {len(self.corrupt)}, not 112x112 {len(self.size_anomalies)}, "
            f"grayscale {len(self.grayscale)}, duplicate groups {len(self.duplicates)}"
        )
        lines += [f"  problem: {text}" for text in self.problems]
        lines += [f"  note: {text}" for text in self.warnings]
        rows = self.histogram()
        if rows:
            lines.append("  images per identity:")
            widest = max(number for *_, number in rows) or 1
            for low, high, number in rows:
                span = f"{low}" if low == high else f"{low}-{high}"
                lines.append(f"    {span:>11} {number:>8,} {'#' * round(40 * number / widest)}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable summary."""
        return {
            "path": str(self.path),
            "ok": self.ok,
            "images": self.images,
            "identities": self.identities,
            "expected_images": self.expected_images,
            "expected_identities": self.expected_identities,
            "problems": self.problems,
            "warnings": self.warnings,
            "corrupt": self.corrupt,
            "duplicates": self.duplicates,
            "grayscale": self.grayscale,
            "size_anomalies": [[index, list(shape)] for index, shape in self.size_anomalies],
            "histogram": self.histogram(),
        }


def _versus(expected: int | None) -> str:
    return "" if expected is None else f"   (registry: {expected:,})"


def _inspect_chunk(dataset: TrainingRecords, indices: np.ndarray) -> list[tuple]:
    """Per image: (index, pixel digest, shape, grayscale, error message or None)."""
    out = []
    for index in indices.tolist():
        try:
            image, _ = dataset[index]
        except BenchError as error:  # recorded as a finding: check reports all, not the first
            out.append((index, None, None, False, str(error)))
            continue
        digest = hashlib.blake2b(image.tobytes(), digest_size=16).digest()
        gray = bool(
            (image[..., 0] == image[..., 1]).all() and (image[..., 1] == image[..., 2]).all()
        )
        out.append((index, digest, image.shape, gray, None))
    return out


def _compare_counts(report: CheckReport, expected: TrainingSet | None) -> None:
    """Counts against the registry's release counts: a mismatch with verified counts is a
    problem; with unverified ones (nobody counted a real copy yet) a warning that says what to do."""
    if expected is None:
        return
    counts = expected.expected_counts
    report.expected_images, report.expected_identities = counts.images, counts.identities
    found = {"images": report.images, "identities": report.identities}
    for what, wanted in (("images", counts.images), ("identities", counts.identities)):
        if found[what] == wanted:
            continue
        if counts.verified:
            report.problems.append(f"{found[what]:,} {what}, the registry expects {wanted:,}")
        else:
            report.warnings.append(
                f"{found[what]:,} {what}, the registry's unverified count is {wanted:,} "
                f"(training.{expected.name}.release in the registry); if your copy is the "
                f"official download, set training.{expected.name}.release.{what}: {found[what]} "
                "and verified: true there, otherwise re-download it"
            )


def _compare_manifest(report: CheckReport, prepared: Path, counts: np.ndarray | None) -> None:
    """Counts and checksums against manifest.json (`counts` None: per-identity not compared)."""
    try:
        manifest = read_manifest(prepared)
    except DatasetError as error:
        report.problems.append(str(error))
        return
    if (manifest.images, manifest.identities) != (report.images, report.identities):
        report.problems.append(
            f"{MANIFEST_NAME} says {manifest.images} images / {manifest.identities} identities, "
            f"the files hold {report.images} / {report.identities}"
        )
    if counts is not None and list(manifest.per_identity_counts) != counts.tolist():
        report.problems.append(f"{MANIFEST_NAME}: per_identity_counts differ from the labels")
    for name, recorded in ((REC_NAME, manifest.rec_sha256), (IDX_NAME, manifest.idx_sha256)):
        if io.sha256_file(prepared / name) != recorded:
            report.problems.append(
                f"{prepared / name}: sha256 differs from {MANIFEST_NAME}; "
                "the file changed after prepare: re-run `bench prepare --force`"
            )


def _compare_layout(
    report: CheckReport, dataset: RecordIODataset, labels: np.ndarray, counts: np.ndarray
) -> None:
    """Header record, identity records and `property` agree with the image labels."""
    if not dataset.has_header:
        report.problems.append(f"{dataset.path}: no insightface header record 0")
        return
    ends = 1 + np.cumsum(counts)
    derived = np.stack([ends - counts, ends], axis=1)
    try:
        ranges = dataset.identity_ranges()
    except FormatError as error:  # a damaged identity record: report it, check the rest
        report.problems.append(str(error))
    else:
        if ranges is None or ranges.shape != derived.shape or not np.array_equal(ranges, derived):
            report.problems.append(
                f"{dataset.path}: identity records do not match the image labels"
            )
    if len(labels) and np.any(np.diff(labels) < 0):
        report.problems.append(f"{dataset.path}: images are not grouped by identity")
    wanted = f"{len(counts)},{IMAGE_SHAPE[0]},{IMAGE_SHAPE[1]}"
    property_file = dataset.path.parent / PROPERTY_NAME
    found = property_file.read_text(encoding="ascii").strip() if property_file.is_file() else None
    if found != wanted:
        report.problems.append(f"{property_file}: is {found!r}, expected {wanted!r}")


def _read_labels(report: CheckReport, dataset: RecordIODataset) -> np.ndarray:
    """All labels, -1 for records whose label cannot be read (each one in report.problems).

    `dataset.labels` stops at the first damaged record; check promises to report everything, so
    on failure the labels are read again record by record and every failure is recorded.
    """
    try:
        return dataset.labels
    except FormatError:
        log.info("%s: some labels cannot be read; reading them one by one", dataset.path)
    labels = np.full(len(dataset), -1, dtype=np.int64)
    failures = []
    for index in range(len(dataset)):
        try:
            labels[index] = dataset.encoded(index)[1]
        except FormatError as error:  # its message names the file, key and offset
            failures.append(str(error))
    report.problems.append(
        f"{len(failures)} record(s) whose label cannot be read, e.g. " + "; ".join(failures[:SHOW])
    )
    return labels


def _collect_images(report: CheckReport, dataset: RecordIODataset, workers: int) -> None:
    # digests in one array, not a dict: a 5.8M-image set would need gigabytes of Python objects
    digests = np.zeros(len(dataset), dtype=np.dtype((np.void, 16)))
    decoded = np.zeros(len(dataset), dtype=bool)
    tasks = ((chunk,) for chunk in record_chunks(np.arange(len(dataset))))
    results = map_chunks(dataset, _inspect_chunk, tasks, workers)
    chunks = -(-len(dataset) // parallel.CHUNK_SIZE)
    for chunk in tqdm(results, total=chunks, desc="check", unit="chunk", disable=None):
        for index, digest, shape, gray, error in chunk:
            if error is not None:
                report.corrupt.append((index, error))
                continue
            digests[index], decoded[index] = digest, True
            if tuple(shape) != IMAGE_SHAPE:
                report.size_anomalies.append((index, tuple(shape)))
            if gray:
                report.grayscale.append(index)
    report.duplicates = duplicate_groups(digests, np.flatnonzero(decoded))


def duplicate_groups(digests: np.ndarray, indices: np.ndarray) -> list[list[int]]:
    """Groups (ascending record indices, >= 2 each) of `indices` with equal digests."""
    _, inverse, counts = np.unique(digests[indices], return_inverse=True, return_counts=True)
    order = np.argsort(inverse, kind="stable")
    groups = np.split(indices[order], np.cumsum(counts)[:-1])
    return sorted(group.tolist() for group in groups if len(group) > 1)


def _summarise_images(report: CheckReport, labels: np.ndarray) -> None:
    if report.corrupt:
        report.problems.append(
            f"{len(report.corrupt)} undecodable image(s), e.g. "
            + "; ".join(message for _, message in report.corrupt[:SHOW])
        )
    if report.size_anomalies:
        shown = ", ".join(f"#{index} {shape}" for index, shape in report.size_anomalies[:SHOW])
        report.problems.append(f"{len(report.size_anomalies)} image(s) not 112x112x3: {shown}")
    if report.duplicates:
        across = sum(len(set(labels[group].tolist())) > 1 for group in report.duplicates)
        report.warnings.append(
            f"{len(report.duplicates)} group(s) of identical images ({across} spanning more than "
            f"one identity), e.g. records {report.duplicates[0][:SHOW]}"
        )
    if report.grayscale:
        report.warnings.append(
            f"{len(report.grayscale)} grayscale image(s), e.g. records {report.grayscale[:SHOW]}"
        )


def check(
    prepared: str | os.PathLike, expected: TrainingSet | None = None, workers: int = 1
) -> CheckReport:
    """Decode every image of a prepared set and compare it with its manifest and the registry."""
    prepared = Path(prepared)
    if not (prepared / REC_NAME).is_file():
        raise DatasetError(
            f"{prepared}: no prepared set here ({REC_NAME} missing); run "
            f"`bench prepare {expected.name if expected else 'NAME'} --from PATH` first"
        )
    report = CheckReport(path=prepared)
    try:
        dataset = RecordIODataset(prepared)
    except FormatError as error:  # e.g. a damaged header record: nothing more can be read
        report.problems.append(str(error))
        return report
    labels = _read_labels(report, dataset)
    unreadable = int((labels < 0).sum())
    known = labels[labels >= 0]
    counts = np.bincount(known) if len(known) else np.zeros(0, np.int64)
    report.images, report.identities = len(labels), int((counts > 0).sum())
    report.per_identity_counts = counts[counts > 0]
    _compare_counts(report, expected)
    _compare_manifest(report, prepared, None if unreadable else counts)
    if unreadable:
        report.warnings.append(
            f"{unreadable} label(s) unreadable: identities and images per identity count only "
            "the readable ones; identity records and per-identity counts not compared"
        )
    else:
        _compare_layout(report, dataset, labels, counts)
    _collect_images(report, dataset, workers)
    _summarise_images(report, labels)
    return report
