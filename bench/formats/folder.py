"""Image folders: `<root>/<identity>/<image>.<ext>` (UIFace, DigiFace, CemiFace, demo sets).

Identities are the sub-folders sorted by name (plain string order, as torchvision's ImageFolder)
and numbered 0..K-1; images within a folder are in natural order (`2.png` before `10.png`).
Hidden entries (starting with ".") are ignored; any other non-image file is an error, so nothing
is dropped without the user knowing.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np

from bench.core.errors import FormatError
from bench.formats.base import FORMATS, TrainingRecords

log = logging.getLogger(__name__)

# Every container bench.formats.image recognises (and Pillow decodes), so that `export-images`,
# which keeps each record's stored bytes under the extension image_extension() names, reads back
# without re-encoding anything (a BMP or GIF record stays byte-identical).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
_SUFFIX_LIST = "/".join(IMAGE_SUFFIXES)
_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple[tuple[str | int, ...], str]:
    """Sort key that orders digit runs numerically: a2 < a10; ties (01 vs 1) by the plain name."""
    # re.split with one capturing group puts the digit runs at the odd positions. Deciding by
    # position, not str.isdigit(), keeps a '²' (isdigit() but not \d, so int() fails) a text part.
    parts = _DIGITS.split(name)
    numbered = tuple(int(part) if index % 2 else part for index, part in enumerate(parts))
    # '01.jpg' and '1.jpg' have the same numbered parts: without the name as a tie-break their
    # order would be the directory listing's, which differs between filesystems.
    return numbered, name


def _visible(entries: list[os.DirEntry]) -> list[os.DirEntry]:
    return [entry for entry in entries if not entry.name.startswith(".")]


def scan_folder(root: Path) -> tuple[list[str], list[str], np.ndarray]:
    """(identity names, relative image paths, labels) of an image-folder tree."""
    with os.scandir(root) as iterator:
        entries = _visible(list(iterator))
    identities = sorted(entry.name for entry in entries if entry.is_dir())
    stray = sorted(entry.name for entry in entries if not entry.is_dir())
    if stray:
        log.warning(
            "%s: %d file(s) next to the identity folders are not images of any "
            "identity and are not used (e.g. %s)",
            root,
            len(stray),
            stray[0],
        )
    paths: list[str] = []
    labels: list[int] = []
    names: list[str] = []
    for name in identities:
        with os.scandir(root / name) as iterator:
            files = _visible(list(iterator))
        other = [
            entry.name for entry in files if Path(entry.name).suffix.lower() not in IMAGE_SUFFIXES
        ]
        if other:
            raise FormatError(
                f"{root / name}: {other[0]!r} is not a {_SUFFIX_LIST} image; an image-folder "
                "set holds only <identity>/<image> files: move other files out"
            )
        images = sorted((entry.name for entry in files), key=natural_key)
        if not images:
            log.warning("%s: identity folder without images; it gets no label", root / name)
            continue
        label = len(names)
        names.append(name)
        paths.extend(f"{name}/{image}" for image in images)
        labels.extend([label] * len(images))
    return names, paths, np.asarray(labels, dtype=np.int64)


@FORMATS.register("image_folder")
class ImageFolderRecords(TrainingRecords):
    """An `<identity>/<image>` folder tree read as (image, identity) records."""

    format_name = "image_folder"
    priority = 90  # last: many formats' folders contain sub-folders

    def __init__(self, path: str | os.PathLike) -> None:
        super().__init__(path)
        if not self.path.is_dir():
            raise FormatError(f"{self.path}: not a folder of <identity>/<image> files")
        self.identity_names, self.paths, self._label_list = scan_folder(self.path)
        if not self.paths:
            raise FormatError(f"{self.path}: no <identity>/<image>{_SUFFIX_LIST} files found")

    @classmethod
    def detect(cls, path: Path) -> Path | None:
        if not path.is_dir():
            return None
        with os.scandir(path) as iterator:
            for entry in iterator:
                if (
                    entry.is_dir()
                    and not entry.name.startswith(".")
                    and _has_image(Path(entry.path))
                ):
                    return path
        return None

    def __len__(self) -> int:
        return len(self.paths)

    def describe(self, index: int) -> str:
        if 0 <= index < len(self.paths):
            return str(self.path / self.paths[index])
        return super().describe(index)

    def _encoded(self, index: int) -> tuple[bytes, int]:
        file = self.path / self.paths[index]
        try:
            data = file.read_bytes()
        except OSError as error:
            raise FormatError(f"{file}: cannot read ({error})") from error
        return data, int(self._label_list[index])

    def _load_labels(self) -> np.ndarray:
        return self._label_list


def _has_image(folder: Path) -> bool:
    with os.scandir(folder) as iterator:
        return any(Path(entry.name).suffix.lower() in IMAGE_SUFFIXES for entry in iterator)
