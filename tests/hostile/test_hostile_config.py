"""Recipes and the registry (issue 18 items 9, 10): a recipe that leaves a key out, repeats one,
is not UTF-8 or asks for seed -1 is refused naming file and key; `base:` inheritance resolves to
the values the recipes had; impossible registry entries are refused; CUDA is checked up front."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import yaml
from helpers import CONFIGS, FIXTURES, make_set

from bench.catalog import load_catalog
from bench.cli import main as cli
from bench.core.errors import CatalogError, ConfigError
from bench.train.config import TrainConfig, config_hash
from bench.train.recipe import load_config, mandatory_keys

CATALOG = FIXTURES / "datasets.yaml"
DATASET = "uiface_0.5m"
THE_RECIPE = (CONFIGS / "ir50_arcface.yaml").read_text(encoding="utf-8")


def _train(tmp_path, recipe, *overrides) -> list[str]:
    return ["train", DATASET, *overrides, "--catalog", str(CATALOG), "--recipe", str(recipe),
            "--data-root", str(tmp_path / "data"), "--runs-root", str(tmp_path / "runs")]  # fmt: skip


def _error(caplog) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.levelname == "ERROR")


def _without(text: str, key: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.startswith(f"{key}:")) + "\n"


def test_a_recipe_missing_a_key_is_refused_naming_file_and_key(tmp_path, caplog):
    recipe = tmp_path / "mine.yaml"
    recipe.write_text(_without(THE_RECIPE, "batch_size"), encoding="utf-8")
    assert cli(_train(tmp_path, recipe)) == 2
    message = _error(caplog)
    assert str(recipe) in message and "batch_size not stated" in message and "base:" in message


def test_a_recipe_inherits_explicitly_from_its_base(tmp_path):
    recipe = tmp_path / "mine.yaml"
    recipe.write_text("base: ir50_arcface\nname: mine\nbatch_size: 64\n", encoding="utf-8")
    mine, the = load_config(recipe), load_config(CONFIGS / "ir50_arcface.yaml")
    assert mine.batch_size == 64 and mine.name == "mine"
    assert dataclasses.replace(mine, batch_size=the.batch_size, name=the.name) == the


def test_recipes_in_configs_state_or_inherit_every_key():
    """The converted recipes resolve to the values their complete files had (same hash)."""
    for path in sorted(CONFIGS.glob("*.yaml")):
        cfg = load_config(path)
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        if "base" not in raw:
            assert mandatory_keys() <= set(raw), f"{path} is complete or names a base"
        assert config_hash(cfg) == config_hash(dataclasses.replace(TrainConfig(), **{
            key: getattr(cfg, key) for key in raw if key != "base"}))  # fmt: skip


def test_a_base_that_inherits_from_itself_is_refused(tmp_path):
    (tmp_path / "a.yaml").write_text("base: b.yaml\n", encoding="utf-8")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="inherits from itself"):
        load_config(tmp_path / "a.yaml")


def test_a_repeated_key_in_a_recipe_is_refused(tmp_path, caplog):
    recipe = tmp_path / "twice.yaml"
    recipe.write_text(THE_RECIPE + "\nbatch_size: 64\n", encoding="utf-8")
    assert cli(_train(tmp_path, recipe)) == 2
    message = _error(caplog)
    assert str(recipe) in message and "key 'batch_size' appears twice" in message


def test_a_recipe_that_is_not_utf8_is_one_message(tmp_path, caplog):
    recipe = tmp_path / "latin1.yaml"
    recipe.write_bytes(THE_RECIPE.replace("name: ir50_arcface", "name: caf\xe9").encode("latin-1"))
    assert cli(_train(tmp_path, recipe)) == 2
    assert f"{recipe}: not UTF-8 text" in _error(caplog)


@pytest.mark.parametrize("seed", ["-1", str(2**32)])
def test_an_impossible_seed_is_refused(tmp_path, caplog, seed):
    assert cli(_train(tmp_path, CONFIGS / "smoke.yaml", f"seed={seed}")) == 2
    assert "seed must be within 0 .." in _error(caplog)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA")
def test_cuda_asked_on_a_machine_without_it_fails_before_training(tmp_path, caplog):
    make_set(tmp_path / "data" / "prepared" / DATASET)
    assert cli([*_train(tmp_path, CONFIGS / "smoke.yaml"), "--device", "cuda"]) == 2
    assert "CUDA" in _error(caplog)
    assert not (tmp_path / "runs" / DATASET / "smoke-seed0" / "checkpoints").exists()


def _registry(tmp_path, edit) -> str:
    document = yaml.safe_load(CATALOG.read_text(encoding="utf-8"))
    edit(document)
    path = tmp_path / "datasets.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return str(path)


def _first(section: dict) -> dict:
    return next(iter(section.values()))


def _first_published(document: dict) -> dict:
    entry = next(e for e in document["training"].values() if e.get("published"))
    return entry["published"][0]


def _same_file(document: dict) -> None:
    first, second = list(document["evaluation"].values())[:2]
    second["file"] = first["file"]


REGISTRY_CASES = {
    "negative identities": (lambda d: _first(d["training"]).update(identities=-5), "identities"),
    "zero images": (lambda d: _first(d["training"]).update(images=0), "images"),
    "zero pairs": (lambda d: _first(d["evaluation"]).update(pairs=0), "pairs"),
    "fractional score": (
        lambda d: _first_published(d)["scores"].update(lfw=0.998),
        "looks like a fraction",
    ),
    "two sets on one file": (_same_file, "each evaluation set needs its own file"),
}


@pytest.mark.parametrize("case", sorted(REGISTRY_CASES))
def test_impossible_registry_entries_are_refused(tmp_path, case):
    edit, expected = REGISTRY_CASES[case]
    path = _registry(tmp_path, edit)
    with pytest.raises(CatalogError, match=expected) as error:
        load_catalog(path)
    assert str(path) in str(error.value)
