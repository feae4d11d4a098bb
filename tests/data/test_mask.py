"""`bench prepare NAME --from PARENT --mask FILE`: a set made of the records a mask selects."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from bench.cli import main as cli_main
from bench.core.errors import DatasetError
from bench.data.manifest import read_manifest
from bench.data.prepare import prepare
from bench.formats import RecordIODataset, encode_png, open_dataset


@pytest.fixture
def parent(tmp_path: Path) -> Path:
    """A 4-identity x 3-image parent as image folders under raw/parent (a registered name)."""
    rng = np.random.default_rng(2)
    root = tmp_path / "raw" / "parent"
    for identity in range(4):
        (root / f"id{identity}").mkdir(parents=True)
        for index in range(3):
            pixels = rng.integers(0, 256, (112, 112, 3), dtype=np.uint8)
            (root / f"id{identity}" / f"{index}.png").write_bytes(encode_png(pixels))
    return root


def test_mask_selects_records_keeps_bytes_and_renumbers_labels(parent, tmp_path):
    source = open_dataset(parent)
    mask = np.array([10, 3, 9, 4], dtype=np.int32)  # identities 3 and 1, out of order
    np.save(tmp_path / "mask.npy", mask)
    manifest = prepare("child", parent, tmp_path / "child", mask=tmp_path / "mask.npy")
    assert (manifest.images, manifest.identities) == (4, 2)
    prepared = RecordIODataset(tmp_path / "child")
    # Grouped by identity (parent identity 1 -> label 0, 3 -> 1), mask order kept within one.
    expected = [source.encoded(index) for index in (3, 4, 10, 9)]
    got = [prepared.encoded(index) for index in range(4)]
    assert [bytes(buf) for buf, _ in got] == [bytes(buf) for buf, _ in expected]
    assert [label for _, label in got] == [0, 0, 1, 1]
    assert read_manifest(tmp_path / "child").content_sha256 == manifest.content_sha256


@pytest.mark.parametrize(
    ("mask", "message"),
    [
        (np.array([0, 12]), "index 12 is outside"),
        (np.array([1, 1]), "record 1 is selected more than once"),
        (np.array([[0, 1]]), "1-D integer array"),
        (np.array([0.0, 1.0]), "1-D integer array"),
        (np.array([], dtype=np.int64), "selects no record"),
        (np.array([{"a": 1}], dtype=object), "not a NumPy .npy array of record indices"),
    ],
)
def test_bad_masks_say_what_is_wrong(parent, tmp_path, mask, message):
    np.save(tmp_path / "mask.npy", mask, allow_pickle=True)
    with pytest.raises(DatasetError, match=message) as error:
        prepare("child", parent, tmp_path / "child", mask=tmp_path / "mask.npy")
    assert "mask.npy" in str(error.value)
    assert not (tmp_path / "child").exists()


def test_cli_prepares_a_masked_set_from_a_registered_parent(parent, tmp_path, capsys, caplog):
    entry = """\
      {name}:
        display_name: {name}
        identities: {identities}
        images: {images}
        format: image_folder
        obtain: n/a
        license: none
        paper: none
        eval_targets: []
    """
    registry = tmp_path / "datasets.yaml"
    registry.write_text(
        "schema_version: 1\ntraining:\n"
        + textwrap.indent(
            textwrap.dedent(entry.format(name="parent", identities=4, images=12)), "  "
        )
        + textwrap.indent(textwrap.dedent(entry.format(name="child", identities=2, images=6)), "  ")
        + "evaluation: {}\n"
    )
    np.save(tmp_path / "mask.npy", np.arange(6))
    common = ["--data-root", str(tmp_path), "--catalog", str(registry), "--workers", "1"]
    assert (
        cli_main(
            ["prepare", "child", "--from", "parent", "--mask", str(tmp_path / "mask.npy"), *common]
        )
        == 0
    )
    assert "prepared child: 6 images, 2 identities" in capsys.readouterr().out
    assert cli_main(["check", "child", *common]) == 0
    assert cli_main(["prepare", "child", "--mask", str(tmp_path / "mask.npy"), *common]) != 0
    assert "pass it with --from PARENT" in caplog.text
