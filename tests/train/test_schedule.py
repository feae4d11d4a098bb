"""The LR schedule is a pure function: warmup, polynomial decay to 0, linear lr scaling."""

from __future__ import annotations

import pytest

from bench.train.config import TrainConfig, derive
from bench.train.schedule import learning_rate


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
