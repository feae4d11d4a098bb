"""What trains: backbone + margin head as one module, built from the recipe."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

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
    head = build_head(
        cfg.loss, cfg.embedding_size, num_classes, cfg.scale, cfg.margins, cfg.sample_rate,
        cfg.loss_kwargs,
    )  # fmt: skip
    return TrainModule(backbone, head)
