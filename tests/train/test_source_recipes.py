"""Every published source's recipe (configs/sources/*.yaml) loads, resolves, trains a few steps on
tiny data, records its colour order, and has a hash of its own (its rows never mix with THE
recipe's); THE recipe's hash ignores the keys the source recipes added while they are off."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pytest
import torch
from helpers import CONFIGS, make_set

from bench.train.checkpoint import load_checkpoint
from bench.train.config import HASH_OMITTED_AT_DEFAULT, OPERATIONAL_KEYS, TrainConfig, config_hash
from bench.train.loop import TrainingError, train
from bench.train.recipe import load_config, recipe_path

SOURCES = sorted((CONFIGS / "sources").glob("*.yaml"))
FIXED = CONFIGS / "ir50_arcface.yaml"
# Size knobs only: a width-8 backbone, batch 8, 2 epochs on CPU in fp32 (the maths keys stay).
TINY = [
    "backbone_kwargs.width=8", "embedding_size=32", "batch_size=8", "epochs=2", "precision=fp32",
    "channels_last=false", "num_workers=0", "num_threads=1", "deterministic=true",
    "log_every=1", "checkpoint_every=100", "progress=false",
]  # fmt: skip


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_set(tmp_path_factory.mktemp("set"), classes=4, per_class=4)  # 2 steps per epoch


def test_there_is_a_recipe_for_every_source_the_registry_names() -> None:
    import yaml

    registry = yaml.safe_load((CONFIGS.parent / "datasets.yaml").read_text(encoding="utf-8"))
    named = {s["recipe"] for s in registry.get("sources", {}).values() if "recipe" in s}
    assert {f"sources/{path.stem}" for path in SOURCES} <= named
    for recipe in named:
        assert recipe_path(recipe).is_file(), recipe


@pytest.mark.slow  # six short CPU trainings, ~3 s of CPU each
@pytest.mark.parametrize("path", SOURCES, ids=lambda path: path.stem)
def test_source_recipe_trains_and_has_its_own_hash(path: Path, data: Path, tmp_path: Path) -> None:
    recipe = load_config(recipe_path(f"sources/{path.stem}"))
    assert recipe.name == path.stem
    assert config_hash(recipe) != config_hash(load_config(FIXED))
    milestones = ["lr_milestones=[1]"] if recipe.lr_schedule == "step" else []
    cfg = load_config(path, TINY + milestones)
    final = load_checkpoint(train(cfg, data, tmp_path))
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    losses = [json.loads(line)["loss"] for line in lines if json.loads(line)["type"] == "train"]
    assert len(losses) == 4 and all(math.isfinite(loss) for loss in losses)
    assert final["input_colour"] == recipe.input_colour
    assert final["config"]["augmentation"] == recipe.augmentation


def test_source_recipes_are_distinct_recipes() -> None:
    hashes = {config_hash(load_config(path)) for path in SOURCES}
    assert len(hashes) == len(SOURCES)


def test_fixed_recipe_hash_leaves_out_the_new_keys_at_their_defaults() -> None:
    fixed = load_config(FIXED)
    assert all(
        getattr(fixed, key) == getattr(TrainConfig(), key) for key in HASH_OMITTED_AT_DEFAULT
    )
    payload = {
        key: value
        for key, value in fixed.to_dict().items()
        if key not in OPERATIONAL_KEYS | HASH_OMITTED_AT_DEFAULT | {"seed"}
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    assert config_hash(fixed) == hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
    for override in ["input_colour=bgr", "augmentation.erase={p: 0.5}", "loss_kwargs.x=1"]:
        assert config_hash(load_config(FIXED, [override])) != config_hash(fixed), override


def test_resume_from_a_checkpoint_older_than_the_new_keys(tmp_path: Path) -> None:
    data = make_set(tmp_path / "set", classes=4, per_class=4)  # 2 steps per epoch
    cfg = load_config(CONFIGS / "smoke.yaml", ["epochs=2"])
    train(cfg, data, tmp_path / "run")
    checkpoints = sorted((tmp_path / "run" / "checkpoints").glob("*.pt"))
    assert len(checkpoints) == 2  # steps 2 and 4
    checkpoints[1].unlink()  # as if the run had stopped after step 2
    state = load_checkpoint(checkpoints[0])
    for key in HASH_OMITTED_AT_DEFAULT:  # as written before these keys existed
        del state["config"][key]
    torch.save(state, checkpoints[0])
    with pytest.raises(TrainingError, match="input_colour"):
        train(load_config(CONFIGS / "smoke.yaml", ["epochs=2", "input_colour=bgr"]), data,
              tmp_path / "run", resume=True)  # fmt: skip
    resumed = train(cfg, data, tmp_path / "run", resume=True)
    assert load_checkpoint(resumed)["step"] == 4
