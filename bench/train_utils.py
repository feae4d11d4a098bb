"""Helpers of the training loop: model assembly, precision, determinism, per-step seeding,
cross-process batch norm on CPU, progress/metrics output, periodic verification."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench.config import TrainConfig
from bench.dist import DistContext

log = logging.getLogger(__name__)


class TrainModule(nn.Module):
    """Backbone + margin head as one module, so DDP all-reduces the gradients of both."""

    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(images), labels)


def backbone_kwargs(cfg: TrainConfig) -> dict[str, Any]:
    """The kwargs `build_backbone` gets (and the checkpoint records for the evaluator)."""
    return {**cfg.backbone_kwargs, "embedding_size": cfg.embedding_size}


def build_train_module(cfg: TrainConfig, num_classes: int) -> TrainModule:
    """IR backbone + head from the config (weights drawn from the current torch RNG)."""
    from backbones import build_backbone
    from losses import build_head

    backbone = build_backbone(cfg.backbone, **backbone_kwargs(cfg))
    head = build_head(
        cfg.loss, cfg.embedding_size, num_classes, cfg.scale, cfg.margins, cfg.sample_rate
    )
    return TrainModule(backbone, head)


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks whose gradient is the sum of the ranks' gradients (as SyncBatchNorm)."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        total = tensor.clone()
        torch.distributed.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        total = grad.clone()
        torch.distributed.all_reduce(total)
        return total


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics span all ranks, on any device (gloo included).

    torch's SyncBatchNorm refuses CPU tensors; this one all-reduces per-channel sums (float64,
    so the one-pass variance does not cancel) with the autograd-aware all_reduce, which makes
    forward and backward those of one BatchNorm over the global batch.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input, got {input.dim()}D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and torch.distributed.is_initialized()):
            return super().forward(x)
        channels = x.shape[1]
        dims = [0, *range(2, x.dim())]
        wide = x.double()
        count = torch.full((1,), x.numel() / channels, dtype=torch.float64, device=x.device)
        stats = torch.cat([wide.sum(dims), (wide * wide).sum(dims), count])
        stats = _AllReduceSum.apply(stats)
        total = stats[-1]
        mean = stats[:channels] / total
        var = stats[channels : 2 * channels] / total - mean * mean
        with torch.no_grad():
            self.running_mean.lerp_(mean.to(self.running_mean.dtype), self.momentum)
            unbiased = var * total / (total - 1)
            self.running_var.lerp_(unbiased.to(self.running_var.dtype), self.momentum)
            self.num_batches_tracked.add_(1)
        shape = [1, channels] + [1] * (x.dim() - 2)
        y = (wide - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        y = y.to(x.dtype)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


def convert_sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """BatchNorm -> torch SyncBatchNorm on CUDA, GlobalBatchNorm elsewhere (same state keys)."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm) and child.momentum is not None:
            replacement = GlobalBatchNorm(
                child.num_features, child.eps, child.momentum, child.affine
            )
            if child.affine:
                # the Parameter objects themselves: keeps requires_grad (frozen BN1d scale)
                replacement.weight, replacement.bias = child.weight, child.bias
            replacement.running_mean = child.running_mean
            replacement.running_var = child.running_var
            replacement.num_batches_tracked = child.num_batches_tracked
            setattr(module, name, replacement)
        else:
            convert_sync_batchnorm(child, device)
    return module


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
    params: list[torch.Tensor],
    clip_grad_norm: float,
    dtype: torch.dtype | None,
) -> torch.Tensor:
    """One recipe step: autocast forward -> loss, scaled backward, unscale + clip, SGD update.

    Returns the detached float32 loss without a host sync (the caller accumulates it)."""
    with autocast(images.device, dtype):
        loss = model(images, labels)
    scaler.scale(loss).backward()
    if clip_grad_norm > 0:
        scaler.unscale_(optimizer)  # clip the true gradient, not the scaled one
        nn.utils.clip_grad_norm_(params, clip_grad_norm, foreach=True)
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    return loss.detach().float()


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


class Progress:
    """Rank-0 output: log.jsonl, a tqdm bar (img/s, loss, lr, ETA) and TensorBoard if present."""

    def __init__(self, run_dir: Path, context: DistContext, total: int, start: int, bar: bool):
        self.enabled = context.is_main
        self.jsonl = self.bar = self.board = None
        if not self.enabled:
            return
        self.jsonl = open(run_dir / "log.jsonl", "a", encoding="utf-8")  # noqa: SIM115
        if bar:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=start, unit="step", dynamic_ncols=True)
        self.board = _tensorboard(run_dir / "tensorboard")

    def write(self, record: dict) -> None:
        """Append one JSON record to log.jsonl (and TensorBoard scalars)."""
        if not self.enabled:
            return
        self.jsonl.write(json.dumps(record) + "\n")
        self.jsonl.flush()
        if self.board is not None and record.get("type") in ("train", "eval"):
            prefix = record["type"] if record["type"] == "train" else f"eval/{record['target']}"
            for key in ("loss", "lr", "images_per_s", "acc"):
                if key in record:
                    self.board.add_scalar(f"{prefix}/{key}", record[key], record["step"])

    def advance(self, steps: int, loss: float, lr: float, images_per_s: float) -> None:
        """Move the bar and show the latest metrics."""
        if self.bar is not None:
            self.bar.update(steps)
            self.bar.set_postfix(loss=f"{loss:.3f}", lr=f"{lr:.4g}", img_s=f"{images_per_s:.0f}")

    def close(self) -> None:
        """Flush and close every output."""
        for thing in (self.bar, self.board, self.jsonl):
            if thing is not None:
                thing.close()


def _tensorboard(directory: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log.info("TensorBoard is not installed: metrics go to log.jsonl only")
        return None
    return SummaryWriter(str(directory))


def verify(
    backbone: nn.Module,
    targets: tuple[str, ...],
    eval_root: Path,
    device: torch.device,
    catalog=None,
):
    """Verification accuracy of `backbone` on `targets` (curves only, never model selection);
    the targets are looked up in `catalog` (default: the default registry)."""
    from bench.catalog import load_catalog
    from bench.embed import ModelInfo, TorchEmbedder, embed_pairs
    from bench.evalsets import load_eval_set
    from bench.evaluate import verify as verify_pairs

    catalog = catalog or load_catalog()
    embedder = TorchEmbedder(backbone, ModelInfo("(training)", "", "checkpoint"), str(device))
    results = {}
    started = time.perf_counter()
    for target in targets:
        images, issame = load_eval_set(target, eval_root, catalog)
        embeddings, _xnorm = embed_pairs(embedder, images)
        metrics = verify_pairs(embeddings, issame)
        results[target] = {"acc": float(metrics["acc"]), "acc_std": float(metrics["acc_std"])}
    backbone.train()
    log.info("verification %s in %.1fs", results, time.perf_counter() - started)
    return results
