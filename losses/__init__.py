"""Margin losses and the classifier head: the LOSSES registry, `build_loss`, `build_head`.

`build_loss(name, s=..., margins=...)` gives the margin module (cosine logits + labels -> scaled
logits); `build_head(...)` gives what the trainer optimises: centres + margin + cross-entropy.
"""

from __future__ import annotations

from losses.margin import LOSSES, CombinedMargin
from losses.partial_fc import PartialFC, sample_centres


def build_loss(name: str, **kwargs) -> CombinedMargin:
    """The registered margin `name` (arcface, cosface, combined, softmax) with `s`, `margins`."""
    return LOSSES.get(name)(**kwargs)


def build_head(
    loss: str,
    embedding_size: int,
    num_classes: int,
    scale: float = 64.0,
    margins: tuple[float, float, float] | None = None,
    sample_rate: float = 1.0,
) -> PartialFC:
    """Classifier head: forward(embeddings (B,D), labels (B,)) -> scalar loss."""
    margin = build_loss(loss, s=scale, margins=margins)
    return PartialFC(margin, embedding_size, num_classes, sample_rate)


def loss_names() -> list[str]:
    """Names of all registered losses, sorted."""
    return LOSSES.names()


__all__ = [
    "LOSSES",
    "CombinedMargin",
    "PartialFC",
    "build_head",
    "build_loss",
    "loss_names",
    "sample_centres",
]
