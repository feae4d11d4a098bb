"""Transcription of what insightface arcface_torch (commit 7fadd42) computes in one training step.

Written for the parity tests from reading `recognition/arcface_torch/` (losses.py
`CombinedMarginLoss`, partial_fc_v2.py `PartialFC_V2` + `DistCrossEntropyFunc` at sample rate 1
on one process, lr_scheduler.py `PolynomialLRWarmup`, train_v2.py's SGD groups, gradient
clipping and scheduler stepping). Deliberately naive: same operation order as the reference, no
facebench code, so a test comparing the two fails when facebench drifts.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def margin_logits(
    cosine: torch.Tensor, labels: torch.Tensor, s: float, m1: float, m2: float, m3: float
) -> torch.Tensor:
    """CombinedMarginLoss.forward: cosines (B, C) + labels (B,) -> scaled logits.

    (m1 = 1, m3 = 0): arccos, + m2 on the target, cos, all in place under no_grad, so the
    gradient reaching the cosines is s everywhere. m3 > 0: target - m3 (m1 and m2 are ignored
    there by the reference). Anything else: the reference raises.
    """
    logits = cosine.clone()  # the reference works in place on its own clamp output
    rows = torch.where(labels != -1)[0]
    columns = labels[rows].view(-1)
    target = logits[rows, columns]
    if m1 == 1.0 and m3 == 0.0:
        with torch.no_grad():
            target.arccos_()
            logits.arccos_()
            logits[rows, columns] = target + m2
            logits.cos_()
        return logits * s
    if m3 > 0:
        logits[rows, columns] = target - m3
        return logits * s
    raise NotImplementedError(f"arcface_torch has no margin ({m1}, {m2}, {m3})")


def sample_losses(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """DistCrossEntropyFunc's per-sample loss, -log(clamp(softmax target, 1e-30)) (no gradient)."""
    with torch.no_grad():
        shifted = logits - logits.max(dim=1, keepdim=True).values
        probabilities = shifted.exp() / shifted.exp().sum(dim=1, keepdim=True)
        return -probabilities.gather(1, labels.view(-1, 1)).clamp_min(1e-30).log().view(-1)


class _CrossEntropy(torch.autograd.Function):
    """DistCrossEntropyFunc on one process: the mean of `sample_losses`; its backward is
    (softmax - one_hot) / B whatever the clamp did (the clamp only caps the logged value)."""

    @staticmethod
    def forward(ctx, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        shifted = logits - logits.max(dim=1, keepdim=True).values
        probabilities = shifted.exp() / shifted.exp().sum(dim=1, keepdim=True)
        ctx.save_for_backward(probabilities, labels)
        return sample_losses(logits, labels).mean()

    @staticmethod
    def backward(ctx, gradient: torch.Tensor):
        probabilities, labels = ctx.saved_tensors
        one_hot = torch.zeros_like(probabilities).scatter_(1, labels.view(-1, 1), 1.0)
        return (probabilities - one_hot) / probabilities.shape[0] * gradient, None


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The reference's loss (mean over the batch) with its own backward."""
    return _CrossEntropy.apply(logits, labels)


def head_loss(
    embeddings: torch.Tensor,
    weight: torch.Tensor,
    labels: torch.Tensor,
    margins: tuple[float, float, float],
    s: float = 64.0,
) -> torch.Tensor:
    """PartialFC_V2.forward at sample rate 1 (fp16=False: float32 cosines), one process."""
    cosine = F.linear(F.normalize(embeddings), F.normalize(weight)).clamp(-1, 1)
    return cross_entropy(margin_logits(cosine, labels, s, *margins), labels)


def polynomial_lr(base_lr: float, warmup: int, total: int, steps: int, power: float = 1.0):
    """lr used by optimiser steps 0..steps-1 under PolynomialLRWarmup(warmup, total, power).

    The reference sets the lr after each step (`lr_scheduler.step()` follows `opt.step()`), so
    step k runs with the value for `last_epoch = k`, built multiplicatively as it does: k = 0 keeps
    the optimiser's initial lr; k <= warmup is base * k / warmup; then the decay factor.
    """
    rates, lr = [], base_lr
    for k in range(steps):
        if k == 0 or k > total:
            pass
        elif k <= warmup:
            lr = base_lr * k / warmup
        else:
            lr = (
                lr
                * (
                    (1 - (k - warmup) / (total - warmup))
                    / (1 - (k - 1 - warmup) / (total - warmup))
                )
                ** power
            )
        rates.append(lr)
    return rates


def training_steps(
    backbone: nn.Module,
    weight: nn.Parameter,
    batches: list[tuple[torch.Tensor, torch.Tensor]],
    rates: list[float],
    margins: tuple[float, float, float] = (1.0, 0.5, 0.0),
    clip: float = 5.0,
) -> list[torch.Tensor]:
    """train_v2.py's fp32 loop body, one step per batch: SGD (momentum 0.9, weight decay 5e-4 on
    every parameter) over [backbone, centres]; backward; clip the backbone's gradient norm only;
    step; zero; the scheduler then sets the next lr. Returns the losses."""
    optimizer = torch.optim.SGD(
        [{"params": backbone.parameters()}, {"params": [weight]}],
        lr=rates[0],
        momentum=0.9,
        weight_decay=5e-4,
    )
    losses = []
    for (images, labels), lr in zip(batches, rates, strict=True):
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss = head_loss(backbone(images), weight, labels, margins)
        loss.backward()
        nn.utils.clip_grad_norm_(backbone.parameters(), clip)
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.detach())
    return losses
