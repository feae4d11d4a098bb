"""End to end: small .bin files + a tiny IR-18 checkpoint -> `bench eval` (checkpoint and its ONNX
export through `bench export-onnx`) -> result JSONs that agree; eval-set loading and caching.

Agreement tolerance between the checkpoint and its ONNX export: per-pair distances within 1e-4
(float32 reassociation in onnxruntime moves them by ~1e-6), and accuracy within one pair of a
set (a distance sitting on a 0.01 threshold step could flip; with these seeds none does)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from helpers import REPO

from backbones import build_backbone
from bench import cli
from bench.catalog import load_catalog
from bench.core.errors import DatasetError
from bench.core.io import sha256_file as file_sha256
from bench.eval.results import decode_issame, decode_scores, read_result
from bench.eval.run import evaluate_checkpoint_run
from bench.eval.sets import load_eval_data, load_eval_set
from bench.formats import encode_png, write_bin

ROOT = REPO
SETS = {"e2e_a": 30, "e2e_b": 23}  # 23 pairs: folds of 3,3,3,2,...


def make_bin(path, pairs: int, seed: int) -> np.ndarray:
    """Noise 'identities'; a same pair is one identity with two small perturbations."""
    rng = np.random.default_rng(seed)
    identities = rng.integers(0, 256, (pairs + 1, 112, 112, 3)).astype(np.int16)
    issame = np.arange(pairs) % 2 == 0
    encoded = []
    for index, same in enumerate(issame):
        first = identities[index]
        second = first if same else identities[index + 1]
        for face in (first, second):
            noisy = np.clip(face + rng.integers(-12, 13, face.shape), 0, 255).astype(np.uint8)
            encoded.append(encode_png(noisy))
    write_bin(path, encoded, issame)
    return issame


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Data root with two .bin files, a catalog naming them, and a tiny IR-18 checkpoint."""
    base = tmp_path_factory.mktemp("e2e")
    eval_dir = base / "data" / "eval"
    eval_dir.mkdir(parents=True)
    labels = {
        name: make_bin(eval_dir / f"{name}.bin", pairs, seed)
        for seed, (name, pairs) in enumerate(SETS.items())
    }
    evaluation = {
        name: {
            "display_name": name.upper(),
            "pairs": pairs,
            "file": f"{name}.bin",
            "obtain": f"made by the test for {name}",
        }
        for name, pairs in SETS.items()
    }
    evaluation["absent"] = {
        "display_name": "Absent",
        "pairs": 10,
        "file": "absent.bin",
        "obtain": "download absent.bin from nowhere",
    }
    catalog_path = base / "datasets.yaml"
    catalog_path.write_text(
        yaml.safe_dump({"schema_version": 1, "training": {}, "evaluation": evaluation})
    )
    torch.manual_seed(0)
    kwargs = {"width": 4, "embedding_size": 16}
    model = build_backbone("ir18", **kwargs).eval()
    checkpoint = base / "final.pt"
    torch.save(
        {
            "backbone": "ir18",
            "backbone_kwargs": kwargs,
            "model": model.state_dict(),
            "config": {"seed": 3, "lr": 0.1},
            "config_hash": "0123456789ab",
            "step": 40,
            "epoch": 2,
        },
        checkpoint,
    )
    return {
        "base": base,
        "root": base / "data",
        "catalog": catalog_path,
        "ckpt": checkpoint,
        "labels": labels,
    }


def run_eval(world, model, out, targets="e2e_a,e2e_b"):
    return cli.main(
        [
            "eval",
            "--model",
            str(model),
            "--targets",
            targets,
            "--data-root",
            str(world["root"]),
            "--catalog",
            str(world["catalog"]),
            "--device",
            "cpu",
            "--batch-size",
            "64",
            "--out",
            str(out),
        ]
    )


def test_checkpoint_and_onnx_export_give_the_same_result(world, capsys):
    base = world["base"]
    assert run_eval(world, world["ckpt"], base / "ckpt.json") == 0
    table = capsys.readouterr().out
    assert "E2E_A" in table and "mean" in table
    onnx_path = base / "model.onnx"
    assert cli.main(["export-onnx", str(world["ckpt"]), "--out", str(onnx_path)]) == 0
    assert run_eval(world, onnx_path, base / "onnx.json") == 0

    from_ckpt, from_onnx = read_result(base / "ckpt.json"), read_result(base / "onnx.json")
    assert from_ckpt["model"]["format"] == "checkpoint" and from_ckpt["model"]["backbone"] == "ir18"
    assert from_onnx["model"]["format"] == "onnx"
    assert from_ckpt["model"]["sha256"] == file_sha256(world["ckpt"])
    for name, pairs in SETS.items():
        a, b = from_ckpt["targets"][name], from_onnx["targets"][name]
        assert a["pairs"] == pairs and a["file_sha256"] == file_sha256(
            world["root"] / "eval" / f"{name}.bin"
        )
        assert np.array_equal(decode_issame(a["issame_b64"], pairs), world["labels"][name])
        np.testing.assert_allclose(
            decode_scores(a["scores_b64"]), decode_scores(b["scores_b64"]), atol=1e-4
        )
        assert abs(a["acc"] - b["acc"]) <= 1 / pairs
        assert a["xnorm"] == pytest.approx(b["xnorm"], rel=1e-4)
        assert a["acc"] > 0.5  # the tiny random network does separate some pairs
    assert from_ckpt["mean_acc"] == pytest.approx(
        np.mean([from_ckpt["targets"][name]["acc"] for name in SETS])
    )


def test_missing_target_fails_and_writes_nothing(world, caplog):
    out = world["base"] / "missing.json"
    assert run_eval(world, world["ckpt"], out, targets="e2e_a,absent") == 2
    assert (
        "absent.bin not found" in caplog.text and "download absent.bin from nowhere" in caplog.text
    )
    assert not out.exists()


def test_eval_set_cache_is_used_and_keyed_by_content(world, monkeypatch):
    catalog = load_catalog(world["catalog"])
    images, issame = load_eval_set("e2e_a", world["root"], catalog)
    assert images.shape == (60, 112, 112, 3) and images.dtype == np.uint8
    assert issame.dtype == bool and issame.size == 30
    cache_dir = world["root"] / "eval" / ".cache"
    sha = file_sha256(world["root"] / "eval" / "e2e_a.bin")
    assert (cache_dir / f"e2e_a-{sha[:16]}.npy").is_file()

    import bench.formats

    def no_decoding(path):
        raise AssertionError(f"{path} decoded again despite the cache")

    monkeypatch.setattr(bench.formats, "load_bin", no_decoding)
    cached = load_eval_data("e2e_a", world["root"], catalog)
    assert np.array_equal(cached.images, images) and np.array_equal(cached.issame, issame)


def test_changed_bin_is_decoded_again_and_pair_count_checked(world, tmp_path):
    root = tmp_path / "data"
    (root / "eval").mkdir(parents=True)
    make_bin(root / "eval" / "e2e_b.bin", 23, seed=7)
    catalog = load_catalog(world["catalog"])
    first = load_eval_data("e2e_b", root, catalog)
    make_bin(root / "eval" / "e2e_b.bin", 23, seed=8)
    second = load_eval_data("e2e_b", root, catalog)
    assert first.sha256 != second.sha256
    assert not np.array_equal(np.asarray(first.images), np.asarray(second.images))
    assert len(list((root / "eval" / ".cache").glob("e2e_b-*.issame.npy"))) == 2
    make_bin(root / "eval" / "e2e_b.bin", 20, seed=9)
    with pytest.raises(DatasetError, match="20 pairs, but the registry entry 'e2e_b' says 23"):
        load_eval_set("e2e_b", root, catalog)


def test_pipeline_entry_point_records_the_run(world, tmp_path):
    run_dir = tmp_path / "runs" / "demo" / "demo_cpu-seed3"
    run_dir.mkdir(parents=True)
    lines = [
        {"type": "config", "config": {}},
        {"type": "train", "step": 10, "time": 100.0, "images_per_s": 50.0},
        {"type": "train", "step": 20, "time": 130.0, "images_per_s": 70.0},
    ]
    (run_dir / "log.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = tmp_path / "results" / "demo" / "demo_cpu-seed3.json"
    result = evaluate_checkpoint_run(
        checkpoint=world["ckpt"],
        targets=["e2e_b"],
        data_root=world["root"],
        catalog=load_catalog(world["catalog"]),
        dataset="demo",
        recipe="demo_cpu",
        run_dir=run_dir,
        out=out,
        device="cpu",
        batch_size=32,
    )
    assert read_result(out) == json.loads(json.dumps(result))
    run = result["run"]
    assert (run["dataset"], run["recipe"], run["seed"]) == ("demo", "demo_cpu", 3)
    assert run["config"] == {"seed": 3, "lr": 0.1} and run["recipe_hash"] == "0123456789ab"
    assert run["train"] == {
        "steps": 40,
        "epochs": 2,
        "wall_s": 30.0,
        "images_per_s": 60.0,
        "log": str(run_dir / "log.jsonl"),
    }


def test_recipe_hash_comes_from_the_caller_when_the_checkpoint_lacks_it(tmp_path):
    from bench.eval.run import run_info
    from bench.train.config import config_hash
    from bench.train.recipe import load_config

    config = load_config(ROOT / "configs" / "smoke.yaml")
    checkpoint = {"config": config.to_dict(), "step": 1}
    info = run_info(checkpoint, "demo", "smoke", tmp_path, config_hash(config))
    assert info["recipe_hash"] == config_hash(config)
    assert run_info(checkpoint, "demo", "smoke", tmp_path)["recipe_hash"] == "unknown"
    assert info["train"]["wall_s"] == 0.0  # no log.jsonl: zeros (and a warning), not an error


def test_train_stats_leave_out_the_time_between_interruption_and_resume(tmp_path):
    from bench.eval.run import _train_log_stats

    day = 86_400.0
    records = [
        {"type": "config"},
        {"type": "train", "time": 100.0, "images": 640, "elapsed": 10.0},
        {"type": "train", "time": 112.0, "images": 640, "elapsed": 10.0},  # 2 s checkpointing
        {"type": "config"},  # resumed a day later
        {"type": "train", "time": day + 20.0, "images": 1280, "elapsed": 20.0},
    ]
    log_path = tmp_path / "log.jsonl"
    log_path.write_text("\n".join(json.dumps(record) for record in records))
    stats = _train_log_stats(log_path)
    assert stats["wall_s"] == pytest.approx((112 - 100 + 10) + 20)
    assert stats["images_per_s"] == pytest.approx(2560 / 40)
    # A log without per-window images/elapsed (older runs): the mean of the window speeds.
    log_path.write_text(
        "\n".join(
            json.dumps({"type": "train", "time": t, "images_per_s": v})
            for t, v in ((0.0, 10.0), (5.0, 30.0))
        )
    )
    assert _train_log_stats(log_path) == {"wall_s": 5.0, "images_per_s": 20.0}
