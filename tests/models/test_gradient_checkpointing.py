"""Gradient checkpointing of IResNet (`gradient_checkpointing: true`): the same gradients and BN
running statistics as without it, while each block really runs twice (forward + recompute)."""

from __future__ import annotations

import pytest
import torch

from backbones import build_backbone
from backbones.iresnet import IBasicBlock
from bench.core.errors import ConfigError
from bench.train.config import TrainConfig
from bench.train.model import build_train_module


def _step(recompute: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[torch.nn.Module, int]:
    torch.manual_seed(0)
    model = build_backbone("ir18", width=8, embedding_size=16).double().train()
    model.gradient_checkpointing = recompute
    # Counted in forward itself: module hooks do not fire during checkpoint's recomputation.
    calls, block, forward = [], model.layer2[1], IBasicBlock.forward

    def counting(self: IBasicBlock, x: torch.Tensor) -> torch.Tensor:
        calls.extend([1] if self is block else [])
        return forward(self, x)

    monkeypatch.setattr(IBasicBlock, "forward", counting)
    images = torch.randn(4, 3, 112, 112, dtype=torch.float64)
    model(images).square().sum().backward()
    monkeypatch.undo()
    return model, len(calls)


def test_checkpointed_gradients_and_statistics_equal_plain_ones(monkeypatch) -> None:
    plain, plain_calls = _step(False, monkeypatch)
    recomputed, recomputed_calls = _step(True, monkeypatch)
    assert (plain_calls, recomputed_calls) == (1, 2)  # checkpointing did recompute the block
    for (name, parameter), other in zip(
        plain.named_parameters(), recomputed.parameters(), strict=True
    ):
        if parameter.grad is not None:
            torch.testing.assert_close(other.grad, parameter.grad, rtol=1e-12, atol=0, msg=name)
    # BN statistics move once per step, not again in the recomputation.
    for (name, buffer), other in zip(plain.named_buffers(), recomputed.buffers(), strict=True):
        torch.testing.assert_close(other, buffer, rtol=0, atol=0, msg=name)


def test_config_key_enables_it_and_unsupported_backbones_say_so() -> None:
    small = {"backbone_kwargs": {"width": 8}, "embedding_size": 16}
    module = build_train_module(
        TrainConfig(backbone="ir18", gradient_checkpointing=True, **small), 4
    )
    assert module.backbone.gradient_checkpointing
    with pytest.raises(ConfigError, match="mobilefacenet.*gradient_checkpointing=false"):
        build_train_module(
            TrainConfig(backbone="mobilefacenet", gradient_checkpointing=True, **small), 4
        )
