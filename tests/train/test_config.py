"""Config loading: recipes parse, typed overrides, clear errors, derived values, hash."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import CONFIGS

from bench.core.errors import ConfigError
from bench.train.config import TrainConfig, config_hash, derive, resolved_yaml
from bench.train.recipe import config_from_dict, load_config

CONFIGS = CONFIGS


@pytest.mark.parametrize("name", ["ir50_arcface", "demo_cpu", "smoke"])
def test_shipped_configs_load(name: str) -> None:
    cfg = load_config(CONFIGS / f"{name}.yaml")
    assert cfg.name == name
    assert config_from_dict(cfg.to_dict()) == cfg


def test_recipe_values_are_the_documented_ones() -> None:
    cfg = load_config(CONFIGS / "ir50_arcface.yaml")
    assert (cfg.backbone, cfg.loss, cfg.scale, cfg.margins) == (
        "ir50",
        "arcface",
        64.0,
        (1.0, 0.5, 0.0),
    )
    assert (cfg.embedding_size, cfg.momentum, cfg.weight_decay) == (512, 0.9, 5e-4)
    assert (cfg.base_lr, cfg.base_batch_size, cfg.flip) == (0.1, 512, True)


def test_typed_overrides(tmp_path: Path) -> None:
    cfg = load_config(
        CONFIGS / "smoke.yaml",
        ["epochs=3", "base_lr=1", "margins=[1.0,0.0,0.4]", "backbone_kwargs.width=16",
         "verify_targets=lfw,cfp_fp", "sync_bn=true"],
    )  # fmt: skip
    assert cfg.epochs == 3 and cfg.base_lr == 1.0 and isinstance(cfg.base_lr, float)
    assert cfg.margins == (1.0, 0.0, 0.4)
    assert cfg.backbone_kwargs == {"width": 16}
    assert cfg.verify_targets == ("lfw", "cfp_fp") and cfg.sync_bn is True


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ("epoch=3", "did you mean: epochs"),
        ("epochs=2.5", "'epochs' expects an integer"),
        ("epochs=true", "'epochs' expects an integer"),
        ("sync_bn=yes please", "'sync_bn' expects true/false"),
        ("margins=[1,2]", "'margins' expects a list of 3"),
        ("epochs", "expected key=value"),
        ("epochs.x=1", "not a mapping"),
        ("precision=fp8", "precision must be one of"),
        ("batch_size=0", "batch_size must be > 0"),
    ],
)
def test_bad_overrides_name_the_key(override: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        load_config(CONFIGS / "smoke.yaml", [override])


def test_bad_file_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: 2\nlearning_rate: 0.1\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*'learning_rate'"):
        load_config(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    bad.write_text("[1, 2]\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(bad)


def test_config_is_frozen() -> None:
    cfg = TrainConfig()
    with pytest.raises(AttributeError):
        cfg.epochs = 3  # type: ignore[misc]


def test_derive_checks_world_size_and_dataset_size() -> None:
    cfg = TrainConfig(batch_size=12, epochs=2, warmup_epochs=0.5)
    derived = derive(cfg, num_images=100, world_size=3)
    assert (derived.local_batch, derived.steps_per_epoch) == (4, 100 // 12)
    assert derived.total_steps == 2 * (100 // 12)
    assert derived.warmup_steps == round(0.5 * (100 // 12))
    with pytest.raises(ConfigError, match="not divisible"):
        derive(cfg, num_images=100, world_size=5)
    with pytest.raises(ConfigError, match="larger than the data set"):
        derive(cfg, num_images=11, world_size=1)


def test_hash_tracks_maths_not_operations() -> None:
    base = TrainConfig()
    assert len(config_hash(base)) == 12
    assert config_hash(base) == config_hash(TrainConfig())
    assert config_hash(base) != config_hash(TrainConfig(epochs=base.epochs + 1))
    assert config_hash(base) == config_hash(TrainConfig(num_workers=base.num_workers + 3))
    # Seeds are replicates of one recipe: one hash, so the report aggregates them.
    assert config_hash(base) == config_hash(TrainConfig(seed=base.seed + 1))
    assert "epochs: 30" in resolved_yaml(base)
