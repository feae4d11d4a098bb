"""The learning-rate schedule: linear warmup, then polynomial decay to 0, as a pure function."""

from __future__ import annotations


def learning_rate(
    step: int, peak_lr: float, total_steps: int, warmup_steps: int, power: float
) -> float:
    """LR for optimiser step `step` (0-based): warmup to `peak_lr`, then (1 - t)^power decay.

    Warmup rises linearly so that step `warmup_steps - 1` uses the full `peak_lr` (the first step
    is never 0, which would waste it); the decay then reaches exactly 0 at `total_steps`, as
    arcface_torch's PolyScheduler does (power 2 there).
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
