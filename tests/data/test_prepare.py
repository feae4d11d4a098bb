"""prepare -> canonical RecordIO + manifest, check, and the commands (export: test_export.py)."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import textwrap
from pathlib import Path
from types import SimpleNamespace

import lmdb
import msgpack
import numpy as np
import pytest
from helpers import SHARED_FIXTURES
from PIL import Image

import bench.data.parallel as parallel_module
import bench.data.prepare as prepare_module
from bench.catalog import Release
from bench.cli import main as cli_main
from bench.core.errors import DatasetError
from bench.data.check import check
from bench.data.manifest import read_manifest
from bench.data.prepare import prepare
from bench.formats import RecordIODataset, encode_jpeg, encode_png, open_dataset

FIXTURES = SHARED_FIXTURES


def make_image(seed: int, size: int = 112, gray: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (size // 16, size // 16, 1 if gray else 3), dtype=np.uint8)
    image = np.kron(blocks, np.ones((16, 16, 1), dtype=np.uint8))
    return np.repeat(image, 3, axis=2) if gray else image


def write_folder(root: Path, counts: dict[str, int], seed: int = 0) -> None:
    """`<identity>/<n>.png|jpg` with distinct images (alternating PNG and JPEG)."""
    for number, (identity, count) in enumerate(counts.items()):
        (root / identity).mkdir(parents=True)
        for n in range(count):
            image = make_image(seed + 100 * number + n)
            data = encode_png(image) if n % 2 else encode_jpeg(image)
            (root / identity / f"{n}.{'png' if n % 2 else 'jpg'}").write_bytes(data)


def write_lmdb(path: Path, items: list[tuple[bytes, int]]) -> Path:
    """A Vec2Face-style LMDB file of msgpack (encoded image, label) records."""
    env = lmdb.open(str(path), subdir=False, map_size=1 << 24)
    with env.begin(write=True) as txn:
        for index, item in enumerate(items):
            txn.put(str(index).encode(), msgpack.dumps(item))
        txn.put(b"__len__", msgpack.dumps(len(items)))
    env.close()
    return path


def encode_as(image: np.ndarray, kind: str) -> bytes:
    out = io.BytesIO()
    Image.fromarray(image).save(out, format=kind)
    return out.getvalue()


def expected(images: int, identities: int, name: str = "tiny") -> SimpleNamespace:
    """Stand-in for a registry entry (the fields prepare/check read)."""
    counts = Release(identities=identities, images=images, verified=True)
    return SimpleNamespace(
        name=name,
        images=images,
        identities=identities,
        format="image_folder",
        expected_counts=counts,
    )


COUNTS = {"alice": 3, "bob": 1, "carol": 4}


@pytest.fixture
def folder(tmp_path) -> Path:
    root = tmp_path / "raw" / "tiny"
    write_folder(root, COUNTS)
    return root


def test_prepare_folder_round_trips_bytes_and_labels(folder, tmp_path):
    out = tmp_path / "prepared" / "tiny"
    manifest = prepare("tiny", folder, out, workers=1, expected=expected(8, 3))
    source = open_dataset(folder)
    prepared = open_dataset(out)
    assert isinstance(prepared, RecordIODataset) and prepared.has_header
    assert [prepared.encoded(i) for i in range(len(prepared))] == [
        source.encoded(i) for i in range(len(source))
    ]
    data = json.loads((out / "manifest.json").read_text())
    assert data["schema_version"] == 1 and data["name"] == "tiny"
    assert data["source_format"] == "image_folder"
    assert (data["images"], data["identities"]) == (len(source), len(COUNTS))
    assert data["per_identity_counts"] == list(COUNTS.values())
    assert data["rec_sha256"] == hashlib.sha256((out / "train.rec").read_bytes()).hexdigest()
    assert data["idx_sha256"] == hashlib.sha256((out / "train.idx").read_bytes()).hexdigest()
    assert read_manifest(out) == manifest
    assert (out / "property").read_text() == f"{len(COUNTS)},112,112\n"
    assert sorted(p.name for p in out.parent.iterdir()) == ["tiny"]  # no staging left over


def test_prepare_groups_by_identity_and_renumbers_labels(tmp_path):
    """An LMDB with interleaved, non-contiguous labels: grouped (stable) and renumbered 0..K-1."""
    labels = [7, 2, 7, 5, 2, 7]
    items = [(encode_jpeg(make_image(i)), label) for i, label in enumerate(labels)]
    write_lmdb(tmp_path / "set.lmdb", items)
    out = tmp_path / "out"
    manifest = prepare("x", tmp_path / "set.lmdb", out, workers=1, expected=None)
    prepared = open_dataset(out)
    order = sorted(range(len(labels)), key=lambda i: (labels[i], i))
    renumber = {2: 0, 5: 1, 7: 2}
    assert [prepared.encoded(i) for i in range(len(prepared))] == [
        (items[i][0], renumber[labels[i]]) for i in order
    ]
    assert manifest.per_identity_counts == [2, 1, 3] and manifest.source_format == "vec2face_lmdb"


def test_prepare_with_worker_processes_writes_the_same_files(folder, tmp_path, monkeypatch):
    one = prepare("tiny", folder, tmp_path / "one", workers=1, expected=None)
    monkeypatch.setattr(parallel_module, "CHUNK_SIZE", 1)  # 8 tasks over 2 processes, in order
    two = prepare("tiny", folder, tmp_path / "two", workers=2, expected=None)
    assert (one.rec_sha256, one.idx_sha256) == (two.rec_sha256, two.idx_sha256)
    report = check(tmp_path / "two", None, workers=2)
    assert report.ok and report.images == sum(COUNTS.values())


def test_prepare_mxnet_fixture_is_identity(tmp_path):
    """Preparing a canonical MXNet set reproduces its files exactly."""
    if not FIXTURES.is_dir():
        pytest.fail(f"insightface fixtures not found at {FIXTURES}")
    prepare("mx", FIXTURES / "mx_small", tmp_path / "mx", workers=1, expected=None)
    for name in ("train.rec", "train.idx", "property"):
        assert (tmp_path / "mx" / name).read_bytes() == (FIXTURES / "mx_small" / name).read_bytes()


def test_interrupted_prepare_leaves_nothing_half_written(folder, tmp_path, monkeypatch):
    out = tmp_path / "prepared" / "tiny"
    prepare("tiny", folder, out, workers=1, expected=None)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real_write = prepare_module.write_canonical

    def interrupted(out_dir, items, num_classes, image_size=(112, 112)):
        def some_then_stop():
            for number, item in enumerate(items):
                if number == 3:
                    raise KeyboardInterrupt
                yield item

        return real_write(out_dir, some_then_stop(), num_classes, image_size)

    monkeypatch.setattr(prepare_module, "write_canonical", interrupted)
    with pytest.raises(KeyboardInterrupt):
        prepare("tiny", folder, out, workers=1, expected=None, force=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # old set untouched
    assert sorted(p.name for p in out.parent.iterdir()) == ["tiny"]  # staging removed
    with pytest.raises(KeyboardInterrupt):
        prepare("tiny", folder, tmp_path / "fresh", workers=1, expected=None)
    assert not (tmp_path / "fresh").exists()


def test_prepare_refuses_to_overwrite_without_force(folder, tmp_path):
    out = tmp_path / "prepared" / "tiny"
    prepare("tiny", folder, out, workers=1, expected=None)
    with pytest.raises(DatasetError, match="already exists.*--force"):
        prepare("tiny", folder, out, workers=1, expected=None)
    (folder / "bob" / "1.jpg").write_bytes(encode_jpeg(make_image(999)))
    manifest = prepare("tiny", folder, out, workers=1, expected=None, force=True)
    assert manifest.images == sum(COUNTS.values()) + 1


def test_check_passes_on_a_clean_set(folder, tmp_path):
    out = tmp_path / "prepared" / "tiny"
    prepare("tiny", folder, out, workers=1, expected=None)
    report = check(out, expected(8, 3))
    assert report.ok, report.to_text()
    assert (report.images, report.identities) == (8, 3)
    assert report.per_identity_counts.tolist() == list(COUNTS.values())
    assert not (report.corrupt or report.duplicates or report.grayscale or report.size_anomalies)
    assert sum(n for *_, n in report.histogram()) == len(COUNTS)
    assert "OK" in report.to_text() and "images per identity" in report.to_text()


def test_check_reports_registry_mismatch(folder, tmp_path):
    out = tmp_path / "prepared" / "tiny"
    prepare("tiny", folder, out, workers=1, expected=None)
    report = check(out, expected(10, 4))
    assert not report.ok
    assert any("8 images, the registry expects 10" in text for text in report.problems)
    assert any("3 identities, the registry expects 4" in text for text in report.problems)


def test_check_finds_corrupt_duplicate_grayscale_and_odd_sizes(folder, tmp_path):
    (folder / "alice" / "0.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    (folder / "carol" / "3.png").write_bytes((folder / "bob" / "0.jpg").read_bytes())
    (folder / "carol" / "3.png").rename(folder / "carol" / "3.jpg")
    (folder / "alice" / "1.png").write_bytes(encode_png(make_image(5, gray=True)))
    (folder / "alice" / "2.jpg").write_bytes(encode_jpeg(make_image(6, size=96)))
    out = tmp_path / "prepared" / "tiny"
    prepare("tiny", folder, out, workers=1, expected=None)
    report = check(out, expected(8, 3), workers=2)
    assert not report.ok
    assert [index for index, _ in report.corrupt] == [0]
    assert "undecodable" in report.corrupt[0][1]
    assert report.grayscale == [1]
    assert report.size_anomalies == [(2, (96, 96, 3))]
    assert report.duplicates == [[3, 7]]
    assert any("spanning more than one identity" in text for text in report.warnings)
    assert json.loads(json.dumps(report.to_dict()))["ok"] is False


def test_check_detects_files_changed_after_prepare(folder, tmp_path):
    out = tmp_path / "prepared" / "tiny"
    prepare("tiny", folder, out, workers=1, expected=None)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["rec_sha256"] = "0" * 64
    (out / "manifest.json").write_text(json.dumps(manifest))
    report = check(out, None)
    assert not report.ok and any("sha256 differs" in text for text in report.problems)
    with pytest.raises(DatasetError, match="no prepared set here"):
        check(tmp_path / "nothing", None)


def damage_frame(prepared: Path, key: int) -> int:
    """Overwrite the magic word of record `key` in train.rec; returns its offset."""
    lines = (prepared / "train.idx").read_text().splitlines()
    offset = dict(line.split("\t") for line in lines)[str(key)]
    data = bytearray((prepared / "train.rec").read_bytes())
    data[int(offset) : int(offset) + 4] = b"\xde\xad\xbe\xef"
    (prepared / "train.rec").unlink()  # prepared files may be read-only
    (prepared / "train.rec").write_bytes(bytes(data))
    return int(offset)


@pytest.mark.parametrize("workers", [1, 2])
def test_check_reports_damaged_records_and_goes_on(folder, tmp_path, workers):
    """A damaged frame is a finding naming file, key and offset; the image pass still runs."""
    out = tmp_path / "prepared" / "tiny"
    prepare("tiny", folder, out, workers=1, expected=None)
    offsets = [damage_frame(out, key) for key in (2, 6)]
    report = check(out, expected(8, 3), workers=workers)
    assert not report.ok
    label_problem = next(text for text in report.problems if "label cannot be read" in text)
    assert label_problem.startswith("2 record(s)")
    for key, offset in zip((2, 6), offsets, strict=True):
        assert (
            f"train.rec: invalid magic 0xefbeadde at offset {offset} (key {key})" in label_problem
        )
    assert [index for index, _ in report.corrupt] == [1, 5]  # image pass over every record
    assert report.images == 8 and any("sha256 differs" in text for text in report.problems)
    assert any("2 label(s) unreadable" in text for text in report.warnings)


def test_check_reports_damaged_header_and_identity_records(folder, tmp_path):
    out = tmp_path / "prepared" / "tiny"
    prepare("tiny", folder, out, workers=1, expected=None)
    damage_frame(out, 10)  # identity record of the second identity (images are keys 1..8)
    report = check(out, None)
    assert [index for index, _ in report.corrupt] == [] and report.images == 8
    assert any("(key 10)" in text for text in report.problems)
    damage_frame(out, 0)  # the header: nothing else can be read, but a report still comes
    report = check(out, None)
    assert not report.ok and any("(key 0)" in text for text in report.problems)


# --- commands --------------------------------------------------------------------------------


@pytest.fixture
def catalog(tmp_path) -> Path:
    path = tmp_path / "datasets.yaml"
    path.write_text(
        textwrap.dedent("""\
        schema_version: 1
        training:
          tiny:
            display_name: Tiny
            identities: 3
            images: 8
            format: image_folder
            obtain: Ask the tiny-set office for the zip.
            license: none
            paper: none
            eval_targets: []
          wrong:
            display_name: Wrong counts
            identities: 4
            images: 8
            format: image_folder
            obtain: n/a
            license: none
            paper: none
            eval_targets: []
        evaluation: {}
        """)
    )
    return path


def test_cli_prepare_check_export(folder, tmp_path, catalog, capsys):
    root = str(tmp_path)
    common = ["--data-root", root, "--catalog", str(catalog)]
    assert cli_main(["prepare", "tiny", *common, "--workers", "1"]) == 0  # default --from raw/tiny
    assert (tmp_path / "prepared" / "tiny" / "manifest.json").exists()
    assert cli_main(["check", "tiny", *common, "--workers", "1"]) == 0
    assert "OK" in capsys.readouterr().out
    assert cli_main(["prepare", "wrong", "--from", str(folder), *common, "--workers", "1"]) == 0
    report_file = tmp_path / "report.json"
    assert cli_main(["check", "wrong", *common, "--workers", "1", "--json", str(report_file)]) == 1
    assert "identities, the registry expects 4" in capsys.readouterr().out
    assert json.loads(report_file.read_text())["ok"] is False
    out = tmp_path / "exported"
    assert cli_main(["export-images", str(tmp_path / "prepared" / "tiny"), str(out)]) == 0
    assert len(open_dataset(out)) == 8


def test_cli_missing_source_says_where_to_get_it(tmp_path, catalog, caplog):
    with caplog.at_level(logging.ERROR):
        code = cli_main(
            ["prepare", "tiny", "--data-root", str(tmp_path), "--catalog", str(catalog)]
        )
    assert code == 2
    assert "Ask the tiny-set office for the zip." in caplog.text
    assert "bench prepare tiny --from PATH" in caplog.text


@pytest.mark.parametrize("command", ["prepare", "check", "export-images"])
def test_cli_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main([command, "--help"])
    assert exit_info.value.code == 0
    assert f"bench {command}" in capsys.readouterr().out
