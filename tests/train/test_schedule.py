"""The LR schedules are pure functions: warmup, polynomial decay to 0 or step decay at
milestones, linear lr scaling; the loop uses the schedule the recipe names."""

from __future__ import annotations

import json

import pytest
from helpers import CONFIGS, make_set

from bench.core.errors import ConfigError
from bench.train.config import TrainConfig, derive
from bench.train.loop import train
from bench.train.recipe import load_config
from bench.train.schedule import learning_rate, recipe_learning_rate


def test_warmup_rises_linearly_to_peak() -> None:
    values = [learning_rate(s, 0.4, 100, 10, 2.0) for s in range(10)]
    assert values == pytest.approx([0.4 * (s + 1) / 10 for s in range(10)])
    assert values[-1] == pytest.approx(0.4)


@pytest.mark.parametrize("power", [1.0, 2.0])
def test_polynomial_decay_matches_formula_and_reaches_zero(power: float) -> None:
    total, warmup, peak = 50, 5, 0.1
    for step in range(warmup, total):
        expected = peak * (1 - (step - warmup) / (total - warmup)) ** power
        assert learning_rate(step, peak, total, warmup, power) == pytest.approx(expected)
    assert learning_rate(total, peak, total, warmup, power) == 0.0
    decay = [learning_rate(s, peak, total, warmup, power) for s in range(warmup, total + 1)]
    assert all(a > b for a, b in zip(decay, decay[1:], strict=False))


def test_no_warmup_starts_at_peak_and_is_pure() -> None:
    assert learning_rate(0, 0.1, 10, 0, 2.0) == 0.1
    assert learning_rate(7, 0.1, 10, 3, 2.0) == learning_rate(7, 0.1, 10, 3, 2.0)


def test_invalid_arguments_raise() -> None:
    with pytest.raises(ValueError):
        learning_rate(0, 0.1, 10, 11, 1.0)
    with pytest.raises(ValueError):
        learning_rate(-1, 0.1, 10, 0, 1.0)


@pytest.mark.parametrize("batch", [128, 512, 1024])
def test_lr_scales_linearly_with_global_batch(batch: int) -> None:
    cfg = TrainConfig(batch_size=batch, base_lr=0.1, base_batch_size=512, epochs=3)
    derived = derive(cfg, num_images=10_000, world_size=1)
    assert derived.lr == pytest.approx(0.1 * batch / 512)
    assert derived.steps_per_epoch == 10_000 // batch
    assert derived.total_steps == 3 * (10_000 // batch)
    assert derived.warmup_steps == round(cfg.warmup_epochs * (10_000 // batch))


def test_step_schedule_every_step_of_a_short_run() -> None:
    # 4 steps per epoch, 6 epochs, milestones at epochs 2 and 4.5 -> steps 8 and 18; warmup 2.
    cfg = TrainConfig(
        batch_size=8, base_batch_size=8, base_lr=0.1, epochs=6, warmup_epochs=0.5,
        lr_schedule="step", lr_milestones=(2, 4.5), lr_step_factor=0.1,
    )  # fmt: skip
    derived = derive(cfg, num_images=35, world_size=1)
    assert derived.total_steps == 24 and derived.milestone_steps == (8, 18)
    expected = [0.05, 0.1] + [0.1] * 6 + [0.01] * 10 + [0.001] * 6
    values = [recipe_learning_rate(step, cfg, derived) for step in range(derived.total_steps)]
    assert values == pytest.approx(expected, rel=1e-12)


def test_recipe_learning_rate_is_poly_by_default() -> None:
    cfg = TrainConfig(epochs=3)
    derived = derive(cfg, num_images=10_000, world_size=1)
    for step in range(0, derived.total_steps, 7):
        poly = learning_rate(
            step, derived.lr, derived.total_steps, derived.warmup_steps, cfg.lr_power
        )
        assert recipe_learning_rate(step, cfg, derived) == poly


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"lr_schedule": "cosine"}, "lr_schedule"),
        ({"lr_schedule": "step"}, "lr_milestones"),
        ({"lr_schedule": "step", "lr_milestones": (20, 12)}, "increasing"),
        ({"lr_schedule": "step", "lr_milestones": (12, 30)}, "before the last epoch"),
        ({"lr_schedule": "step", "lr_milestones": (12,), "lr_step_factor": 0.0}, "factor"),
        ({"lr_milestones": (12,)}, "only used by lr_schedule: step"),
    ],
)
def test_step_schedule_config_errors(overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TrainConfig(epochs=30, **overrides)


def test_step_schedule_in_the_training_loop_logs_every_step(tmp_path) -> None:
    data = make_set(tmp_path / "set")  # 3 steps per epoch of the smoke recipe
    overrides = ["epochs=4", "lr_schedule=step", "lr_milestones=[1, 2.5]", "lr_step_factor=0.5"]
    train(load_config(CONFIGS / "smoke.yaml", overrides), data, tmp_path / "run")
    lines = (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    logged = [json.loads(line) for line in lines]
    lrs = [(record["step"], record["lr"]) for record in logged if record["type"] == "train"]
    # milestones at steps 3 and round(7.5) = 8; the logged lr is that of the step just taken.
    expected = [0.1] * 3 + [0.05] * 5 + [0.025] * 4
    assert lrs == [(step + 1, pytest.approx(lr)) for step, lr in enumerate(expected)]
