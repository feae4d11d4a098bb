"""The classifier head: class centres + margin + cross-entropy, with Partial FC sampling.

Partial FC (An et al. 2022; arcface_torch `PartialFC_V2`): each training step uses only a subset
of the class centres, namely every class present in the batch plus uniformly drawn negatives, up
to `ceil(sample_rate * num_classes)` centres, and remaps the labels into that subset. With
sample_rate 1.0 (and in eval mode) all centres are used, which is the full softmax exactly.
Single process: the centres are not sharded over ranks.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from bench.core.errors import ConfigError
from losses.margin import at_least_float32


def sample_centres(
    labels: torch.Tensor, num_classes: int, num_sample: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pick `num_sample` class indices (all of the batch's, then random) and remap `labels`.

    Returns (sorted class indices (K,), labels as positions into them (B,)); K = num_sample
    unless the batch alone holds more classes, in which case all of those are kept.
    """
    positives = torch.unique(labels)
    if positives.numel() >= num_sample:
        index = positives
    else:
        # Random priorities in [0, 1); positives get 2.0 so top-k always keeps them.
        priority = torch.rand(num_classes, device=labels.device)
        priority[positives] = 2.0
        index = torch.topk(priority, num_sample, sorted=False).indices.sort().values
    return index, torch.searchsorted(index, labels)


class PartialFC(nn.Module):
    """Embeddings (B, D) + labels (B,) -> scalar margin-softmax loss over (sampled) centres."""

    def __init__(
        self,
        margin: nn.Module,
        embedding_size: int,
        num_classes: int,
        sample_rate: float = 1.0,
    ) -> None:
        super().__init__()
        if not 0.0 < sample_rate <= 1.0:
            raise ConfigError(f"sample_rate must be in (0, 1], got {sample_rate}")
        if num_classes < 1 or embedding_size < 1:
            raise ConfigError(
                f"head needs num_classes >= 1 and embedding_size >= 1, "
                f"got {num_classes} and {embedding_size}"
            )
        self.margin = margin
        self.embedding_size = embedding_size
        self.num_classes = num_classes
        self.sample_rate = sample_rate
        self.num_sample = max(1, math.ceil(sample_rate * num_classes))
        # arcface_torch initialises the centres from N(0, 0.01).
        self.weight = nn.Parameter(torch.normal(0.0, 0.01, (num_classes, embedding_size)))

    def extra_repr(self) -> str:
        return (
            f"embedding_size={self.embedding_size}, num_classes={self.num_classes}, "
            f"sample_rate={self.sample_rate}"
        )

    def cosine(self, embeddings: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """Cosine similarities (B, K) between embeddings and centres, in float32 at least
        (float64 stays float64: the equivalence tests train in double)."""
        with torch.autocast(device_type=embeddings.device.type, enabled=False):
            return F.linear(
                F.normalize(at_least_float32(embeddings)), F.normalize(at_least_float32(weight))
            )

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        labels = labels.long().view(-1)
        if embeddings.shape[0] != labels.shape[0]:
            raise ValueError(
                f"batch mismatch: {embeddings.shape[0]} embeddings, {labels.shape[0]} labels"
            )
        weight = self.weight
        if self.training and self.num_sample < self.num_classes:
            with torch.no_grad():
                index, labels = sample_centres(labels, self.num_classes, self.num_sample)
            # Indexing keeps the graph: only the sampled rows receive gradient.
            weight = weight[index]
        cosine = self.cosine(embeddings, weight)
        if getattr(self.margin, "needs_norms", False):  # AdaFace: margin from the feature norm
            norms = at_least_float32(embeddings.detach()).norm(dim=1)
            logits = self.margin(cosine, labels, norms)
        else:
            logits = self.margin(cosine, labels)
        return F.cross_entropy(logits, labels)
