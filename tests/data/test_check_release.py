"""`bench check` against the registry's release counts: verified counts fail, unverified warn."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from bench.catalog import load_catalog
from bench.cli import main as cli_main
from bench.data.check import check
from bench.data.prepare import prepare
from bench.formats import encode_png

ENTRY = """\
  {name}:
    display_name: {name}
    identities: 3
    images: 6
    format: image_folder
    obtain: n/a
    license: none
    paper: none
    eval_targets: []
    release: {{images: {images}, verified: {verified}}}
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A registry of the same 6-image folder under three release claims, prepared as each."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "folder"
    for identity in range(3):
        (folder / f"id{identity}").mkdir(parents=True)
        for index in range(2):
            pixels = rng.integers(0, 256, (112, 112, 3), dtype=np.uint8)
            (folder / f"id{identity}" / f"{index}.png").write_bytes(encode_png(pixels))
    entries = [
        ENTRY.format(name="right", images=6, verified="true"),
        ENTRY.format(name="unverified", images=7, verified="false"),
        ENTRY.format(name="verified", images=7, verified="true"),
    ]
    registry = "schema_version: 1\ntraining:\n" + "".join(entries) + "evaluation: {}\n"
    (tmp_path / "datasets.yaml").write_text(textwrap.dedent(registry))
    for name in ("right", "unverified", "verified"):
        prepare(name, folder, tmp_path / "prepared" / name, workers=1)
    return tmp_path


def test_unverified_count_warns_naming_the_entry_and_continues(root):
    entry = load_catalog(root / "datasets.yaml").training_set("unverified")
    report = check(root / "prepared" / "unverified", entry)
    assert report.ok, report.to_text()
    (warning,) = [text for text in report.warnings if "unverified count" in text]
    assert "6 images, the registry's unverified count is 7" in warning
    assert "training.unverified.release.images: 6" in warning and "verified: true" in warning
    assert report.expected_images == 7


def test_verified_count_mismatch_fails(root):
    entry = load_catalog(root / "datasets.yaml").training_set("verified")
    report = check(root / "prepared" / "verified", entry)
    assert not report.ok
    assert any("6 images, the registry expects 7" in text for text in report.problems)
    assert check(
        root / "prepared" / "right", load_catalog(root / "datasets.yaml").training_set("right")
    ).ok


def test_cli_exit_codes_follow_verification(root, capsys):
    common = ["--data-root", str(root), "--catalog", str(root / "datasets.yaml"), "--workers", "1"]
    assert cli_main(["check", "unverified", *common]) == 0
    assert "note: 6 images, the registry's unverified count is 7" in capsys.readouterr().out
    assert cli_main(["check", "verified", *common]) == 1
    assert "problem: 6 images, the registry expects 7" in capsys.readouterr().out
