"""The learning-rate schedules, pure functions of the step: linear warmup, then polynomial decay
to 0 (THE recipe) or step decay at milestones (the source recipes: AdaFace, CemiFace, Vec2Face);
`recipe_learning_rate` picks the one the config names (`lr_schedule`)."""

from __future__ import annotations

from collections.abc import Callable

from bench.train.config import Derived, TrainConfig


def learning_rate(
    step: int, peak_lr: float, total_steps: int, warmup_steps: int, power: float
) -> float:
    """LR for optimiser step `step` (0-based): warmup to `peak_lr`, then (1 - t)^power decay.

    Without warmup this is arcface_torch's `PolynomialLRWarmup` step for step (power 1 there, as
    train_v2.py builds it: linear decay that reaches exactly 0 at `total_steps`). Warmup rises
    linearly so that step `warmup_steps - 1` uses the full `peak_lr` (the first step is never 0,
    which would waste it); arcface_torch's ramp runs one step later (k / warmup_steps at step k,
    and its step 0 keeps the full lr); from `warmup_steps` on the two are equal again.
    """
    if total_steps <= 0 or not 0 <= warmup_steps <= total_steps:
        raise ValueError(f"need 0 <= warmup_steps ({warmup_steps}) <= total_steps ({total_steps})")
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if step < warmup_steps:
        return peak_lr * (step + 1) / warmup_steps
    if step >= total_steps:
        return 0.0
    progress = (step - warmup_steps) / (total_steps - warmup_steps)
    return peak_lr * (1.0 - progress) ** power


def step_learning_rate(
    step: int, peak_lr: float, milestone_steps: tuple[int, ...], factor: float, warmup_steps: int
) -> float:
    """LR for optimiser step `step` (0-based): warmup as above, then `peak_lr` multiplied by
    `factor` once per milestone reached (torch MultiStepLR: the milestone step itself already
    uses the lower lr)."""
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if list(milestone_steps) != sorted(milestone_steps):
        raise ValueError(f"milestone steps must be increasing, got {milestone_steps}")
    if step < warmup_steps:
        return peak_lr * (step + 1) / warmup_steps
    passed = sum(1 for milestone in milestone_steps if step >= milestone)
    return peak_lr * factor**passed


def _poly(step: int, cfg: TrainConfig, derived: Derived) -> float:
    return learning_rate(step, derived.lr, derived.total_steps, derived.warmup_steps, cfg.lr_power)


def _step(step: int, cfg: TrainConfig, derived: Derived) -> float:
    return step_learning_rate(
        step, derived.lr, derived.milestone_steps, cfg.lr_step_factor, derived.warmup_steps
    )


SCHEDULES: dict[str, Callable[[int, TrainConfig, Derived], float]] = {"poly": _poly, "step": _step}


def recipe_learning_rate(step: int, cfg: TrainConfig, derived: Derived) -> float:
    """The recipe's LR at `step`: the schedule `cfg.lr_schedule` with the derived step counts."""
    return SCHEDULES[cfg.lr_schedule](step, cfg, derived)
