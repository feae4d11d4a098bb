"""The prepared set's content hash: in the manifest, in every result's provenance, in the report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import FIXTURES

from bench.catalog import load_catalog
from bench.data.export import export_images
from bench.data.manifest import read_manifest
from bench.data.prepare import prepare
from bench.eval.results import build_result
from bench.eval.run import run_info
from bench.formats import encode_png
from bench.report import build_reports


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    rng = np.random.default_rng(1)
    for identity in range(3):
        (tmp_path / "folder" / f"id{identity}").mkdir(parents=True)
        for index in range(2):
            pixels = rng.integers(0, 256, (112, 112, 3), dtype=np.uint8)
            (tmp_path / "folder" / f"id{identity}" / f"{index}.png").write_bytes(encode_png(pixels))
    return tmp_path / "folder"


def test_content_hash_follows_images_and_labels_not_packing(folder, tmp_path):
    first = prepare("a", folder, tmp_path / "a", workers=1)
    assert len(first.content_sha256) == 64
    assert read_manifest(tmp_path / "a").content_sha256 == first.content_sha256
    # Same images and labels read back from another format, another name, two workers: same hash.
    export_images(tmp_path / "a", tmp_path / "exported")
    again = prepare("b", tmp_path / "exported", tmp_path / "b", workers=2)
    assert again.content_sha256 == first.content_sha256
    assert again.rec_sha256 != "" and again.name != first.name
    # One image changed: another hash.
    image = folder / "id1" / "0.png"
    image.write_bytes(encode_png(np.zeros((112, 112, 3), np.uint8)))
    assert prepare("c", folder, tmp_path / "c", workers=1).content_sha256 != first.content_sha256


def test_manifest_without_content_hash_still_reads(folder, tmp_path):
    prepare("a", folder, tmp_path / "a", workers=1)
    path = tmp_path / "a" / "manifest.json"
    data = json.loads(path.read_text())
    del data["content_sha256"]
    path.write_text(json.dumps(data))
    assert read_manifest(tmp_path / "a").content_sha256 == ""
    assert run_info({}, "a", "r", tmp_path, prepared=tmp_path / "a")["data"]["content_sha256"] == (
        "unknown"
    )


def test_content_hash_reaches_provenance_and_leaderboard(folder, tmp_path):
    manifest = prepare("a", folder, tmp_path / "a", workers=1)
    fixture = FIXTURES / "results" / "dcface_0.5m" / "ir50_arcface-seed0.json"
    data = json.loads(fixture.read_text())
    run = run_info({"config": data["run"]["config"]}, "dcface_0.5m", "ir50_arcface", tmp_path,
                   data["run"]["recipe_hash"], prepared=tmp_path / "a")  # fmt: skip
    assert run["data"]["content_sha256"] == manifest.content_sha256
    result = build_result(data["model"], data["targets"], run=run)
    assert result["provenance"]["data"]["content_sha256"] == manifest.content_sha256
    results = tmp_path / "results"
    (results / "dcface_0.5m").mkdir(parents=True)
    (results / "dcface_0.5m" / "ir50_arcface-seed0.json").write_text(json.dumps(result))
    build_reports(results, tmp_path / "out", load_catalog(FIXTURES / "datasets.yaml"))
    markdown = (tmp_path / "out" / "leaderboard.md").read_text()
    assert f"data {manifest.content_sha256[:12]}" in markdown
