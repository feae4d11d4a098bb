"""insightface training sets in RecordIO (MS1MV2 `faces_emore`, CASIA, our prepared sets).

Convention: record 0 is a header with array label `(first_identity_record, end)`; images are keys
`1 .. first_identity_record-1` with scalar label = identity; identity record `first + i` has array
label `[start, end)` of identity i's image keys; header and identity records have empty bodies.
Record 0 may sit anywhere in the file (MXNet-made sets write it last). If record 0 has flag 0, or
holds image bytes (im2rec --pack-label gives every image an array label), or there is no key 0,
the file is an im2rec-style "flat" set: every `.idx` key is an image, in `.idx` order, and an
array label's identity is `label[0]`.

`write_canonical` writes this layout exactly as insightface's MXNet tools do: images first, then
identity records, then header record 0 last (id 0, id2 1), plus `property` = "K,112,112\\n". Given
the same images it reproduces an MXNet-written file byte for byte (tested on the fixtures).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from bench.core.errors import FormatError
from bench.formats.base import FORMATS, TrainingRecords
from bench.formats.recordio import (
    LENGTH_MASK,
    MAGIC,
    IRHeader,
    RecordIOReader,
    RecordIOWriter,
    pack,
    unpack,
)

log = logging.getLogger(__name__)

REC_NAME, IDX_NAME, PROPERTY_NAME = "train.rec", "train.idx", "property"
_LABEL_CHUNK = 1 << 20  # records per vectorised header read (bounds the temporary arrays)


@FORMATS.register("insightface_recordio")
class RecordIODataset(TrainingRecords):
    """An insightface/MXNet RecordIO training set (with header record, or flat im2rec style)."""

    format_name = "insightface_recordio"
    priority = 20
    _handles = ()

    def __init__(self, path: str | os.PathLike, idx_path: str | os.PathLike | None = None):
        rec_path = Path(path)
        if rec_path.is_dir():
            rec_path = rec_path / REC_NAME
        super().__init__(rec_path)
        self.reader = RecordIOReader(rec_path, idx_path)
        self.has_header, self.image_keys, self.header_label = self._layout()

    @classmethod
    def detect(cls, path: Path) -> Path | None:
        if path.is_file() and path.suffix == ".rec" and path.with_suffix(".idx").is_file():
            return path
        if path.is_dir():
            if (path / REC_NAME).is_file() and (path / IDX_NAME).is_file():
                return path / REC_NAME
            pairs = [rec for rec in sorted(path.glob("*.rec")) if rec.with_suffix(".idx").is_file()]
            if len(pairs) == 1:
                return pairs[0]
        return None

    def _layout(self) -> tuple[bool, np.ndarray, tuple[int, int] | None]:
        """(has_header, image keys in reading order, header label) from record 0."""
        keys = self.reader.keys
        if 0 not in self.reader:
            log.info("%s: no record 0, reading it as a flat (im2rec) set", self.path)
            return False, keys, None
        header, body = unpack(self.reader.read(0), f"{self.path} key 0")
        # A header (like every identity record) has an empty body. An im2rec --pack-label set
        # gives every image an array label, so flag > 0 alone does not make record 0 a header:
        # only a record without image bytes is one.
        if header.flag == 0 or body:
            if header.flag > 0:
                log.info(
                    "%s: record 0 holds an image, reading it as a flat (im2rec) set", self.path
                )
            return False, keys, None
        if header.flag < 2:
            raise FormatError(
                f"{self.path}: header record 0 has {header.flag} label(s), expected 2 "
                "(first_identity_record, end)"
            )
        first, end = (int(value) for value in header.label[:2])
        if first < 1 or end < first:
            raise FormatError(f"{self.path}: header record 0 has an invalid label [{first}, {end}]")
        image_keys = np.arange(1, first, dtype=np.int64)
        missing = image_keys[~np.isin(image_keys, keys)]
        if len(missing):
            raise FormatError(
                f"{self.path}: header record 0 says images are keys 1..{first - 1}, but the index "
                f"lacks key {int(missing[0])}; the .idx does not match this .rec or the set is "
                "incomplete"
            )
        return True, image_keys, (first, end)

    def __len__(self) -> int:
        return len(self.image_keys)

    def describe(self, index: int) -> str:
        if 0 <= index < len(self.image_keys):
            return f"{self.path} key {int(self.image_keys[index])}"
        return super().describe(index)

    def _encoded(self, index: int) -> tuple[bytes, int]:
        key = int(self.image_keys[index])
        header, body = unpack(self.reader.read(key), f"{self.path} key {key}")
        return body, _label_of(header, f"{self.path} key {key}")

    def _load_labels(self) -> np.ndarray:
        labels = np.empty(len(self.image_keys), dtype=np.int64)
        for start in range(0, len(labels), _LABEL_CHUNK):
            keys = self.image_keys[start : start + _LABEL_CHUNK]
            labels[start : start + len(keys)] = self._labels_of(keys)
        return labels

    def _labels_of(self, keys: np.ndarray) -> np.ndarray:
        """Labels of `keys` from their IRHeaders: one vectorised gather, slow path for odd ones."""
        offsets = self.reader.offsets(keys)
        buf = self.reader.buffer()
        data = np.frombuffer(buf, dtype=np.uint8) if len(buf) else np.zeros(0, np.uint8)
        # frame header (8) + IRHeader (24) + first float of an array label (4)
        in_file = np.flatnonzero(offsets + 36 <= len(data))
        raw = data[offsets[in_file, None] + np.arange(36)]
        del data  # release the export of the mmap before anything may close it
        magic, lrec, flag = raw[:, :12].copy().view("<u4").T
        scalar = raw[:, 12:16].copy().view("<f4")[:, 0]
        first = raw[:, 32:36].copy().view("<f4")[:, 0]
        length = lrec & LENGTH_MASK
        # whole (unsplit) frames long enough to hold the header and, if flag > 0, label[0]
        plain = (
            (magic == MAGIC) & (lrec >> 29 == 0) & (length >= 24) & ((flag == 0) | (length >= 28))
        )
        values = np.full(len(keys), np.nan, dtype=np.float64)
        values[in_file[plain]] = np.where(flag == 0, scalar, first)[plain]
        slow = np.ones(len(keys), dtype=bool)
        slow[in_file[plain]] = False
        for position in np.flatnonzero(slow):
            key = int(keys[position])
            # the full reader raises the precise error (truncation, bad magic ...) if any
            header, _ = unpack(self.reader.read(key), f"{self.path} key {key}")
            values[position] = _label_of(header, f"{self.path} key {key}")
        integral = np.isfinite(values) & (values == np.round(values)) & (values >= 0)
        if not integral.all():
            bad = int(np.flatnonzero(~integral)[0])
            raise FormatError(
                f"{self.path} key {int(keys[bad])}: label {values[bad]} is not a non-negative "
                "integer identity"
            )
        return values.astype(np.int64)

    def identity_ranges(self) -> np.ndarray | None:
        """(K, 2) [start, end) image-key ranges from the identity records; None for flat sets."""
        if self.header_label is None:
            return None
        first, end = self.header_label
        ranges = np.empty((end - first, 2), dtype=np.int64)
        for identity, key in enumerate(range(first, end)):
            header, _ = unpack(self.reader.read(key), f"{self.path} key {key}")
            if header.flag < 2:
                raise FormatError(
                    f"{self.path} key {key}: identity record without a [start, end) label"
                )
            ranges[identity] = [int(header.label[0]), int(header.label[1])]
        return ranges


def _label_of(header: IRHeader, where: str) -> int:
    """The identity of an image record: the scalar label, or label[0] for array labels."""
    value = float(header.label) if header.flag == 0 else float(header.label[0])
    if not np.isfinite(value) or value != round(value) or value < 0:
        raise FormatError(f"{where}: label {value} is not a non-negative integer identity")
    return int(value)


def write_canonical(
    out_dir: str | os.PathLike,
    items: Iterable[tuple[bytes, int]],
    num_classes: int,
    image_size: tuple[int, int] = (112, 112),
) -> np.ndarray:
    """Write train.rec/train.idx/property in the insightface layout; returns per-identity counts.

    `items` are (encoded image, label) with labels in [0, num_classes) and non-decreasing (each
    identity's images contiguous, as the identity records require). Bytes are stored unchanged.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    counts = np.zeros(num_classes, dtype=np.int64)
    key, previous = 0, -1
    with RecordIOWriter(out / REC_NAME, out / IDX_NAME) as writer:
        for key, (buf, label) in enumerate(items, start=1):
            label = int(label)
            if not 0 <= label < num_classes or label < previous:
                raise FormatError(
                    f"{out / REC_NAME}: image {key} has label {label} after {previous}; labels must "
                    f"be in [0, {num_classes}) and grouped by identity in increasing order"
                )
            writer.write(key, pack(IRHeader(0, float(label), key, 0), buf))
            counts[label] += 1
            previous = label
        first = key + 1
        ends = 1 + np.cumsum(counts)
        for identity in range(num_classes):
            start, end = int(ends[identity] - counts[identity]), int(ends[identity])
            record = first + identity
            writer.write(record, pack(IRHeader(2, [float(start), float(end)], record, 0), b""))
        end = first + num_classes
        writer.write(0, pack(IRHeader(2, [float(first), float(end)], 0, 1), b""))
    height, width = image_size
    (out / PROPERTY_NAME).write_text(f"{num_classes},{height},{width}\n", encoding="ascii")
    return counts
