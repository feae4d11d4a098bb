"""A training set held in memory: decoded images and labels, for audits of generated or modified
sets (`bench diagnose` on planted leaks, tests) without writing them to disk. Not a file format:
format detection never returns it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bench.core.errors import DatasetError


class MemoryRecords:
    """A training set held in memory (decoded images + labels); implements bench.formats.Records
    (the Protocol the readers implement) without the encoded-bytes access of a file format."""

    def __init__(self, images: Sequence[np.ndarray], labels: Sequence[int]) -> None:
        if len(images) != len(labels):
            raise DatasetError(f"{len(images)} images but {len(labels)} labels")
        self.images = list(images)
        self._labels = np.asarray(labels, np.int64)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        return self.images[index], int(self._labels[index])

    @property
    def labels(self) -> np.ndarray:
        """int64 labels of all records in order."""
        return self._labels

    @property
    def num_classes(self) -> int:
        """max(label) + 1 (0 for an empty set)."""
        return int(self._labels.max()) + 1 if len(self._labels) else 0

    def describe(self, index: int) -> str:
        """A name of record `index` for error messages."""
        return f"in-memory record {index}"
