"""DCFace record folders, Vec2Face LMDBs, image folders and format detection, on small sets
built here (the real releases are large downloads)."""

from __future__ import annotations

import multiprocessing
import pickle
from pathlib import Path

import lmdb
import msgpack
import numpy as np
import pytest

from bench.core.errors import FormatError
from bench.formats import (
    DCFaceRecords,
    ImageFolderRecords,
    IRHeader,
    LMDBRecords,
    RecordIODataset,
    RecordIOWriter,
    decode_image,
    detect_format,
    encode_jpeg,
    encode_png,
    open_dataset,
    pack,
)
from bench.formats.folder import natural_key


def make_image(seed: int, gray: bool = False) -> np.ndarray:
    """A distinct small 112x112 RGB image (blocks of colour: compresses to a few hundred bytes)."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (7, 7, 1 if gray else 3), dtype=np.uint8)
    image = np.kron(blocks, np.ones((16, 16, 1), dtype=np.uint8))
    return np.repeat(image, 3, axis=2) if gray else image


# identity folder name -> number of images; names chosen so that first-appearance order,
# plain sort and natural sort all differ
IDENTITIES = {"id10": 2, "id9": 3, "id100": 1}


def dcface_folder(root: Path, raw_payload: bool) -> tuple[list[bytes], list[int]]:
    """A DCFace-style record/ folder; returns the stored image bytes and expected labels."""
    folder = root / "record"
    folder.mkdir(parents=True)
    images, labels, lines = [], [], []
    with RecordIOWriter(folder / "file.rec", folder / "file.idx") as writer:
        index = 0
        for label, (name, count) in enumerate(IDENTITIES.items()):
            for n in range(count):
                buf = encode_jpeg(make_image(index), quality=100)
                # DCFace's Writer: pack_img(IRHeader(0, 0, index, 0), ...), label always 0
                writer.write(index, buf if raw_payload else pack(IRHeader(0, 0.0, index, 0), buf))
                lines.append(f"{index}\t{name}/{n}.jpg\n")
                images.append(buf)
                labels.append(label)
                index += 1
    (folder / "list.txt").write_text("".join(lines))
    return images, labels


@pytest.mark.parametrize("raw_payload", [False, True])
def test_dcface_labels_from_list_parent_folders(tmp_path, raw_payload):
    images, labels = dcface_folder(tmp_path, raw_payload)
    assert detect_format(tmp_path) == ("dcface_record", tmp_path / "record")
    dataset = open_dataset(tmp_path)
    assert isinstance(dataset, DCFaceRecords) and dataset.format_name == "dcface_record"
    assert dataset.labels.tolist() == labels
    assert dataset.identity_names == list(IDENTITIES)
    assert [dataset.encoded(i) for i in range(len(dataset))] == list(
        zip(images, labels, strict=True)
    )
    image, label = dataset[3]
    assert np.array_equal(image, decode_image(images[3])) and label == labels[3]


def test_dcface_read_as_insightface_collapses_identities(tmp_path):
    """Why DCFace needs its own reader: as plain RecordIO every label is 0 (dcface issue #20)."""
    dcface_folder(tmp_path, raw_payload=False)
    wrong = RecordIODataset(tmp_path / "record" / "file.rec")
    assert set(wrong.labels.tolist()) == {0}


def test_dcface_list_must_cover_every_key(tmp_path):
    dcface_folder(tmp_path, raw_payload=False)
    listing = tmp_path / "record" / "list.txt"
    listing.write_text("".join(listing.read_text().splitlines(keepends=True)[:-1]))
    with pytest.raises(FormatError, match="list.txt and file.idx disagree"):
        DCFaceRecords(tmp_path)


def vec2face_lmdb(
    path: Path, with_keys: bool = True, feature: bool = False
) -> list[tuple[bytes, int]]:
    items = [(encode_jpeg(make_image(50 + i)), label) for i, label in enumerate([0, 0, 1, 2, 2])]
    env = lmdb.open(str(path), subdir=False, map_size=1 << 24)
    with env.begin(write=True) as txn:
        for index, (buf, label) in enumerate(items):
            value = (buf, b"feature-bytes", label) if feature else (buf, label)
            txn.put(str(index).encode("ascii"), msgpack.dumps(value))
        keys = [str(i).encode("ascii") for i in range(len(items))]
        if with_keys:
            txn.put(b"__keys__", msgpack.dumps(keys))
        txn.put(b"__len__", msgpack.dumps(len(keys)))
        txn.put(b"__classnum__", msgpack.dumps(3))
    env.close()
    return items


@pytest.mark.parametrize(("with_keys", "feature"), [(True, False), (False, False), (True, True)])
def test_vec2face_lmdb(tmp_path, with_keys, feature):
    path = tmp_path / "hsface_tiny.lmdb"
    items = vec2face_lmdb(path, with_keys, feature)
    assert detect_format(tmp_path) == ("vec2face_lmdb", path)
    dataset = open_dataset(path)
    assert isinstance(dataset, LMDBRecords) and dataset.declared_classes == 3
    assert [dataset.encoded(i) for i in range(len(dataset))] == items
    assert dataset.labels.tolist() == [label for _, label in items]
    image, label = dataset[2]
    assert np.array_equal(image, decode_image(items[2][0])) and label == items[2][1]


def test_vec2face_lmdb_inconsistent_length(tmp_path):
    path = tmp_path / "bad.lmdb"
    vec2face_lmdb(path)
    env = lmdb.open(str(path), subdir=False, map_size=1 << 24)
    with env.begin(write=True) as txn:
        txn.put(b"__len__", msgpack.dumps(7))
    env.close()
    with pytest.raises(FormatError, match="__len__ says 7 records but __keys__ lists 5"):
        LMDBRecords(path)


def test_closing_one_lmdb_reader_leaves_the_others_working(tmp_path):
    """Readers of one file share its environment: it closes with the last reader, not the first."""
    path = tmp_path / "shared.lmdb"
    items = vec2face_lmdb(path)
    first, second = LMDBRecords(path), open_dataset(path)
    clone = pickle.loads(pickle.dumps(first))
    first.close()
    first.close()  # a second close of the same reader must not count twice
    assert second.encoded(1) == items[1] and clone.encoded(2) == items[2]
    environment = second.env()
    second.close()
    assert clone.encoded(3) == items[3]  # the clone still holds the environment open
    clone.close()
    with pytest.raises(lmdb.Error):  # the last reader's close really closed it
        environment.begin()
    assert first.encoded(0) == items[0]  # a closed reader re-opens on its next read
    first.close()


def image_folder(root: Path) -> dict[str, list[str]]:
    """identity -> image names in the order the reader must give them."""
    layout = {
        "b": ["img10.png", "img2.png", "img1.jpg"],
        "a": ["0.jpeg"],
        "c10": ["x.png"],
        "c9": ["y.png"],
    }
    for seed, (identity, names) in enumerate(layout.items()):
        (root / identity).mkdir(parents=True)
        for n, name in enumerate(names):
            image = make_image(100 + 10 * seed + n, gray=(identity == "a"))
            data = encode_png(image) if name.endswith(".png") else encode_jpeg(image)
            (root / identity / name).write_bytes(data)
    (root / ".hidden").mkdir()
    (root / "a" / ".DS_Store").write_bytes(b"junk")
    return {identity: sorted(names, key=natural_key) for identity, names in sorted(layout.items())}


def test_image_folder_order_and_labels(tmp_path):
    expected = image_folder(tmp_path)
    assert detect_format(tmp_path) == ("image_folder", tmp_path)
    dataset = open_dataset(tmp_path)
    assert isinstance(dataset, ImageFolderRecords)
    assert dataset.identity_names == ["a", "b", "c10", "c9"]  # plain name order
    assert dataset.paths == [
        f"{identity}/{name}" for identity, names in expected.items() for name in names
    ]
    assert dataset.paths[1:4] == ["b/img1.jpg", "b/img2.png", "b/img10.png"]  # natural order
    assert dataset.labels.tolist() == [0, 1, 1, 1, 2, 3]
    for index, relative in enumerate(dataset.paths):
        buf, label = dataset.encoded(index)
        assert buf == (tmp_path / relative).read_bytes()
    gray, _ = dataset[0]
    assert gray.shape == (112, 112, 3) and np.array_equal(gray[..., 0], gray[..., 2])


def test_natural_key_breaks_ties_by_name_whatever_the_listing_order():
    names = ["1.jpg", "01.jpg", "img10.png", "img2.png", "001.jpg"]
    expected = ["001.jpg", "01.jpg", "1.jpg", "img2.png", "img10.png"]
    assert sorted(names, key=natural_key) == sorted(reversed(names), key=natural_key) == expected


def test_image_folder_names_with_non_decimal_digits(tmp_path):
    """'²' is str.isdigit() but not a regex \\d digit: it sorts as text instead of crashing."""
    (tmp_path / "id0").mkdir()
    for name in ["m²1.jpg", "²1.jpg", "a.jpg", "a٣.jpg", "a12.jpg"]:  # ٣: Arabic-Indic three
        (tmp_path / "id0" / name).write_bytes(encode_jpeg(make_image(0)))
    paths = ImageFolderRecords(tmp_path).paths
    assert paths == ["id0/a٣.jpg", "id0/a12.jpg", "id0/a.jpg", "id0/m²1.jpg", "id0/²1.jpg"]


def test_image_folder_rejects_foreign_files(tmp_path):
    image_folder(tmp_path)
    (tmp_path / "b" / "notes.txt").write_text("hello")
    with pytest.raises(
        FormatError, match=r"'notes.txt' is not a \.jpg/\.jpeg/\.png/\.bmp/\.gif/\.webp image"
    ):
        ImageFolderRecords(tmp_path)


def test_corrupt_image_error_names_the_file(tmp_path):
    image_folder(tmp_path)
    (tmp_path / "c9" / "y.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    dataset = open_dataset(tmp_path)
    with pytest.raises(FormatError, match=r"c9/y\.png: undecodable image"):
        dataset[5]


def test_unknown_layout_and_missing_path(tmp_path):
    (tmp_path / "readme.txt").write_text("nothing here")
    with pytest.raises(FormatError, match="no known training-set format"):
        open_dataset(tmp_path)
    with pytest.raises(FormatError, match="not found"):
        open_dataset(tmp_path / "absent")


def test_index_bounds(tmp_path):
    image_folder(tmp_path)
    dataset = open_dataset(tmp_path)
    assert dataset.encoded(-1) == dataset.encoded(len(dataset) - 1)
    with pytest.raises(IndexError, match="out of range"):
        dataset.encoded(len(dataset))


def _labels_and_first_bytes(dataset) -> tuple[list[int], bytes]:
    return dataset.labels.tolist(), dataset.encoded(0)[0]


@pytest.mark.parametrize("start_method", ["spawn", "fork"])
def test_folder_formats_work_in_forked_and_spawned_workers(tmp_path, start_method):
    """Handles opened in the parent are re-opened (spawn) or reused safely (fork) by workers;
    every format's spawn round-trip is also checked in test_registry.py."""
    dcface_folder(tmp_path / "dcface", raw_payload=False)
    vec2face_lmdb(tmp_path / "v.lmdb")
    image_folder(tmp_path / "folder")
    datasets = [
        open_dataset(tmp_path / "dcface"),
        open_dataset(tmp_path / "v.lmdb"),
        open_dataset(tmp_path / "folder"),
    ]
    for dataset in datasets:
        dataset.encoded(0)  # open handles in the parent first
    with multiprocessing.get_context(start_method).Pool(1) as pool:
        results = pool.map(_labels_and_first_bytes, datasets)
    assert results == [_labels_and_first_bytes(dataset) for dataset in datasets]


def test_detect_descends_into_a_lone_archive_folder(tmp_path):
    """raw/<name>/<archive>/record/...: an unzipped release inside its own folder is found."""
    dcface_folder(tmp_path / "dcface_0.5m_oversample_xid", raw_payload=False)
    assert detect_format(tmp_path) == (
        "dcface_record",
        tmp_path / "dcface_0.5m_oversample_xid" / "record",
    )
    (tmp_path / "second").mkdir()
    with pytest.raises(FormatError, match="no known training-set format"):
        detect_format(tmp_path)


def test_vec2face_lmdb_follows_explicit_key_order(tmp_path):
    path = tmp_path / "ordered.lmdb"
    items = vec2face_lmdb(path)
    env = lmdb.open(str(path), subdir=False, map_size=1 << 24)
    with env.begin(write=True) as txn:
        txn.put(b"__keys__", msgpack.dumps([b"4", b"0", b"2"]))
        txn.put(b"__len__", msgpack.dumps(3))
    env.close()
    dataset = LMDBRecords(path)
    assert [dataset.encoded(i) for i in range(len(dataset))] == [items[4], items[0], items[2]]
    assert dataset.describe(0).endswith("key 4")


def test_memory_records_hold_images_and_labels_and_refuse_a_length_mismatch():
    from bench.core.errors import DatasetError
    from bench.formats import MemoryRecords

    image = np.zeros((112, 112, 3), np.uint8)
    records = MemoryRecords([image, image + 1], [3, 5])
    assert len(records) == 2 and records[1][1] == 5 and records[1][0][0, 0, 0] == 1
    assert records.labels.dtype == np.int64
    with pytest.raises(DatasetError, match="2 images but 1 labels"):
        MemoryRecords([image, image], [0])
