"""The common face of every training-set format: a sequence of (RGB image, int label) records.

Subclasses implement `__len__`, `encoded(i)` and `_load_labels()`. File handles (mmaps, LMDB
environments) are opened lazily per process and dropped on pickling, so one object can be handed
to DataLoader / multiprocessing workers (fork or spawn) and re-opens its files there.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar, Protocol, runtime_checkable

import numpy as np

from bench.core.errors import FormatError
from bench.core.registry import Registry
from bench.formats.image import decode_image

# name -> TrainingRecords subclass; `bench.formats.detect` asks each, in `priority` order.
FORMATS: Registry[type[TrainingRecords]] = Registry("training-set format")


@runtime_checkable
class Records(Protocol):
    """What every consumer of a training set relies on (readers on disk and MemoryRecords alike):
    `len`, `[i] -> (uint8 HxWx3 RGB, label)`, all `labels` without decoding, `num_classes`, and a
    name of a record for error messages."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]: ...

    @property
    def labels(self) -> np.ndarray: ...

    @property
    def num_classes(self) -> int: ...

    def describe(self, index: int) -> str: ...


class TrainingRecords(ABC):
    """A training set on disk: `len`, `ds[i] -> (uint8 HxWx3 RGB, label)`, `encoded`, `labels`."""

    format_name: ClassVar[str] = ""
    priority: ClassVar[int] = 100  # lower = asked first by format detection
    _handles: ClassVar[tuple[str, ...]] = ()  # attributes that must not cross processes

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._labels: np.ndarray | None = None

    @classmethod
    @abstractmethod
    def detect(cls, path: Path) -> Path | None:
        """The path to open if `path` holds this format, else None (cheap: looks at names only)."""

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def _encoded(self, index: int) -> tuple[bytes, int]:
        """Stored image bytes and label of record `index` (already bounds-checked)."""

    @abstractmethod
    def _load_labels(self) -> np.ndarray:
        """All labels, int64, in record order, without decoding images."""

    def encoded(self, index: int) -> tuple[bytes, int]:
        """(stored encoded bytes, label) of record `index`, no decode."""
        return self._encoded(self._check_index(index))

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        buf, label = self.encoded(index)
        return decode_image(buf, source=self.describe(index)), label

    @property
    def labels(self) -> np.ndarray:
        """int64 labels of all records in order (computed once, without decoding images)."""
        if self._labels is None:
            labels = np.asarray(self._load_labels(), dtype=np.int64)
            if len(labels) and labels.min() < 0:
                bad = int(np.flatnonzero(labels < 0)[0])
                raise FormatError(f"{self.describe(bad)}: negative label {int(labels[bad])}")
            self._labels = labels
        return self._labels

    @property
    def num_classes(self) -> int:
        """max(label) + 1 (0 for an empty set)."""
        labels = self.labels
        return int(labels.max()) + 1 if len(labels) else 0

    def describe(self, index: int) -> str:
        """A human-readable name of record `index` for error messages."""
        return f"{self.path} record {index}"

    def _check_index(self, index: int) -> int:
        size = len(self)
        if not -size <= index < size:
            raise IndexError(f"{self.path}: record {index} out of range (the set has {size})")
        return index % size

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        for name in self._handles:
            state[name] = None
        return state

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, records={len(self)})"
