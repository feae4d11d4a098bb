"""Every format in the formats registry, through the same checks: detected as itself, read as
the Records protocol, labels and bytes stable across pickling and worker processes. A format
registered without a builder here fails `test_every_registered_format_is_covered`."""

from __future__ import annotations

import multiprocessing
import pickle
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import make_set
from test_formats_other import dcface_folder, image_folder, vec2face_lmdb

from bench.formats import FORMATS, Records, detect_format, open_dataset


def _dcface(root: Path) -> Path:
    dcface_folder(root, raw_payload=False)
    return root


def _lmdb(root: Path) -> Path:
    root.mkdir(parents=True)
    vec2face_lmdb(root / "set.lmdb")
    return root / "set.lmdb"


def _folder(root: Path) -> Path:
    image_folder(root)
    return root


def _recordio(root: Path) -> Path:
    return make_set(root, classes=3, per_class=2)


BUILDERS: dict[str, Callable[[Path], Path]] = {
    "dcface_record": _dcface,
    "vec2face_lmdb": _lmdb,
    "image_folder": _folder,
    "insightface_recordio": _recordio,
}


def _labels_and_first_bytes(dataset) -> tuple[list[int], bytes]:
    return dataset.labels.tolist(), dataset.encoded(0)[0]


def test_every_registered_format_is_covered():
    assert sorted(BUILDERS) == sorted(FORMATS.names())


@pytest.mark.parametrize("name", FORMATS.names())
def test_format_is_detected_and_reads_as_records(tmp_path, name):
    path = BUILDERS[name](tmp_path / name)
    detected, _ = detect_format(path)
    assert detected == name
    dataset = open_dataset(path)
    assert dataset.format_name == name and isinstance(dataset, Records)
    assert len(dataset) == len(dataset.labels) > 0
    assert dataset.num_classes == int(dataset.labels.max()) + 1
    image, label = dataset[0]
    assert image.shape == (112, 112, 3) and label == int(dataset.labels[0])


@pytest.mark.parametrize("name", FORMATS.names())
def test_format_crosses_process_boundaries(tmp_path, name):
    """Datasets go to DataLoader / prepare workers: handles re-open after pickling or spawning."""
    dataset = open_dataset(BUILDERS[name](tmp_path / name))
    dataset.encoded(0)  # open the handles in the parent first
    expected = _labels_and_first_bytes(dataset)
    assert _labels_and_first_bytes(pickle.loads(pickle.dumps(dataset))) == expected
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        assert pool.map(_labels_and_first_bytes, [dataset]) == [expected]
