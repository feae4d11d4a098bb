"""The IJB package reader on files in insightface's exact layout, its errors, and `bench ijb`
end to end on the procedural mini package (features file, and a tiny model with alignment)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from backbones import build_backbone
from bench import cli
from bench.core.errors import DatasetError, FormatError
from bench.demo.ijb import MiniIJB, write_mini_ijb
from bench.eval.ijb import features as ijb_features
from bench.eval.ijb.package import read_package

SPEC = MiniIJB(subjects=4, probes_per_subject=1, media_per_template=(1, 2))


def write_by_hand(root):
    """Three images, two templates, the 1:N files: every file as the real package spells it."""
    meta = root / "IJBC" / "meta"
    meta.mkdir(parents=True)
    (root / "IJBC" / "loose_crop").mkdir()
    (meta / "ijbc_face_tid_mid.txt").write_text("1.jpg 1 69544\n2.jpg 1 69544\n3.jpg 11065 70000\n")
    (meta / "ijbc_name_5pts_score.txt").write_text(
        "1.jpg 46.060 62.026 87.785 60.323 68.851 77.656 52.162 99.875 86.450 98.648 0.999\n"
        "2.jpg 1 2 3 4 5 6 7 8 9 10 0.5\n"
        "3.jpg 1 2 3 4 5 6 7 8 9 10 0.25\n"
    )
    (meta / "ijbc_template_pair_label.txt").write_text("1 11065 0\n11065 1 1\n")
    header = "TEMPLATE_ID,SUBJECT_ID,FILENAME,SIGHTING_ID\n"
    (meta / "ijbc_1N_gallery_G1.csv").write_text(header + "1,7,img/1.jpg,1\n1,7,img/2.jpg,2\n")
    (meta / "ijbc_1N_gallery_G2.csv").write_text(header + "11065,8,img/3.jpg,3\n")
    (meta / "ijbc_1N_probe_mixed.csv").write_text(header + "11065,8,img/3.jpg,3\n")
    return meta


def test_reads_the_exact_layout(tmp_path):
    write_by_hand(tmp_path)
    package = read_package(tmp_path, "ijbc")
    assert package.image_names == ["1.jpg", "2.jpg", "3.jpg"]
    assert package.templates.tolist() == [1, 1, 11065]
    assert package.medias.tolist() == [69544, 69544, 70000]
    np.testing.assert_allclose(package.landmarks[0, 4], [86.450, 98.648], rtol=1e-6)
    np.testing.assert_allclose(package.landmarks[1], [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10]])
    np.testing.assert_allclose(package.detector_scores, [0.999, 0.5, 0.25], rtol=1e-6)
    assert package.pairs.tolist() == [[1, 11065, 0], [11065, 1, 1]]
    assert package.galleries["G1"].templates.tolist() == [1, 1]
    assert package.galleries["G2"].subjects.tolist() == [8]
    assert package.probes.templates.tolist() == [11065]


def test_wrong_layout_says_where_to_point(tmp_path):
    write_by_hand(tmp_path)
    with pytest.raises(DatasetError, match=r"CONTAINS IJBC/"):
        read_package(tmp_path / "IJBC", "ijbc")
    with pytest.raises(DatasetError, match=r"IJBB: not found"):
        read_package(tmp_path, "ijbb")


@pytest.mark.parametrize(
    "name", ["ijbc_1N_probe_mixed.csv", "ijbc_template_pair_label.txt", "ijbc_name_5pts_score.txt"]
)
def test_missing_file_is_named(tmp_path, name):
    meta = write_by_hand(tmp_path)
    (meta / name).unlink()
    with pytest.raises(DatasetError, match=rf"{name}: missing file"):
        read_package(tmp_path, "ijbc")


@pytest.mark.parametrize(
    ("name", "line", "message"),
    [
        ("ijbc_name_5pts_score.txt", "2.jpg 1 2 3 4 5 6 7 8 9 0.5", r"line 2: expected .* got 11"),
        ("ijbc_name_5pts_score.txt", "3.jpg 1 2 3 4 5 6 7 8 9 x 0.5", r"line 2: image '3.jpg'"),
        ("ijbc_face_tid_mid.txt", "2.jpg 1", r"line 2: expected 'IMAGE TID MID'"),
        ("ijbc_face_tid_mid.txt", "2.jpg one 2", r"line 2: 'one' is not an integer"),
        ("ijbc_template_pair_label.txt", "1 11065", r"line 2: expected 'TID1 TID2 LABEL'"),
        ("ijbc_template_pair_label.txt", "1 11065 2", r"line 2: label 2 is not 0 or 1"),
        ("ijbc_1N_gallery_G1.csv", "1;7", r"line 2: expected TEMPLATE_ID,SUBJECT_ID"),
    ],
)
def test_malformed_line_is_named(tmp_path, name, line, message):
    meta = write_by_hand(tmp_path)
    lines = (meta / name).read_text().splitlines()
    lines[1] = line
    (meta / name).write_text("\n".join(lines) + "\n")
    with pytest.raises(FormatError, match=rf"{name} {message}"):
        read_package(tmp_path, "ijbc")


def test_truncated_landmark_file_is_an_error(tmp_path):
    meta = write_by_hand(tmp_path)
    path = meta / "ijbc_name_5pts_score.txt"
    path.write_text(path.read_text()[:-10])  # cut inside the last row
    with pytest.raises(FormatError, match=r"name_5pts_score.txt line 3: expected"):
        read_package(tmp_path, "ijbc")


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    return write_mini_ijb(tmp_path_factory.mktemp("ijb"), "ijbc", SPEC)


def run(*argv):
    return cli.main(["ijb", *map(str, argv)])


def test_features_file_and_unknown_template(mini, tmp_path):
    package = read_package(mini, "ijbc")
    features = np.random.default_rng(0).standard_normal((len(package.image_names), 16))
    np.save(tmp_path / "f.npy", features.astype(np.float32))
    out = tmp_path / "r.json"
    assert (
        run(
            "--root",
            mini,
            "--target",
            "ijbc",
            "--features",
            tmp_path / "f.npy",
            "--no-flip",
            "--out",
            out,
        )
        == 0
    )
    result = json.loads(out.read_text())
    assert result["flags"] == {
        "flip": False,
        "image_norm": False,
        "detector_score": True,
        "name": "N0D1F0",
    }
    assert set(result["verification"]["tar_at_far"]) == {
        "1e-06",
        "1e-05",
        "0.0001",
        "0.001",
        "0.01",
        "0.1",
    }
    assert set(result["identification"]["galleries"]) == {"G1", "G2"}
    assert set(result["identification"]["mean"]["tpir_at_fpir"]) == {
        "0.0001",
        "0.001",
        "0.01",
        "0.1",
    }
    np.save(tmp_path / "short.npy", features[:-1].astype(np.float32))
    assert (
        run("--root", mini, "--target", "ijbc", "--features", tmp_path / "short.npy", "--out", out)
        == 2
    )
    pairs = mini / "IJBC" / "meta" / "ijbc_template_pair_label.txt"
    original = pairs.read_text()
    try:
        pairs.write_text(original + "1 424242 0\n")
        assert (
            run("--root", mini, "--target", "ijbc", "--features", tmp_path / "f.npy", "--out", out)
            == 2
        )
    finally:
        pairs.write_text(original)


@pytest.mark.slow
def test_model_path_aligns_embeds_caches_and_saves(mini, tmp_path, monkeypatch):
    torch.manual_seed(0)
    kwargs = {"width": 4, "embedding_size": 8}
    checkpoint = tmp_path / "tiny.pt"
    model = build_backbone("ir18", **kwargs).eval()
    torch.save(
        {"backbone": "ir18", "backbone_kwargs": kwargs, "model": model.state_dict()}, checkpoint
    )
    common = ["--root", mini, "--target", "ijbc", "--model", checkpoint, "--device", "cpu"]
    common += ["--cache", tmp_path / "cache", "--workers", "1", "--batch-size", "16"]
    saved = tmp_path / "saved.npy"
    assert run(*common, "--save-features", saved, "--out", tmp_path / "a.json") == 0
    features = np.load(saved)
    assert features.shape == (len(read_package(mini, "ijbc").image_names), 16)
    # The second half is the mirrored image's embedding: not the same as the first.
    assert not np.allclose(features[:, :8], features[:, 8:])

    demo = ["--demo", "--root", tmp_path / "demo", "--target", "ijbb", *common[4:]]
    assert run(*demo, "--out", tmp_path / "demo.json") == 0  # writes the mini IJB-B, then scores
    assert set(json.loads((tmp_path / "demo.json").read_text())["identification"]["galleries"]) == {
        "S1",
        "S2",
    }

    def no_embedding(*args, **kwargs):
        raise AssertionError("features should have come from the cache")

    monkeypatch.setattr(ijb_features, "embed_package", no_embedding)
    assert run(*common, "--image-norm", "--out", tmp_path / "b.json") == 0
    assert (
        run(
            "--root",
            mini,
            "--target",
            "ijbc",
            "--features",
            saved,
            "--out",
            tmp_path / "c.json",
            "--image-norm",
        )
        == 0
    )
    from_cache = json.loads((tmp_path / "b.json").read_text())
    from_file = json.loads((tmp_path / "c.json").read_text())
    assert from_cache["verification"] == from_file["verification"]
    assert from_cache["identification"] == from_file["identification"]
    assert from_cache["model"]["backbone"] == "ir18"


def test_registry_knows_ijb_packages(tmp_path):
    import yaml

    from bench.catalog import load_catalog
    from bench.core.errors import CatalogError
    from bench.eval.sets import eval_set_path

    catalog = load_catalog()
    assert {catalog.eval_set(name).kind for name in ("ijbb", "ijbc")} == {"ijb"}
    assert catalog.eval_set("ijbc").file == "IJBC" and catalog.eval_set("lfw").kind == "bin"
    with pytest.raises(DatasetError, match=r"bench ijb --target ijbc"):
        eval_set_path("ijbc", tmp_path, catalog)
    entry = {"display_name": "X", "pairs": 3, "file": "X", "obtain": "-", "kind": "zip"}
    path = tmp_path / "datasets.yaml"
    path.write_text(
        yaml.safe_dump({"schema_version": 1, "training": {}, "evaluation": {"x": entry}})
    )
    with pytest.raises(CatalogError, match=r"'zip' is not one of bin, ijb"):
        load_catalog(path)
