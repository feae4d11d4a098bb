"""A training set held in memory: decoded images and labels, for audits of generated or modified
sets (`bench diagnose` on planted leaks, tests) without writing them to disk. Not a file format:
format detection never returns it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bench.errors import DatasetError


class MemoryRecords:
    """A training set held in memory (decoded images + labels), for audits of generated or
    modified sets without writing them to disk: `len`, `[i] -> (image, label)`, `labels`."""

    def __init__(self, images: Sequence[np.ndarray], labels: Sequence[int]) -> None:
        if len(images) != len(labels):
            raise DatasetError(f"{len(images)} images but {len(labels)} labels")
        self.images, self.labels = list(images), np.asarray(labels, np.int64)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        return self.images[index], int(self.labels[index])
