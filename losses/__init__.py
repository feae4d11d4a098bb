"""Margin losses and the classifier head: the LOSSES registry, `build_loss`, `build_head`.

`build_loss(name, s=..., margins=...)` gives the margin module (cosine logits + labels -> scaled
logits); `build_head(...)` gives what the trainer optimises: centres + margin + cross-entropy.
"""

from __future__ import annotations

from torch import nn

from bench.core.errors import ConfigError
from losses.adaface import AdaFaceMargin
from losses.margin import LOSSES, CombinedMargin
from losses.partial_fc import PartialFC, sample_centres


def build_loss(name: str, **kwargs) -> nn.Module:
    """The registered margin `name` (arcface, cosface, combined, softmax, adaface) with `s`,
    `margins` and the loss's own keyword arguments (adaface: m, h, t_alpha)."""
    factory = LOSSES.get(name)
    try:
        return factory(**kwargs)
    except TypeError as error:  # an argument this loss does not take (e.g. in loss_kwargs)
        raise ConfigError(f"loss {name!r}: {error}; check the recipe's loss_kwargs") from None


def build_head(
    loss: str,
    embedding_size: int,
    num_classes: int,
    scale: float = 64.0,
    margins: tuple[float, float, float] | None = None,
    sample_rate: float = 1.0,
    loss_kwargs: dict | None = None,
) -> PartialFC:
    """Classifier head: forward(embeddings (B,D), labels (B,)) -> scalar loss."""
    margin = build_loss(loss, s=scale, margins=margins, **(loss_kwargs or {}))
    return PartialFC(margin, embedding_size, num_classes, sample_rate)


def loss_names() -> list[str]:
    """Names of all registered losses, sorted."""
    return LOSSES.names()


__all__ = [
    "LOSSES",
    "AdaFaceMargin",
    "CombinedMargin",
    "PartialFC",
    "build_head",
    "build_loss",
    "loss_names",
    "sample_centres",
]
