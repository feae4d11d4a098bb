"""RecordIO reader/writer against the MXNet-written fixtures in shared/fixtures/insightface."""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
from helpers import SHARED_FIXTURES

from bench.core.errors import FormatError
from bench.formats import (
    IRHeader,
    RecordIODataset,
    RecordIOReader,
    RecordIOWriter,
    encode_jpeg,
    open_dataset,
    pack,
    unpack,
    write_canonical,
)
from bench.formats.recordio import MAGIC, MAGIC_BYTES

FIXTURES = SHARED_FIXTURES


def fixture(*parts: str) -> Path:
    """A fixture path; fails loudly (never skips) when the shared fixtures are absent."""
    if not FIXTURES.is_dir():
        pytest.fail(
            f"insightface fixtures not found at {FIXTURES}: check out shared/ next to the repo"
        )
    return FIXTURES.joinpath(*parts)


def manifest(name: str) -> dict:
    return json.loads(fixture(name).read_text())


def rgb_sha256(image: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()


def frame_cflags(rec: Path, offset: int) -> list[int]:
    """The cflags of the frames of the record at `offset`, parsed independently of the reader."""
    data = rec.read_bytes()
    flags = []
    while True:
        magic, lrec = struct.unpack_from("<II", data, offset)
        assert magic == MAGIC
        length = lrec & ((1 << 29) - 1)
        flags.append(lrec >> 29)
        offset += 8 + length + (-length % 4)
        if flags[-1] in (0, 3):
            return flags


# --- mx_small: header convention, header record written last ---------------------------------


def test_mx_small_labels_and_pixels_match_manifest():
    info = manifest("mx_small/manifest.json")
    dataset = open_dataset(fixture("mx_small"))
    assert dataset.format_name == "insightface_recordio"
    assert dataset.has_header
    assert len(dataset) == info["num_images"]
    expected_labels = [
        int(r["identity"])
        for _, r in sorted(
            ((int(k), r) for k, r in info["records"].items() if r["kind"] == "image")
        )
    ]
    assert dataset.labels.tolist() == expected_labels
    assert np.bincount(dataset.labels).tolist() == info["images_per_identity"]
    decoded = np.load(fixture("mx_small/decoded_rgb_mx.npz"))
    for index in range(len(dataset)):
        key = str(int(dataset.image_keys[index]))
        image, label = dataset[index]
        record = info["records"][key]
        assert image.shape == (112, 112, 3) and image.dtype == np.uint8
        assert rgb_sha256(image) == record["decoded_rgb_sha256_mx_imdecode"]
        assert np.array_equal(image, decoded[f"rec_{key}"])
        assert label == record["identity"]
        body, label2 = dataset.encoded(index)
        assert hashlib.sha256(body).hexdigest() == record["jpeg_sha256"] and label2 == label


def test_mx_small_every_record_header_matches_manifest():
    info = manifest("mx_small/manifest.json")
    reader = RecordIOReader(fixture("mx_small/train.rec"))
    assert reader.keys.tolist() == info["idx_key_order_in_file"]
    for key, record in info["records"].items():
        assert reader.offset(int(key)) == record["offset"]
        payload = reader.read(int(key))
        assert len(payload) == record["payload_len"]
        header, body = reader.unpack(payload)
        assert header.flag == record["header"]["flag"]
        assert header.id == record["header"]["id"] and header.id2 == record["header"]["id2"]
        assert np.allclose(header.label, record["header"]["label"])
        assert hashlib.sha256(body).hexdigest() == record["body_sha256"]
    dataset = RecordIODataset(fixture("mx_small"))
    assert dataset.header_label == tuple(info["header0_label"])
    ranges = {str(i): list(r) for i, r in enumerate(dataset.identity_ranges().tolist())}
    assert ranges == info["identity_ranges"]


def test_writer_reproduces_mxnet_file_byte_for_byte(tmp_path):
    """write_canonical on the fixture's images = MXNet's own .rec/.idx/property, byte for byte."""
    source = RecordIODataset(fixture("mx_small"))
    items = (source.encoded(i) for i in range(len(source)))
    counts = write_canonical(tmp_path, items, num_classes=source.num_classes)
    for name in ("train.rec", "train.idx", "property"):
        assert (tmp_path / name).read_bytes() == fixture("mx_small", name).read_bytes(), name
    assert counts.tolist() == manifest("mx_small/manifest.json")["images_per_identity"]


def test_canonical_round_trip_with_magic_in_payload(tmp_path):
    """Payloads containing the aligned magic word survive writer -> reader unchanged."""
    rng = np.random.default_rng(0)
    bodies = []
    for size in (0, 1, 4, 7, 40, 101):
        body = bytearray(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
        bodies.append(bytes(body))
        # the IRHeader is 24 bytes, so body offsets 0, 4, 8 ... are aligned in the payload
        bodies.append(MAGIC_BYTES * 3 + bytes(body) + MAGIC_BYTES)
    items = [(body, label) for label, body in enumerate(sorted(bodies, key=len)) for _ in range(1)]
    write_canonical(tmp_path, items, num_classes=len(items))
    dataset = RecordIODataset(tmp_path)
    assert [dataset.encoded(i) for i in range(len(dataset))] == items
    assert dataset.labels.tolist() == list(range(len(items)))
    split = [
        k
        for k in dataset.image_keys
        if len(frame_cflags(tmp_path / "train.rec", dataset.reader.offset(int(k)))) > 1
    ]
    assert len(split) == len(bodies) // 2  # exactly the bodies holding the magic word


def test_writer_rejects_ungrouped_labels(tmp_path):
    with pytest.raises(FormatError, match="grouped by identity"):
        write_canonical(tmp_path, [(b"a", 1), (b"b", 0)], num_classes=2)


# --- mx_flat: im2rec layout, multi-label record ----------------------------------------------


def test_mx_flat_all_keys_are_images_and_array_label_uses_first_value():
    info = manifest("mx_flat/manifest.json")
    dataset = open_dataset(fixture("mx_flat"))
    assert not dataset.has_header
    assert dataset.image_keys.tolist() == info["keys"]
    assert dataset.labels.tolist() == [info["records"][str(k)]["identity"] for k in info["keys"]]
    decoded = np.load(fixture("mx_flat/decoded_rgb_mx.npz"))
    for index, key in enumerate(info["keys"]):
        image, label = dataset[index]
        assert np.array_equal(image, decoded[f"rec_{key}"])
        assert label == info["records"][str(key)]["identity"]
    header, body = unpack(dataset.reader.read(info["multi_label_key"]))
    record = info["records"][str(info["multi_label_key"])]
    assert header.flag == record["header"]["flag"]
    assert header.label.tolist() == record["header"]["label"]
    assert len(body) == record["body_len"]


def _write_records(path: Path, records: list[tuple[list[float] | float, bytes]]) -> Path:
    with RecordIOWriter(path, path.with_suffix(".idx")) as writer:
        for key, (label, body) in enumerate(records):
            writer.write(key, pack(IRHeader(0, label, key, 0), body))
    return path


@pytest.mark.parametrize(
    "identities", [[0, 0, 1, 1, 2, 2], [5, 7, 1, 1, 2, 2], [3, 3, 0, 0, 1, 1, 2, 2]]
)
def test_flat_set_with_array_labels_everywhere_keeps_record_0(tmp_path, identities):
    """im2rec --pack-label: record 0 is an image with an array label, not a header."""
    bodies = [
        encode_jpeg(np.full((16, 16, 3), 20 * key, np.uint8)) for key in range(len(identities))
    ]
    records = [
        ([float(identity), 10.0], body) for identity, body in zip(identities, bodies, strict=True)
    ]
    dataset = RecordIODataset(_write_records(tmp_path / "flat.rec", records))
    assert not dataset.has_header and dataset.header_label is None
    assert len(dataset) == len(identities) and dataset.labels.tolist() == identities
    assert dataset.encoded(0) == (bodies[0], identities[0])


def test_header_record_is_the_empty_bodied_record_0(tmp_path):
    """An empty-bodied record 0 with an array label is still read (and checked) as the header."""
    image = encode_jpeg(np.zeros((16, 16, 3), np.uint8))
    good = [([2.0, 3.0], b""), (0.0, image), ([1.0, 2.0], b"")]
    dataset = RecordIODataset(_write_records(tmp_path / "good.rec", good))
    assert dataset.has_header and dataset.labels.tolist() == [0]
    bad = [([0.0, 0.0], b""), (0.0, image)]
    with pytest.raises(FormatError, match=r"bad\.rec: header record 0 has an invalid label"):
        RecordIODataset(_write_records(tmp_path / "bad.rec", bad))


# --- mx_escape: split records ----------------------------------------------------------------


def test_mx_escape_split_records_rejoined():
    info = manifest("mx_escape/manifest.json")
    reader = RecordIOReader(fixture("mx_escape/train.rec"))
    decoded = np.load(fixture("mx_escape/decoded_rgb_mx.npz"))
    for key, record in info["records"].items():
        payload = reader.read(int(key))
        assert hashlib.sha256(payload).hexdigest() == record["expected_payload_sha256"]
        assert (
            frame_cflags(fixture("mx_escape/train.rec"), record["offset"]) == record["frame_parts"]
        )
        header, body = unpack(payload)
        assert header.id == record["header"]["id"]
        if "body_hex" in record:
            assert body.hex() == record["body_hex"]
        else:
            dataset = RecordIODataset(fixture("mx_escape"))
            image, _ = dataset[dataset.image_keys.tolist().index(int(key))]
            assert np.array_equal(image, decoded[f"rec_{key}"])
            assert rgb_sha256(image) == record["decoded_rgb_sha256_mx_imdecode"]


def test_writer_reproduces_mxnet_split_frames(tmp_path):
    reader = RecordIOReader(fixture("mx_escape/train.rec"))
    with RecordIOWriter(tmp_path / "x.rec") as writer:
        for key in reader.keys.tolist():
            writer.write(key, reader.read(key))
    assert (tmp_path / "x.rec").read_bytes() == fixture("mx_escape/train.rec").read_bytes()
    assert (tmp_path / "x.idx").read_bytes() == fixture("mx_escape/train.idx").read_bytes()


def test_labels_fast_path_agrees_with_per_record_unpack():
    for name in ("mx_small", "mx_flat", "mx_escape"):
        dataset = RecordIODataset(fixture(name))
        slow = [dataset.encoded(i)[1] for i in range(len(dataset))]
        assert dataset.labels.tolist() == slow, name


# --- corrupt files ---------------------------------------------------------------------------


def test_truncated_header_record_raises_naming_file_key_offset():
    info = manifest("corrupt_manifest.json")["truncated"]
    reader = RecordIOReader(fixture("truncated.rec"))
    for key in range(1, 44):
        reader.read(key)
    pattern = (
        rf"truncated\.rec.*truncated record at offset {info['truncated_record_offset']} \(key 0\)"
    )
    with pytest.raises(FormatError, match=pattern):
        reader.read(info["truncated_record_key"])
    with pytest.raises(FormatError, match="key 0"):
        open_dataset(fixture("truncated.rec"))


def test_truncated_image_and_offsets_beyond_eof_raise():
    info = manifest("corrupt_manifest.json")["truncated_img"]
    reader = RecordIOReader(fixture("truncated_img.rec"))
    for key in range(1, info["truncated_record_key"]):
        reader.read(key)
    with pytest.raises(
        FormatError, match=rf"truncated_img\.rec.*offset {info['truncated_record_offset']}.*key 36"
    ):
        reader.read(info["truncated_record_key"])
    for key in info["keys_beyond_eof"]:
        with pytest.raises(FormatError, match=rf"beyond the end of the file.*key {key}\b"):
            reader.read(key)
    with pytest.raises(FormatError, match="truncated_img.rec"):
        RecordIODataset(fixture("truncated_img.rec"))


def test_bad_magic_raises_for_that_key_only():
    info = manifest("corrupt_manifest.json")["bad_magic"]
    word = int.from_bytes(bytes.fromhex(info["corrupted_bytes"]), "little")
    reader = RecordIOReader(fixture("bad_magic.rec"))
    pattern = rf"bad_magic\.rec: invalid magic 0x{word:08x} at offset {info['offset']} \(key {info['record_key']}\)"
    with pytest.raises(FormatError, match=pattern):
        reader.read(info["record_key"])
    for key in reader.keys.tolist():
        if key != info["record_key"]:
            reader.read(key)
    scanned = []
    with pytest.raises(FormatError, match=f"invalid magic 0x{word:08x} at offset {info['offset']}"):
        for offset, _ in reader.scan():
            scanned.append(offset)
    assert len(scanned) == 2
    dataset = RecordIODataset(fixture("bad_magic.rec"))  # the header is intact ...
    with pytest.raises(FormatError, match=f"key {info['record_key']}"):
        _ = dataset.labels  # ... but reading all labels meets the bad record


def test_unknown_key_and_stale_index(tmp_path):
    reader = RecordIOReader(fixture("mx_small/train.rec"))
    with pytest.raises(FormatError, match="key 999 is not in the index"):
        reader.read(999)
    shutil.copy(fixture("mx_small/train.rec"), tmp_path / "train.rec")
    (tmp_path / "train.idx").write_text("0\t0\n1\tx\n")
    with pytest.raises(FormatError, match="non-integer"):
        RecordIOReader(tmp_path / "train.rec")
    (tmp_path / "train.idx").write_text("1\t0\n1\t1816\n")
    with pytest.raises(FormatError, match="more than once"):
        RecordIOReader(tmp_path / "train.rec")


# --- pack / pickling -------------------------------------------------------------------------


def test_pack_sets_flag_from_label_like_mxnet():
    payload = pack(IRHeader(1, [3.0, 0.25], 12, 0), b"xyz")
    header, body = unpack(payload)
    assert header.flag == 2 and header.label.tolist() == [3.0, 0.25] and body == b"xyz"
    assert struct.unpack_from("<f", payload, 4)[0] == 0.0  # fixed label field written as 0.0
    header, body = unpack(pack(IRHeader(0, 5.0, 1, 2), b""))
    assert (header.flag, header.label, header.id, header.id2, body) == (0, 5.0, 1, 2, b"")
    with pytest.raises(FormatError, match="shorter than the 24-byte IRHeader"):
        unpack(b"\x00" * 10, "somewhere")


def test_dataset_pickles_and_reopens():
    dataset = RecordIODataset(fixture("mx_small"))
    first = dataset[3]
    clone = pickle.loads(pickle.dumps(dataset))
    assert clone.reader._map is None
    image, label = clone[3]
    assert np.array_equal(image, first[0]) and label == first[1]
