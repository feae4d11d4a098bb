"""The training loop on CPU: loss falls, exact resume, NaN stop, run-dir safety, CLI errors."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import CONFIGS, make_set

import bench.train.loop
from bench.core.errors import CatalogError, DatasetError
from bench.train.checkpoint import (
    checkpoint_name,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
)
from bench.train.loop import TrainingError, train
from bench.train.model import TrainModule
from bench.train.recipe import load_config

CONFIG = CONFIGS / "smoke.yaml"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_set(tmp_path_factory.mktemp("set"))


def _losses(run_dir: Path) -> list[float]:
    lines = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert lines[0]["type"] == "config"
    return [line["loss"] for line in lines if line["type"] == "train"]


def test_loss_falls_and_final_model_is_evaluable(data: Path, tmp_path: Path) -> None:
    final = train(load_config(CONFIG, ["epochs=5", "base_lr=0.05"]), data, tmp_path)
    losses = _losses(tmp_path)
    assert len(losses) == 15, losses
    assert np.mean(losses[-3:]) < 0.25 * np.mean(losses[:3]), losses
    assert "base_lr: 0.05" in (tmp_path / "config.yaml").read_text()
    checkpoint = load_checkpoint(final)
    assert checkpoint["step"] == 15 and checkpoint["config"]["base_lr"] == 0.05
    from bench.eval.embed import load_model

    embedder = load_model(final)  # the evaluator's reader: backbone, backbone_kwargs, model
    images = np.zeros((2, 112, 112, 3), np.uint8)
    assert embedder(images).shape == (2, checkpoint["embedding_size"])


def test_interrupt_and_resume_matches_uninterrupted(data, tmp_path, monkeypatch) -> None:
    overrides = ["epochs=2", "checkpoint_every=100"]  # checkpoints at epoch ends: steps 3, 6
    reference = load_checkpoint(train(load_config(CONFIG, overrides), data, tmp_path / "a"))

    real = bench.train.loop.recipe_learning_rate

    def interrupt_at_step_5(step, *args):
        if step == 5:  # steps 4 and 5 done since the step-3 checkpoint: they are lost
            raise KeyboardInterrupt
        return real(step, *args)

    monkeypatch.setattr(bench.train.loop, "recipe_learning_rate", interrupt_at_step_5)
    with pytest.raises(KeyboardInterrupt):
        train(load_config(CONFIG, overrides), data, tmp_path / "b")
    monkeypatch.setattr(bench.train.loop, "recipe_learning_rate", real)
    checkpoints = tmp_path / "b" / "checkpoints"
    assert [step for step, _ in list_checkpoints(checkpoints)] == [3]
    # A kill -9 during the next save would leave a partial tmp file: it must not matter.
    (checkpoints / f".{checkpoint_name(6)}.999.tmp").write_bytes(b"\x80partial")
    with pytest.raises(TrainingError, match="--resume"):
        train(load_config(CONFIG, overrides), data, tmp_path / "b")
    resumed = load_checkpoint(
        train(load_config(CONFIG, overrides), data, tmp_path / "b", resume=True)
    )
    assert resumed["step"] == reference["step"] == 6
    for part in ("model", "head"):
        for name, tensor in reference[part].items():
            assert torch.equal(resumed[part][name], tensor), name
    resumed_log = _losses(tmp_path / "b")
    assert resumed_log[-3:] == _losses(tmp_path / "a")[-3:]


def test_resume_refuses_a_changed_recipe(data, tmp_path) -> None:
    train(load_config(CONFIG, ["epochs=1"]), data, tmp_path)
    with pytest.raises(TrainingError, match="base_lr"):
        train(load_config(CONFIG, ["epochs=1", "base_lr=0.5"]), data, tmp_path, resume=True)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(data, tmp_path, monkeypatch) -> None:
    real_forward = TrainModule.forward
    calls = []

    def poisoned(self, images, labels):
        calls.append(1)
        loss = real_forward(self, images, labels)
        return loss * float("nan") if len(calls) >= 5 else loss

    monkeypatch.setattr(TrainModule, "forward", poisoned)
    with pytest.raises(TrainingError, match="NaN/inf"):
        train(load_config(CONFIG, ["epochs=2"]), data, tmp_path)
    assert not (tmp_path / "final.pt").exists()
    latest = load_checkpoint(latest_checkpoint(tmp_path / "checkpoints"))
    assert latest["step"] == 4
    assert all(torch.isfinite(t).all() for t in latest["model"].values() if t.is_floating_point())


def _cli_args(tmp_path: Path, dataset: str) -> argparse.Namespace:
    from bench.commands import train as command

    parser = argparse.ArgumentParser()
    command.configure(parser)
    return parser.parse_args(
        [dataset, "epochs=1", "--data-root", str(tmp_path), "--runs-root", str(tmp_path / "r")]
    )


def test_cli_explains_a_registered_but_missing_set(tmp_path: Path) -> None:
    from bench.catalog import load_catalog
    from bench.commands import train as command

    name = sorted(load_catalog().training)[0]
    with pytest.raises(DatasetError, match=rf"bench prepare {name} --from"):
        command.main(_cli_args(tmp_path, name))
    with pytest.raises(CatalogError, match="unknown training set"):
        command.main(_cli_args(tmp_path, "no_such_set"))


def test_unknown_verify_target_fails_before_the_first_step(data, tmp_path) -> None:
    cfg = load_config(CONFIG, ["verify_every=1", "verify_targets=lfv"])
    with pytest.raises(CatalogError, match="lfv"):
        train(cfg, data, tmp_path / "run", eval_root=tmp_path)
    assert not (tmp_path / "run").exists()
    with pytest.raises(TrainingError, match="eval_root"):
        train(cfg, data, tmp_path / "run")
