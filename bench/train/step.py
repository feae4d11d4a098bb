"""One recipe step and what it needs: model input from a uint8 batch (THE normalisation of
bench.eval.preprocess), precision (autocast dtype, parameter dtype), channels_last, determinism,
per-step seeding, and the optimiser step itself (scaled backward, unscale, clip, SGD)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch
from torch import nn

from bench.eval.preprocess import normalise
from bench.train.config import CLIP_SCOPES, TrainConfig


def to_model_input(
    images: torch.Tensor, flips: torch.Tensor, device: torch.device, channels_last: bool
) -> torch.Tensor:
    """uint8 NHWC (any device) -> float (N,3,H,W) in [-1, 1] on `device`, mirrored where flips."""
    images = images.to(device, non_blocking=True)
    flips = flips.to(device, non_blocking=True)
    x = normalise(images)  # the evaluator's exact normalisation
    x = torch.where(flips.view(-1, 1, 1, 1), x.flip(3), x)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    return x.contiguous(memory_format=memory_format)


def autocast_dtype(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    """Autocast dtype, or None for float32; "auto" = bf16 on GPU, fp32 on CPU."""
    precision = cfg.precision
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" else "fp32"
    return {"fp32": None, "fp64": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def parameter_dtype(cfg: TrainConfig) -> torch.dtype:
    """float64 weights for precision=fp64 (equivalence tests), float32 otherwise."""
    return torch.float64 if cfg.precision == "fp64" else torch.float32


def use_channels_last(cfg: TrainConfig, device: torch.device) -> bool:
    """channels_last is a CUDA speed lever only: on CPU (torch 2.13) the backward of some narrow
    channels_last 1x1 stride-2 convolutions segfaults, and it brings no speed there."""
    return cfg.channels_last and device.type == "cuda"


def optimizer_step(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    clipped: list[torch.Tensor],
    clip_grad_norm: float,
    dtype: torch.dtype | None,
) -> torch.Tensor:
    """One recipe step: autocast forward -> loss, scaled backward, unscale + clip, SGD update.

    `clipped` are the parameters whose joint gradient norm is clipped to `clip_grad_norm`
    (`clipped_parameters`); the optimiser updates all of its parameters either way.
    Returns the detached float32 loss without a host sync (the caller accumulates it)."""
    with autocast(images.device, dtype):
        loss = model(images, labels)
    scaler.scale(loss).backward()
    if clip_grad_norm > 0:
        scaler.unscale_(optimizer)  # clip the true gradient, not the scaled one
        nn.utils.clip_grad_norm_(clipped, clip_grad_norm, foreach=True)
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    return loss.detach().float()


def clipped_parameters(module: nn.Module, scope: str) -> list[torch.Tensor]:
    """The trainable parameters whose gradient norm the step clips: the backbone's (`backbone`,
    arcface_torch's `clip_grad_norm_(backbone.parameters(), 5)`) or backbone + class centres
    (`all`). `module` is a TrainModule (attributes `backbone` and `head`)."""
    if scope not in CLIP_SCOPES:
        raise ValueError(f"clip scope must be one of {', '.join(CLIP_SCOPES)}, got {scope!r}")
    source = module.backbone if scope == "backbone" else module
    return [p for p in source.parameters() if p.requires_grad]


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """torch.autocast for `dtype`, or a no-op for float32."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


@contextlib.contextmanager
def determinism(cfg: TrainConfig, device: torch.device) -> Iterator[None]:
    """Thread count and deterministic kernels (or cuDNN autotuning), restored on exit."""
    previous = (
        torch.get_num_threads(),
        torch.are_deterministic_algorithms_enabled(),
        torch.backends.cudnn.benchmark,
    )
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    if cfg.deterministic:
        # cuBLAS needs this workspace setting before its first call to be deterministic.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.set_num_threads(previous[0])
        torch.use_deterministic_algorithms(previous[1])
        torch.backends.cudnn.benchmark = previous[2]


def seed_step(seed: int, step: int, rank: int) -> None:
    """Seed torch's RNG (dropout, Partial FC sampling) as a pure function of (seed, step, rank).

    So an interrupted run resumed at any step, with any process count, draws what an
    uninterrupted one would, without saving per-rank generator states.
    """
    torch.manual_seed(((seed * 1_000_003 + step) * 1_009 + rank) % (2**63 - 1))
