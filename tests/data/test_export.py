"""export-images: any supported set -> `<label>/<n>.<ext>` folders that read back byte for byte."""

from __future__ import annotations

import logging

import pytest
from test_prepare import encode_as, folder, make_image, write_folder, write_lmdb

from bench.core.errors import DatasetError, FormatError
from bench.data.export import export_images
from bench.data.prepare import prepare
from bench.formats import encode_jpeg, encode_png, open_dataset

__all__ = ["folder"]  # the fixture, imported so pytest finds it here


def test_export_images_round_trip(folder, tmp_path):
    out = tmp_path / "prepared" / "tiny"
    prepare("tiny", folder, out, workers=1, expected=None)
    exported = tmp_path / "exported"
    assert export_images(out, exported) == 8
    back = open_dataset(exported)
    prepared = open_dataset(out)
    assert [back.encoded(i) for i in range(len(back))] == [
        prepared.encoded(i) for i in range(len(prepared))
    ]
    assert sorted(p.name for p in (exported / "2").iterdir()) == [
        "0.jpg",
        "1.png",
        "2.jpg",
        "3.png",
    ]
    with pytest.raises(DatasetError, match="exported: already exists.*pass --force"):
        export_images(out, exported)


def test_export_images_zero_pads_so_name_order_is_label_order(tmp_path):
    write_folder(tmp_path / "src", {f"p{i:02d}": 1 for i in range(11)} | {"p99": 11})
    export_images(tmp_path / "src", tmp_path / "out")
    back = open_dataset(tmp_path / "out")
    assert back.identity_names[:3] == ["00", "01", "02"] and back.identity_names[-1] == "11"
    assert back.labels.tolist() == open_dataset(tmp_path / "src").labels.tolist()
    assert (tmp_path / "out" / "11" / "10.jpg").exists()


def test_export_images_force_replaces_the_old_export_entirely(tmp_path):
    big = write_lmdb(tmp_path / "big.lmdb", [(encode_jpeg(make_image(i)), 0) for i in range(3)])
    small = write_lmdb(tmp_path / "small.lmdb", [(encode_png(make_image(9)), 1)])
    out = tmp_path / "out" / "export"
    export_images(big, out)
    assert export_images(small, out, force=True) == 1
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == ["0", "0/0.png"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["export"]  # no staging left
    broken = write_lmdb(tmp_path / "broken.lmdb", [(encode_jpeg(make_image(1)), 0), (b"xx", 0)])
    with pytest.raises(FormatError, match="not an encoded image"):
        export_images(broken, out, force=True)
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == ["0", "0/0.png"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["export"]


def test_export_images_of_bmp_gif_webp_reads_back_byte_for_byte(tmp_path):
    items = [(encode_as(make_image(i), kind), i) for i, kind in enumerate(["BMP", "GIF", "WEBP"])]
    export_images(write_lmdb(tmp_path / "set.lmdb", items), tmp_path / "out")
    back = open_dataset(tmp_path / "out")
    assert back.paths == ["0/0.bmp", "1/0.gif", "2/0.webp"]
    assert [back.encoded(i) for i in range(len(back))] == items
    assert all(back[i][0].shape == (112, 112, 3) for i in range(len(back)))


def test_export_images_renumbers_label_gaps_densely(tmp_path, caplog):
    """Folder readers number identities 0..K-1, so folder names are the dense labels."""
    items = [(encode_jpeg(make_image(i)), label) for i, label in enumerate([9, 2, 9, 40])]
    with caplog.at_level(logging.WARNING):
        export_images(write_lmdb(tmp_path / "gaps.lmdb", items), tmp_path / "out")
    assert "renumbered in increasing order" in caplog.text
    back = open_dataset(tmp_path / "out")
    assert back.identity_names == ["0", "1", "2"]
    assert back.labels.tolist() == [0, 1, 1, 2]
    assert back.paths == ["0/0.jpg", "1/0.jpg", "1/1.jpg", "2/0.jpg"]
    assert [back.encoded(i)[0] for i in range(len(back))] == [items[i][0] for i in (1, 0, 2, 3)]
