"""`bench export-images`: any supported set -> `<label>/<n>.<ext>` image folders."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from tqdm import tqdm

from bench.core import io
from bench.core.errors import FormatError
from bench.data.prepare import check_destination, contiguous_labels
from bench.formats import TrainingRecords, image_extension, open_dataset


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
    check_destination(out, force)
    labels, identities = contiguous_labels(dataset.labels, str(dataset.path))
    # Written beside `out` and renamed into place (as in prepare): no stale images of an earlier
    # export survive --force, and an interrupted export leaves no half-written folder.
    io.atomic_directory(
        out, lambda staging: _write_export(dataset, labels, identities, staging),
        staging_kind="exporting",
    )  # fmt: skip
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
