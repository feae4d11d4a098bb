"""Format detection: which registered training-set format a path holds, and opening it."""

from __future__ import annotations

import os
from pathlib import Path

from bench.core.errors import FormatError
from bench.formats.base import FORMATS, TrainingRecords


def _formats_in_order() -> list[type[TrainingRecords]]:
    # importing the package registers every format (the modules hold the decorators)
    import bench.formats  # noqa: F401

    return sorted((FORMATS.get(name) for name in FORMATS.names()), key=lambda cls: cls.priority)


def detect_format(path: str | os.PathLike) -> tuple[str, Path]:
    """(format name, path to open) for a training set at `path`; FormatError if none matches."""
    path = Path(path)
    if not path.exists():
        raise FormatError(f"{path}: not found")
    for cls in _formats_in_order():
        found = cls.detect(path)
        if found is not None:
            return cls.format_name, found
    only = _only_subfolder(path)
    if only is not None:  # an archive unpacked into its own folder: raw/<name>/<archive>/...
        return detect_format(only)
    raise FormatError(
        f"{path}: no known training-set format found. Expected one of: an insightface RecordIO "
        "(train.rec + train.idx), a DCFace record folder (file.rec + file.idx + list.txt), a "
        "Vec2Face LMDB (*.lmdb or a folder with data.mdb), or image folders "
        "(<identity>/<image>.jpg|png)"
    )


def _only_subfolder(path: Path) -> Path | None:
    """The single visible sub-folder of `path` when it holds nothing else, else None."""
    if not path.is_dir():
        return None
    entries = [entry for entry in path.iterdir() if not entry.name.startswith(".")]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else None


def open_dataset(path: str | os.PathLike, format_name: str | None = None) -> TrainingRecords:
    """Open a training set in any supported format (detected unless `format_name` is given)."""
    if format_name is None:
        format_name, found = detect_format(path)
        return FORMATS.get(format_name)(found)
    _formats_in_order()
    return FORMATS.get(format_name)(path)
