"""torch.distributed: setup/teardown from torchrun's environment (nccl on GPU, gloo on CPU),
collectives the loop uses, and BatchNorm whose statistics span all ranks (GlobalBatchNorm).

Nothing happens at import: `setup()` reads RANK, WORLD_SIZE, LOCAL_RANK (and MASTER_ADDR/PORT
through the env:// init method) and initialises the process group only when WORLD_SIZE > 1.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import torch
import torch.distributed as dist
from torch import nn

from bench.core.errors import ConfigError, TrainingError

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class DistContext:
    """Where this process sits: rank, world size, local rank and its device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    owns_group: bool = False  # setup() created the process group, so teardown() ends it

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"environment variable {name}={value!r} is not an integer") from None


def setup(device: str = "auto") -> DistContext:
    """Initialise the process group if launched with WORLD_SIZE > 1; pick this rank's device."""
    rank, world_size = _env_int("RANK", 0), _env_int("WORLD_SIZE", 1)
    local_rank = _env_int("LOCAL_RANK", 0)
    use_cuda = torch.cuda.is_available() if device == "auto" else device.startswith("cuda")
    if use_cuda and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available")
    target = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(target)
    owns_group = world_size > 1 and not dist.is_initialized()
    if owns_group:
        backend = "nccl" if use_cuda else "gloo"
        kwargs = {"device_id": target} if use_cuda else {}
        dist.init_process_group(backend, rank=rank, world_size=world_size, **kwargs)
        log.info("process group: %s, rank %d of %d", backend, rank, world_size)
    return DistContext(rank, world_size, local_rank, target, owns_group)


def teardown(context: DistContext) -> None:
    """Destroy the process group if `setup()` created it."""
    if context.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(tensor: torch.Tensor, context: DistContext) -> torch.Tensor:
    """Sum `tensor` over ranks in place (no-op in a single process); returns it."""
    if context.distributed:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def barrier(context: DistContext) -> None:
    """Wait for all ranks (no-op in a single process)."""
    if context.distributed:
        dist.barrier()


def broadcast_object(value: object, context: DistContext) -> object:
    """Rank 0's `value` on every rank."""
    if not context.distributed:
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def wait_group(context: DistContext, timeout_s: float) -> object | None:
    """A gloo group whose collectives time out after `timeout_s`, for ranks waiting on rank 0
    (preparing a set can take hours: far longer than the default group's collective timeout).
    None in a single process. Collective: every rank calls it."""
    if not context.distributed:
        return None
    return dist.new_group(backend="gloo", timeout=timedelta(seconds=timeout_s))


def on_main(what: str, work: Callable[[], T], context: DistContext, group: object | None) -> T:
    """Rank 0 runs `work`; the others wait for its (picklable) result, or fail with its error.

    `what` says what is waited for ("prepare and check demo_diverse"): it names the wait in the
    timeout message of the waiting ranks and rank 0's failure in theirs.
    """
    if not context.distributed:
        return work()
    if context.is_main:
        try:
            value = work()
        except BaseException as error:
            _send({"error": f"{type(error).__name__}: {error}"}, group)
            raise
        _send({"value": value}, group)
        return value
    try:
        message = _receive(group)
    except RuntimeError as error:  # timed out, or rank 0 died (its launcher stops us too)
        raise TrainingError(
            f"rank {context.rank}: no word from rank 0, which was to {what} ({error}). If rank 0 "
            "is still working, raise --wait-timeout; otherwise see rank 0's log for its error"
        ) from None
    if "error" in message:
        raise TrainingError(f"rank 0 failed to {what}: {message['error']}")
    return message["value"]


def _send(message: dict, group: object | None) -> None:
    dist.broadcast_object_list([message], src=0, group=group)


def _receive(group: object | None) -> dict:
    holder: list = [None]
    dist.broadcast_object_list(holder, src=0, group=group)
    return holder[0]


def free_port() -> int:
    """An unused TCP port on this host (for local multi-process launches and tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
