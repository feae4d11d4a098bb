"""Model-parallel Partial FC: the class centres sharded over the ranks of torch.distributed.

What arcface_torch's `PartialFC_V2` does, written for this harness (same semantics):
- rank r holds the contiguous centres [start_r, end_r) (C/N of them) and, because the head is
  not inside DDP, their optimiser state too; nothing of the classifier is replicated;
- each rank's embeddings and labels are all-gathered (embeddings with an autograd-aware gather,
  so every rank computes the loss of the whole global batch against its own centres);
- with sample_rate < 1 each rank samples its share of centres, always keeping the positives of
  the global batch that fall in its shard (`sample_centres` on the local labels);
- the margin is applied to the local logits, and the softmax runs across shards (global row
  max, global sum of exponentials, target logit from the rank that owns it): the full (B, C)
  logits never exist on one rank.

The loss is the mean over the global batch, the same value on every rank. The gradient that
reaches the local embeddings is the exact gradient of that loss times the world size: the
backbone is wrapped in DDP, which averages over ranks, and the average of N exact per-rank
contributions times N is their sum (arcface_torch's AllGather does the same).
At sample_rate 1.0 this equals the single-process full softmax (tests/train/test_partial_fc_sharded.py).
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from bench.core.errors import ConfigError
from losses.margin import at_least_float32
from losses.partial_fc import PartialFC, sample_centres


def shard_bounds(num_classes: int, rank: int, world_size: int) -> range:
    """The class indices rank `rank` holds: a contiguous block, sizes differing by at most 1."""
    return range(rank * num_classes // world_size, (rank + 1) * num_classes // world_size)


class _GatherWithGradient(torch.autograd.Function):
    """all_gather of equal-sized (b, D) tensors -> (N*b, D); backward sums the ranks' gradients
    for this rank's rows and multiplies by N (DDP then averages the backbone's gradients)."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        world_size, rank = dist.get_world_size(), dist.get_rank()
        parts = [torch.empty_like(tensor) for _ in range(world_size)]
        dist.all_gather(parts, tensor.contiguous())
        ctx.rows = (rank * tensor.shape[0], (rank + 1) * tensor.shape[0])
        ctx.world_size = world_size
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        total = grad.contiguous().clone()
        dist.all_reduce(total)  # gloo has no reduce_scatter; the batch of embeddings is small
        start, end = ctx.rows
        return total[start:end] * ctx.world_size


class _DistributedCrossEntropy(torch.autograd.Function):
    """Mean cross-entropy over rows whose columns are spread over the ranks.

    `logits` (B, K_local) are this rank's columns; `labels` (B,) index into them, -1 where the
    target column lives on another rank. Backward: (softmax - onehot) / B on the local columns.
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        batch = logits.shape[0]
        row_max = logits.max(dim=1).values if logits.shape[1] else logits.new_full((batch,), -1e30)
        dist.all_reduce(row_max, op=dist.ReduceOp.MAX)
        exponentials = torch.exp(logits - row_max[:, None])
        sums = exponentials.sum(dim=1)
        rows = torch.nonzero(labels != -1, as_tuple=True)[0]
        target = torch.zeros(batch, dtype=logits.dtype, device=logits.device)
        target[rows] = logits[rows, labels[rows]] - row_max[rows]
        packed = torch.cat([sums, target])  # one all-reduce for both
        dist.all_reduce(packed)
        sums, target = packed[:batch], packed[batch:]
        ctx.save_for_backward(exponentials / sums[:, None], labels, rows)
        return (torch.log(sums) - target).mean()

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        probabilities, labels, rows = ctx.saved_tensors
        result = probabilities.clone()
        result[rows, labels[rows]] -= 1.0
        return result * (grad / probabilities.shape[0]), None


class ShardedPartialFC(nn.Module):
    """Embeddings (b, D) + labels (b,) of this rank -> the global-batch margin-softmax loss."""

    def __init__(
        self,
        margin: nn.Module,
        embedding_size: int,
        num_classes: int,
        sample_rate: float,
        local_weight: torch.Tensor,
        rank: int,
        world_size: int,
    ) -> None:
        super().__init__()
        if not 0.0 < sample_rate <= 1.0:
            raise ConfigError(f"sample_rate must be in (0, 1], got {sample_rate}")
        self.shard = shard_bounds(num_classes, rank, world_size)
        if tuple(local_weight.shape) != (len(self.shard), embedding_size):
            raise ValueError(
                f"rank {rank}: shard weight {tuple(local_weight.shape)}, "
                f"expected ({len(self.shard)}, {embedding_size})"
            )
        self.margin = margin
        self.embedding_size = embedding_size
        self.num_classes = num_classes
        self.sample_rate = sample_rate
        self.rank, self.world_size = rank, world_size
        self.num_sample = max(1, math.ceil(sample_rate * len(self.shard)))
        self.weight = nn.Parameter(local_weight.detach().clone())

    @classmethod
    def from_replicated(cls, head: PartialFC, rank: int, world_size: int) -> ShardedPartialFC:
        """This rank's shard of a full head (every rank builds the same full head, same seed)."""
        shard = shard_bounds(head.num_classes, rank, world_size)
        return cls(
            head.margin, head.embedding_size, head.num_classes, head.sample_rate,
            head.weight.data[shard.start : shard.stop], rank, world_size,
        )  # fmt: skip

    def extra_repr(self) -> str:
        return (
            f"embedding_size={self.embedding_size}, num_classes={self.num_classes}, "
            f"shard=[{self.shard.start}, {self.shard.stop}) of {self.world_size} ranks, "
            f"sample_rate={self.sample_rate}"
        )

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        labels = labels.long().view(-1)
        if embeddings.shape[0] != labels.shape[0]:
            raise ValueError(
                f"batch mismatch: {embeddings.shape[0]} embeddings, {labels.shape[0]} labels"
            )
        everything = _GatherWithGradient.apply(embeddings)
        gathered = [torch.empty_like(labels) for _ in range(self.world_size)]
        dist.all_gather(gathered, labels.contiguous())
        labels = torch.cat(gathered)
        # Labels into this shard's columns; -1 where another rank holds the target centre.
        mine = (labels >= self.shard.start) & (labels < self.shard.stop)
        local = torch.where(mine, labels - self.shard.start, torch.full_like(labels, -1))
        weight = self.weight
        if self.training and self.num_sample < len(self.shard):
            with torch.no_grad():
                index, remapped = sample_centres(local[mine], len(self.shard), self.num_sample)
                local[mine] = remapped
            weight = weight[index]  # only the sampled rows receive gradient
        with torch.autocast(device_type=everything.device.type, enabled=False):
            cosine = F.linear(
                F.normalize(at_least_float32(everything)), F.normalize(at_least_float32(weight))
            )
        if getattr(self.margin, "needs_norms", False):  # AdaFace: margin from the feature norm
            logits = self.margin(cosine, local, at_least_float32(everything.detach()).norm(dim=1))
        else:
            logits = self.margin(cosine, local)
        return _DistributedCrossEntropy.apply(logits, local)


def gather_rows(local: torch.Tensor, num_rows: int, world_size: int) -> torch.Tensor:
    """The full (num_rows, ...) tensor from every rank's contiguous shard (collective)."""
    largest = -(-num_rows // world_size)
    padded = local.new_zeros((largest, *local.shape[1:]))
    padded[: local.shape[0]] = local
    parts = [torch.empty_like(padded) for _ in range(world_size)]
    dist.all_gather(parts, padded)
    sizes = [len(shard_bounds(num_rows, r, world_size)) for r in range(world_size)]
    return torch.cat([part[:size] for part, size in zip(parts, sizes, strict=True)])
