"""Demo registry entries -> training folders and .bin files: determinism, protocols, disjointness."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import pytest
import yaml
from test_render import chroma_features

from bench.catalog import Catalog, load_catalog
from bench.cli import main as cli_main
from bench.core.errors import CatalogError, DatasetError
from bench.core.paths import default_catalog_path
from bench.demo import data as demo
from bench.demo.params import identity_vector, lookalike_vector
from bench.eval.protocol import verify
from bench.formats import load_bin, open_dataset

CATALOG = load_catalog()


def _tiny_catalog(identities: int = 3, images: int = 2, pairs: int = 10) -> Catalog:
    """The registry's demo entries with their real params and seeds, shrunk for tests."""
    training = {
        name: dataclasses.replace(entry, demo=dataclasses.replace(
            entry.demo, identities=identities, images_per_identity=images))
        for name, entry in CATALOG.training.items() if entry.demo is not None
    }  # fmt: skip
    evaluation = {
        name: dataclasses.replace(entry, pairs=pairs, demo=dataclasses.replace(
            entry.demo, identities=identities))
        for name, entry in CATALOG.evaluation.items() if entry.demo is not None
    }  # fmt: skip
    return Catalog(path=CATALOG.path, training=training, evaluation=evaluation)


def _digest(path: Path) -> str:
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    hasher = hashlib.sha256()
    for file in files:
        hasher.update(str(file.relative_to(path) if path.is_dir() else "").encode())
        hasher.update(file.read_bytes())
    return hasher.hexdigest()


def test_registry_has_two_training_sets_of_different_diversity_and_three_protocols():
    training = [e for e in CATALOG.training.values() if e.demo is not None]
    assert len({e.demo.params["diversity"] for e in training}) >= 2
    protocols = {e.demo.protocol for e in CATALOG.evaluation.values() if e.demo is not None}
    assert protocols == set(demo.PROTOCOLS)
    for entry in training:  # the registry's totals agree with the generator's sizes
        assert entry.identities == entry.demo.identities
        assert entry.images == entry.demo.identities * entry.demo.images_per_identity
        for target in entry.eval_targets:
            assert CATALOG.eval_set(target).demo is not None


def test_training_set_is_byte_identical_and_opens_as_image_folder(tmp_path):
    entry = _tiny_catalog().training["demo_diverse"]
    first = demo.make_training_set(entry, tmp_path / "a", workers=1)
    second = demo.make_training_set(entry, tmp_path / "b", workers=1)
    assert _digest(first) == _digest(second)
    other = dataclasses.replace(entry, demo=dataclasses.replace(entry.demo, seed=999))
    assert _digest(demo.make_training_set(other, tmp_path / "c", workers=1)) != _digest(first)
    dataset = open_dataset(first)
    assert len(dataset) == 6 and dataset.labels.tolist() == [0, 0, 1, 1, 2, 2]
    image, label = dataset[3]
    assert image.shape == (112, 112, 3) and image.dtype == np.uint8 and label == 1
    assert not list(tmp_path.glob(".*generating*"))  # no staging directory left behind


def test_worker_processes_give_the_same_bytes(tmp_path):
    entry = _tiny_catalog(identities=4, pairs=40).evaluation["demo_pose"]  # 80 slots: 2 jobs
    one = demo.make_eval_set(entry, tmp_path / "one.bin", workers=1)
    two = demo.make_eval_set(entry, tmp_path / "two.bin", workers=2)
    assert _digest(one) == _digest(two)


def test_eval_bin_roundtrip_and_protocols():
    catalog = _tiny_catalog(identities=5, pairs=20)
    for name in ("demo_random", "demo_pose", "demo_lookalike"):
        entry = catalog.evaluation[name]
        pairs, issame = demo.plan_pairs(entry)
        assert len(pairs) == entry.pairs and sum(issame) == entry.pairs // 2
        assert issame != sorted(issame, reverse=True)  # shuffled, not all genuine first
        for (first, second), same in zip(pairs, issame, strict=True):
            same_person = first[:2] == second[:2]
            assert same_person == same
            if entry.demo.protocol == "lookalike" and not same:
                assert first[0] == second[0] and second[1] == 1  # the look-alike twin
            if entry.demo.protocol == "pose":
                assert abs(first[3]) < 0.2 * abs(second[3])


def test_eval_bin_written_and_deterministic(tmp_path):
    entry = _tiny_catalog(identities=4, pairs=12).evaluation["demo_lookalike"]
    path = demo.make_eval_set(entry, tmp_path / "x.bin", workers=1)
    images, issame = load_bin(path)
    assert len(images) == 24 and issame.tolist() == demo.plan_pairs(entry)[1]
    assert images[0].shape == (112, 112, 3)
    again = demo.make_eval_set(entry, tmp_path / "y.bin", workers=1)
    assert path.read_bytes() == again.read_bytes()


def test_evaluation_identities_are_disjoint_from_training():
    demo.check_disjoint_seeds(CATALOG)
    train = [identity_vector(e.demo.seed, i, e.demo.params.get("similarity", 0.3))
             for e in CATALOG.training.values() if e.demo is not None
             for i in range(e.demo.identities)]  # fmt: skip
    evaluation = []
    for entry in (e for e in CATALOG.evaluation.values() if e.demo is not None):
        spec = entry.demo
        for i in range(spec.identities):
            z = identity_vector(spec.seed, i, spec.params.get("similarity", 0.3))
            evaluation += [z, lookalike_vector(z, spec.seed, i, 0.35)]
    train, evaluation = np.stack(train), np.stack(evaluation)
    # Compare shapes of faces, not scale: undo each set's similarity shrinkage first.
    train /= np.linalg.norm(train, axis=1, keepdims=True)
    evaluation /= np.linalg.norm(evaluation, axis=1, keepdims=True)
    closest = 1.0 - (evaluation @ train.T).max()
    within = 1.0 - np.sort(train @ train.T, axis=1)[:, -2].max()  # closest training neighbours
    assert closest > 1e-6 and closest >= 0.5 * within


def test_duplicate_demo_seed_is_refused():
    catalog = _tiny_catalog()
    seed = catalog.training["demo_consistent"].demo.seed
    random = catalog.evaluation["demo_random"]
    evaluation = dict(catalog.evaluation)
    evaluation["demo_random"] = dataclasses.replace(
        random, demo=dataclasses.replace(random.demo, seed=seed)
    )
    with pytest.raises(CatalogError, match="seed"):
        demo.check_disjoint_seeds(dataclasses.replace(catalog, evaluation=evaluation))


def test_pixel_baseline_verification_above_chance_and_lookalikes_harder(tmp_path):
    """The simple baseline on the registry's eval protocols (fewer pairs): above chance on
    random pairs, and look-alike negatives are harder than random ones."""
    metrics = {}
    for name in ("demo_random", "demo_lookalike"):
        real = CATALOG.evaluation[name]
        entry = dataclasses.replace(real, pairs=400, demo=dataclasses.replace(
            real.demo, identities=40))  # fmt: skip
        images, issame = load_bin(demo.make_eval_set(entry, tmp_path / f"{name}.bin", workers=1))
        metrics[name] = verify(chroma_features(np.stack(images)), issame)
    assert metrics["demo_random"]["acc"] > 0.56
    assert metrics["demo_random"]["auc"] > metrics["demo_lookalike"]["auc"] + 0.05


def test_ensure_is_idempotent_and_detects_a_changed_entry(tmp_path):
    catalog = _tiny_catalog()
    path = demo.ensure_demo_data("demo_consistent", tmp_path, catalog, workers=1)
    stamp = (path / "00000" / "000.jpg").stat().st_mtime_ns
    assert demo.ensure_demo_data("demo_consistent", tmp_path, catalog, workers=1) == path
    assert (path / "00000" / "000.jpg").stat().st_mtime_ns == stamp
    changed = dict(catalog.training)
    entry = changed["demo_consistent"]
    changed["demo_consistent"] = dataclasses.replace(
        entry, demo=dataclasses.replace(entry.demo, images_per_identity=3)
    )
    changed_catalog = dataclasses.replace(catalog, training=changed)
    with pytest.raises(DatasetError, match="--force"):
        demo.ensure_demo_data("demo_consistent", tmp_path, changed_catalog, workers=1)
    demo.ensure_demo_data("demo_consistent", tmp_path, changed_catalog, workers=1, force=True)
    assert len(open_dataset(path)) == 9
    with pytest.raises(DatasetError, match="not a demo entry"):
        demo.ensure_demo_data("lfw", tmp_path, CATALOG)


def test_prepare_accepts_a_demo_training_set(tmp_path):
    from bench.data.prepare import prepare

    entry = _tiny_catalog().training["demo_consistent"]
    raw = demo.make_training_set(entry, tmp_path / "raw", workers=1)
    manifest = prepare(entry.name, raw, tmp_path / "prepared", workers=1)
    assert (manifest.images, manifest.identities) == (6, 3)


def _tiny_yaml(tmp_path: Path) -> Path:
    document = yaml.safe_load(default_catalog_path().read_text(encoding="utf-8"))
    for section in ("training", "evaluation"):
        for body in document[section].values():
            if "demo" in body:
                body["demo"]["identities"] = 3
                if section == "training":
                    body["demo"]["images_per_identity"] = 2
                    body["identities"], body["images"] = 3, 6
                else:
                    body["pairs"] = 6
    path = tmp_path / "datasets.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def test_cli_generates_all_and_previews(tmp_path, capsys):
    registry = _tiny_yaml(tmp_path)
    root = tmp_path / "data"
    assert cli_main(["synth", "--catalog", str(registry)]) == 2  # nothing named
    args = [
        "synth",
        "--all",
        "--catalog",
        str(registry),
        "--data-root",
        str(root),
        "--workers",
        "1",
    ]
    assert cli_main(args) == 0
    assert len(open_dataset(root / "raw" / "demo_diverse")) == 6
    assert len(load_bin(root / "eval" / "demo_pose.bin")[1]) == 6
    sheet = tmp_path / "sheet.png"
    preview = ["synth", "demo_consistent", "demo_random", "--catalog", str(registry),
               "--preview", str(sheet), "--rows", "2", "--columns", "4"]  # fmt: skip
    assert cli_main(preview) == 0
    from PIL import Image

    with Image.open(sheet) as image:  # 2 identity rows + 2 pair rows, 4 tiles each
        assert image.size == (4 * 114 + 2, 4 * 114 + 2)
    assert cli_main(["synth", "demo_randm", "--catalog", str(registry)]) == 2
