"""Reader for insightface's IJB-B / IJB-C package, exactly as distributed.

    <root>/IJBC/loose_crop/<n>.jpg
    <root>/IJBC/meta/ijbc_face_tid_mid.txt        IMAGE TEMPLATE_ID MEDIA_ID       (one row per image)
    <root>/IJBC/meta/ijbc_name_5pts_score.txt     IMAGE x1 y1 ... x5 y5 DETECTOR_SCORE (same rows)
    <root>/IJBC/meta/ijbc_template_pair_label.txt TEMPLATE_ID TEMPLATE_ID LABEL (1:1 pairs)
    <root>/IJBC/meta/ijbc_1N_gallery_G1.csv, _G2.csv, ijbc_1N_probe_mixed.csv
                                                  header line, then TEMPLATE_ID,SUBJECT_ID,...
IJB-B: IJBB/ and ijbb_ names, galleries S1 and S2. Every problem is an error naming the file and
the line; nothing is skipped."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.core.errors import DatasetError, FormatError

LANDMARK_FIELDS = 12  # name, 5 x (x, y), detector score


@dataclass(frozen=True)
class Target:
    """One IJB variant: its folder, file prefix and 1:N gallery names."""

    name: str
    folder: str
    galleries: tuple[str, str]

    def meta(self, root: Path, suffix: str) -> Path:
        return root / self.folder / "meta" / f"{self.name}_{suffix}"


TARGETS = {
    "ijbb": Target("ijbb", "IJBB", ("S1", "S2")),
    "ijbc": Target("ijbc", "IJBC", ("G1", "G2")),
}


@dataclass(frozen=True)
class Subjects:
    """A 1:N gallery or probe set: template ids and subject ids, one row per CSV line."""

    path: Path
    templates: np.ndarray
    subjects: np.ndarray


@dataclass(frozen=True)
class IJBPackage:
    """Everything the IJB protocols read; row i of the per-image arrays = line i of the meta files."""

    root: Path
    target: Target
    image_dir: Path
    image_names: list[str]
    templates: np.ndarray  # int64 (N,)
    medias: np.ndarray  # int64 (N,)
    landmarks: np.ndarray  # float32 (N, 5, 2), pixel coordinates in the loose crop
    detector_scores: np.ndarray  # float32 (N,)
    pairs_path: Path
    pairs: np.ndarray  # int64 (P, 3): template, template, label
    galleries: dict[str, Subjects]  # 1:N galleries by name (G1, G2 | S1, S2)
    probes: Subjects  # 1:N mixed probe set (mated and non-mated)


def target(name: str) -> Target:
    """The IJB variant called `name` (ijbb | ijbc)."""
    if name not in TARGETS:
        raise DatasetError(f"unknown IJB target {name!r}; choose one of {', '.join(TARGETS)}")
    return TARGETS[name]


def read_package(root: str | Path, name: str) -> IJBPackage:
    """Read and cross-check the media list, landmarks and 1:1 pairs of `<root>/<IJBx>/`."""
    root, variant = Path(root), target(name)
    _check_layout(root, variant)
    media_path = variant.meta(root, "face_tid_mid.txt")
    names, templates, medias = read_media_list(media_path)
    landmark_path = variant.meta(root, "name_5pts_score.txt")
    landmarks, scores = read_landmarks(landmark_path, names)
    pairs_path = variant.meta(root, "template_pair_label.txt")
    pairs = read_pairs(pairs_path)
    galleries = {
        gallery: read_subjects(variant.meta(root, f"1N_gallery_{gallery}.csv"))
        for gallery in variant.galleries
    }
    return IJBPackage(
        root=root,
        target=variant,
        image_dir=root / variant.folder / "loose_crop",
        image_names=names,
        templates=templates,
        medias=medias,
        landmarks=landmarks,
        detector_scores=scores,
        pairs_path=pairs_path,
        pairs=pairs,
        galleries=galleries,
        probes=read_subjects(variant.meta(root, "1N_probe_mixed.csv")),
    )


def _check_layout(root: Path, variant: Target) -> None:
    folder = root / variant.folder
    if not folder.is_dir():
        hint = ""
        if (root / "meta").is_dir() or root.name.upper() == variant.folder:
            hint = (
                f"; --root must be the folder that CONTAINS {variant.folder}/ (try {root.parent})"
            )
        raise DatasetError(
            f"{folder}: not found{hint}. Expected the insightface IJB package layout "
            f"<root>/{variant.folder}/loose_crop/*.jpg and <root>/{variant.folder}/meta/"
        )
    for sub in ("loose_crop", "meta"):
        if not (folder / sub).is_dir():
            raise DatasetError(f"{folder / sub}: missing folder of the IJB package layout")


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        raise DatasetError(f"{path}: missing file of the IJB package; re-extract the archive")
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines:
        raise FormatError(f"{path}: empty file")
    return lines


def read_media_list(path: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """`IMAGE TEMPLATE_ID MEDIA_ID` rows -> names, template ids, media ids."""
    names, numbers = [], []
    for number, line in enumerate(_lines(path), start=1):
        fields = line.split()
        if len(fields) != 3:
            raise FormatError(f"{path} line {number}: expected 'IMAGE TID MID', got {line!r}")
        names.append(fields[0])
        numbers.append((_int(fields[1], path, number), _int(fields[2], path, number)))
    table = np.asarray(numbers, dtype=np.int64)
    return names, table[:, 0].copy(), table[:, 1].copy()


def read_landmarks(path: Path, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """`IMAGE x1 y1 ... x5 y5 SCORE` rows, matched to the media list row by row."""
    lines = _lines(path)
    if len(lines) != len(names):
        raise FormatError(
            f"{path}: {len(lines)} rows, but the media list has {len(names)}; the files are "
            "matched row by row and must have the same length"
        )
    values = np.empty((len(lines), LANDMARK_FIELDS - 1), dtype=np.float32)
    for number, (line, name) in enumerate(zip(lines, names, strict=True), start=1):
        fields = line.split()
        if len(fields) != LANDMARK_FIELDS:
            raise FormatError(
                f"{path} line {number}: expected the image name, 10 landmark coordinates and a "
                f"detector score ({LANDMARK_FIELDS} fields), got {len(fields)}: {line!r}"
            )
        if fields[0] != name:
            raise FormatError(
                f"{path} line {number}: image {fields[0]!r}, but line {number} of the media "
                f"list names {name!r}; the two files must list the images in the same order"
            )
        try:
            values[number - 1] = [float(field) for field in fields[1:]]
        except ValueError:
            raise FormatError(f"{path} line {number}: not a number in {line!r}") from None
    return values[:, :10].reshape(-1, 5, 2), values[:, 10].copy()


def read_pairs(path: Path) -> np.ndarray:
    """`TEMPLATE_ID TEMPLATE_ID LABEL` rows -> int64 (P, 3); the fast path parses in C."""
    if not path.is_file():
        raise DatasetError(f"{path}: missing file of the IJB package; re-extract the archive")
    text = path.read_text(encoding="ascii", errors="replace")
    rows = (
        len(text.splitlines())
        if len(text) < 1 << 20
        else text.count("\n") + (not text.endswith("\n"))
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy warns, not raises, on an unparsable token
        try:
            values = np.fromstring(text, dtype=np.int64, sep=" ")
        except (ValueError, DeprecationWarning):
            values = None
    if values is None or values.size != 3 * rows:
        values = _parse_pairs_slowly(path, text)  # blank lines, or an error naming the line
    pairs = values.reshape(-1, 3)
    bad = np.flatnonzero((pairs[:, 2] != 0) & (pairs[:, 2] != 1))
    if len(bad):
        raise FormatError(f"{path} line {bad[0] + 1}: label {pairs[bad[0], 2]} is not 0 or 1")
    return pairs


def _parse_pairs_slowly(path: Path, text: str) -> np.ndarray:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 3:
            raise FormatError(f"{path} line {number}: expected 'TID1 TID2 LABEL', got {line!r}")
        rows.append([_int(field, path, number) for field in fields])
    if not rows:
        raise FormatError(f"{path}: no pairs")
    return np.asarray(rows, dtype=np.int64)


def read_subjects(path: Path) -> Subjects:
    """A 1:N CSV: a header line, then TEMPLATE_ID,SUBJECT_ID,... rows."""
    lines = _lines(path)
    header = [field.strip().upper() for field in lines[0].split(",")]
    if header[:2] != ["TEMPLATE_ID", "SUBJECT_ID"]:
        raise FormatError(
            f"{path} line 1: expected a header starting TEMPLATE_ID,SUBJECT_ID, got {lines[0]!r}"
        )
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split(",")
        if len(fields) < 2:
            raise FormatError(
                f"{path} line {number}: expected TEMPLATE_ID,SUBJECT_ID,... got {line!r}"
            )
        rows.append((_int(fields[0], path, number), _int(fields[1], path, number)))
    if not rows:
        raise FormatError(f"{path}: a header but no rows")
    table = np.asarray(rows, dtype=np.int64)
    return Subjects(path=path, templates=table[:, 0].copy(), subjects=table[:, 1].copy())


def _int(text: str, path: Path, number: int) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise FormatError(f"{path} line {number}: {text!r} is not an integer id") from None
