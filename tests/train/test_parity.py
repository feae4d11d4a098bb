"""THE recipe's training step and schedule against a transcription of arcface_torch's
(tests/arcface_reference.py): the clipped update of backbone and centres from identical weights
and batch, the lr at every step of short runs, and two full SGD steps of backbone + head."""

from __future__ import annotations

import copy

import arcface_reference as reference
import pytest
import torch
from helpers import CONFIGS

from backbones import build_backbone
from bench.train import dist
from bench.train.config import TrainConfig, derive
from bench.train.loop import _build
from bench.train.model import TrainModule
from bench.train.recipe import load_config
from bench.train.schedule import learning_rate, recipe_learning_rate
from bench.train.step import clipped_parameters, optimizer_step
from losses import build_head

CLASSES, BATCH = 12, 4


def _module(seed: int = 0) -> TrainModule:
    torch.manual_seed(seed)
    backbone = build_backbone("ir18", width=4, embedding_size=16)
    head = build_head("arcface", 16, CLASSES)
    return TrainModule(backbone, head).train()


def _batch(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(BATCH, 3, 112, 112, generator=generator) * 2 - 1
    return images, torch.randint(0, CLASSES, (BATCH,), generator=generator)


def _plain_sgd_step(module: TrainModule, scope: str) -> None:
    """lr 1, no momentum or decay: the update is minus the (clipped) gradient."""
    images, labels = _batch()
    optimizer = torch.optim.SGD([p for p in module.parameters() if p.requires_grad], lr=1.0)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    clipped = clipped_parameters(module, scope)
    optimizer_step(module, images, labels, optimizer, scaler, clipped, 5.0, None)


def test_clip_scope_backbone_clips_the_backbone_only_as_arcface_torch() -> None:
    module = _module()
    before = copy.deepcopy(module)
    _plain_sgd_step(module, "backbone")

    images, labels = _batch()
    expected = copy.deepcopy(before)
    loss = reference.head_loss(expected.backbone(images), expected.head.weight, labels, (1, 0.5, 0))
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(expected.backbone.parameters(), 5.0)
    assert norm > 5.0  # the clip is active, so a wrong scope shows
    centre_gradient = expected.head.weight.grad.clone()
    torch.optim.SGD([p for p in expected.parameters() if p.requires_grad], lr=1.0).step()
    for name, parameter in module.named_parameters():
        torch.testing.assert_close(
            parameter,
            expected.get_parameter(name),
            rtol=1e-4,
            atol=1e-6,
            msg=lambda text, name=name: f"{name}: {text}",
        )
    # The centres moved by their whole gradient: not scaled by the backbone's clip factor.
    centre_update = before.head.weight - module.head.weight
    torch.testing.assert_close(centre_update, centre_gradient, rtol=1e-3, atol=1e-6)


def test_clip_scope_all_clips_backbone_and_centres_together() -> None:
    module = _module()
    before = copy.deepcopy(module)
    _plain_sgd_step(module, "all")
    updates = [p - q for p, q in zip(module.parameters(), before.parameters(), strict=True)]
    norm = torch.linalg.vector_norm(torch.stack([u.norm() for u in updates]))
    assert norm.item() == pytest.approx(5.0, rel=1e-4)


@pytest.mark.parametrize("total", [1, 7, 30])
def test_schedule_without_warmup_equals_polynomial_lr_warmup_at_every_step(total: int) -> None:
    expected = reference.polynomial_lr(0.1, 0, total, total + 3)
    ours = [learning_rate(step, 0.1, total, 0, 1.0) for step in range(total + 3)]
    assert ours == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_schedule_warmup_ramp_is_the_references_one_step_earlier() -> None:
    """Documented difference (bench/train/schedule.py): the reference's step 0 keeps the full lr
    and its ramp reaches step k's value k / warmup one step later; equal from the warmup's end."""
    total, warmup, peak = 20, 4, 0.1
    expected = reference.polynomial_lr(peak, warmup, total, total + 2)
    ours = [learning_rate(step, peak, total, warmup, 1.0) for step in range(total + 2)]
    assert ours[warmup:] == pytest.approx(expected[warmup:], rel=1e-12, abs=1e-15)
    assert ours[: warmup - 1] == pytest.approx(expected[1:warmup])
    assert expected[0] == peak and ours[0] == peak / warmup


def test_recipe_schedule_is_arcface_torchs_for_every_step() -> None:
    cfg = load_config(CONFIGS / "ir50_arcface.yaml")
    derived = derive(cfg, num_images=5_000, world_size=1)  # 9 steps per epoch, 270 in all
    expected = reference.polynomial_lr(derived.lr, 0, derived.total_steps, derived.total_steps)
    ours = [recipe_learning_rate(k, cfg, derived) for k in range(derived.total_steps)]
    assert ours == pytest.approx(expected, rel=1e-9, abs=1e-15)


def test_two_full_optimiser_steps_equal_arcface_torchs() -> None:
    """Backbone + head from the trainer's own builder, identical weights and batches, two steps
    (momentum carried over, schedule lr, weight decay, clipped backbone). In float64, so the
    tolerance separates a different formula from rounding (float32 differs by ~1e-5 relative:
    arcface_torch rounds every logit through cos(arccos(x)))."""
    cfg = TrainConfig(
        backbone="ir18", backbone_kwargs={"width": 4}, embedding_size=16, precision="fp64",
        channels_last=False, batch_size=BATCH, base_batch_size=BATCH, epochs=1, base_lr=0.1,
    )  # fmt: skip
    context = dist.DistContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
    state = _build(cfg, CLASSES, context)
    state.module.train()
    derived = derive(cfg, num_images=BATCH * 4, world_size=1)
    expected = copy.deepcopy(state.module)
    batches = [(images.double(), labels) for images, labels in (_batch(1), _batch(2))]
    rates = [recipe_learning_rate(step, cfg, derived) for step in range(2)]
    assert rates == reference.polynomial_lr(derived.lr, 0, derived.total_steps, 2)

    clipped = clipped_parameters(state.module, cfg.clip_scope)
    losses = []
    for (images, labels), lr in zip(batches, rates, strict=True):
        for group in state.optimizer.param_groups:
            group["lr"] = lr
        losses.append(
            optimizer_step(
                state.module,
                images,
                labels,
                state.optimizer,
                state.scaler,
                clipped,
                cfg.clip_grad_norm,
                None,
            )  # fmt: skip
        )
    expected_losses = reference.training_steps(
        expected.backbone, expected.head.weight, batches, rates
    )
    # Loss values are compared per sample in tests/models/test_margin_parity.py: at this init
    # some samples pass arcface_torch's logged-value cap of -log(1e-30), which its gradient ignores.
    assert all(torch.isfinite(loss) for loss in losses + expected_losses)
    for (name, ours), theirs in zip(
        state.module.state_dict().items(), expected.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(
            ours, theirs, rtol=1e-9, atol=1e-12, msg=lambda text, name=name: f"{name}: {text}"
        )
