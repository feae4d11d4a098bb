"""DCFace's released record format: `file.rec` + `file.idx` + `list.txt` (in a `record/` folder).

This is RecordIO but NOT the insightface header convention: DCFace's writer
(mk-minchul/dcface `src/visualizations/record.py`, `Writer.write`) stores image i under key i
(from 0) as `pack_img(IRHeader(0, 0, i, 0), ...)` (JPEG, quality 100), so every header label is 0
and there is no header record. Reading it as insightface RecordIO gives one identity (dcface
issue #20). The identity is the parent folder of the path that `list.txt` (`index<TAB>path`)
gives for the key.

Choices (documented because they are ours):
- record order = `.idx` line order (DCFace writes keys 0..N-1 in order);
- labels = parent-folder names numbered 0..K-1 in order of first appearance in that record order
  (DCFace writes identities one after another, so this is also their generation order);
- payloads may be IRHeader-packed (what DCFace writes) or raw image bytes (some re-packs): a
  payload that starts with a JPEG/PNG signature is taken as raw, otherwise the IRHeader is removed.
- pixels are decoded as stored (like DCFace's own `convert/record.py`, via `mx.image.imdecode`).
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

import numpy as np

from bench.core.errors import FormatError
from bench.formats.base import FORMATS, TrainingRecords
from bench.formats.image import image_extension
from bench.formats.recordio import RecordIOReader, unpack

REC_NAME, IDX_NAME, LIST_NAME = "file.rec", "file.idx", "list.txt"


def read_list(list_path: Path) -> dict[int, str]:
    """`index<TAB>relative/path` lines -> {index: path}."""
    mapping: dict[int, str] = {}
    try:
        lines = list_path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise FormatError(f"{list_path}: cannot read the DCFace list ({error})") from error
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 2 or not fields[0].strip().lstrip("-").isdigit():
            raise FormatError(f"{list_path} line {number}: expected `index<TAB>path`, got {line!r}")
        index = int(fields[0])
        if index in mapping:
            raise FormatError(f"{list_path} line {number}: index {index} is listed twice")
        mapping[index] = fields[-1].strip()
    return mapping


def identity_of(path: str) -> str:
    """The identity name of a listed image: its parent folder."""
    parent = PurePosixPath(path.replace("\\", "/")).parent.name
    return parent


@FORMATS.register("dcface_record")
class DCFaceRecords(TrainingRecords):
    """A DCFace release folder read as (image, identity-from-list.txt) records."""

    format_name = "dcface_record"
    priority = 10  # before insightface_recordio: a DCFace folder also holds a .rec/.idx pair

    def __init__(self, path: str | os.PathLike) -> None:
        folder = Path(path)
        if not (folder / LIST_NAME).is_file() and (folder / "record" / LIST_NAME).is_file():
            folder = folder / "record"
        super().__init__(folder)
        for name in (REC_NAME, IDX_NAME, LIST_NAME):
            if not (folder / name).is_file():
                raise FormatError(
                    f"{folder / name}: missing; a DCFace record folder needs "
                    f"{REC_NAME}, {IDX_NAME} and {LIST_NAME}"
                )
        self.reader = RecordIOReader(folder / REC_NAME, folder / IDX_NAME)
        listing = read_list(folder / LIST_NAME)
        self.keys = self.reader.keys
        missing = [int(key) for key in self.keys if int(key) not in listing]
        if missing or len(listing) != len(self.keys):
            extra = sorted(set(listing) - {int(key) for key in self.keys})
            raise FormatError(
                f"{folder}: {LIST_NAME} and {IDX_NAME} disagree (keys without a path: "
                f"{missing[:5]}, paths without a record: {extra[:5]}); re-extract the release zip"
            )
        self.paths = [listing[int(key)] for key in self.keys]
        names = [identity_of(path) for path in self.paths]
        self.identity_names: list[str] = list(dict.fromkeys(names))
        number = {name: label for label, name in enumerate(self.identity_names)}
        self._label_list = np.array([number[name] for name in names], dtype=np.int64)

    @classmethod
    def detect(cls, path: Path) -> Path | None:
        for folder in (path, path / "record"):
            if all((folder / name).is_file() for name in (REC_NAME, IDX_NAME, LIST_NAME)):
                return folder
        return None

    def __len__(self) -> int:
        return len(self.keys)

    def describe(self, index: int) -> str:
        if 0 <= index < len(self.keys):
            return f"{self.path / REC_NAME} key {int(self.keys[index])} ({self.paths[index]})"
        return super().describe(index)

    def _encoded(self, index: int) -> tuple[bytes, int]:
        payload = self.reader.read(int(self.keys[index]))
        if image_extension(payload) is None:
            _, payload = unpack(payload, self.describe(index))
        return payload, int(self._label_list[index])

    def _load_labels(self) -> np.ndarray:
        return self._label_list
