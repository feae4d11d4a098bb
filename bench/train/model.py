"""What trains: backbone + margin head as one module, built from the recipe."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from bench.core.errors import ConfigError
from bench.train.config import TrainConfig


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
    if cfg.gradient_checkpointing:
        enable_gradient_checkpointing(backbone, cfg.backbone)
    head = build_head(
        cfg.loss, cfg.embedding_size, num_classes, cfg.scale, cfg.margins, cfg.sample_rate,
        cfg.loss_kwargs,
    )  # fmt: skip
    return TrainModule(backbone, head)


def enable_gradient_checkpointing(backbone: nn.Module, name: str) -> None:
    """Recompute the backbone's block activations in backward (`gradient_checkpointing: true`)."""
    if not hasattr(backbone, "gradient_checkpointing"):
        raise ConfigError(
            f"gradient_checkpointing: backbone {name!r} does not support it; the IResNet family "
            "does (ir18, ir34, ir50, ir100, irse50). Set gradient_checkpointing=false"
        )
    backbone.gradient_checkpointing = True
