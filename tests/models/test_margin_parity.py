"""Margin heads against a transcription of arcface_torch's CombinedMarginLoss: loss value and
gradient over the whole cosine range, +-1 included (tests/arcface_reference.py)."""

from __future__ import annotations

import arcface_reference as reference
import pytest
import torch
import torch.nn.functional as F

from losses import CombinedMargin, build_loss

S = 64.0
CLASSES = 5


def _cosine_grid() -> tuple[torch.Tensor, torch.Tensor]:
    """Rows whose target cosine sweeps [-1, 1] (both ends exactly), other columns spread too."""
    target = torch.cat([torch.linspace(-1.0, 1.0, 401), torch.tensor([-1.0, 1.0, 0.0])])
    rows = target.numel()
    others = torch.linspace(-1.0, 1.0, rows * CLASSES).view(rows, CLASSES)
    labels = torch.arange(rows) % CLASSES
    cosine = others.clone()
    cosine[torch.arange(rows), labels] = target
    cosine[::7, (labels[::7] + 1) % CLASSES] = 1.0  # a non-target exactly at +1 too
    return cosine, labels


def _loss_and_gradient(forward, cosine: torch.Tensor, labels: torch.Tensor):
    leaf = cosine.clone().requires_grad_(True)
    loss = forward(leaf, labels)
    (gradient,) = torch.autograd.grad(loss, leaf)
    return loss.detach(), gradient


@pytest.mark.parametrize(
    "margins",
    [(1.0, 0.5, 0.0), (1.0, 0.0, 0.4), (1.0, 0.0, 0.0), (1.0, 0.3, 0.0), (1.0, 0.0, 0.35)],
    ids=["arcface", "cosface", "softmax", "arcface_m0.3", "cosface_m0.35"],
)
def test_margin_loss_and_gradient_equal_arcface_torch(margins: tuple) -> None:
    cosine, labels = _cosine_grid()
    ours = CombinedMargin(S, *margins)

    def ours_loss(leaf, labels):
        return F.cross_entropy(ours(leaf, labels), labels)

    def reference_loss(leaf, labels):
        return reference.cross_entropy(reference.margin_logits(leaf, labels, S, *margins), labels)

    _, gradient = _loss_and_gradient(ours_loss, cosine, labels)
    _, expected_gradient = _loss_and_gradient(reference_loss, cosine, labels)
    assert torch.isfinite(gradient).all()
    finite = torch.isfinite(expected_gradient)  # where the reference is finite, equal
    torch.testing.assert_close(gradient[finite], expected_gradient[finite], rtol=1e-4, atol=1e-7)
    # Per-sample loss values; the reference caps its logged value at -log(1e-30) = 69.08 (the
    # gradient ignores that cap, as checked above), facebench reports the true cross-entropy.
    logits = ours(cosine, labels)
    losses = F.cross_entropy(logits, labels, reduction="none")
    expected = reference.sample_losses(reference.margin_logits(cosine, labels, S, *margins), labels)
    uncapped = expected < 69.0
    assert uncapped.float().mean() > 0.5
    torch.testing.assert_close(losses[uncapped], expected[uncapped], rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("margins", [(1.0, 0.5, 0.0), (1.0, 0.0, 0.4), (1.0, 0.0, 0.0)])
def test_margin_logits_equal_arcface_torch_at_every_cosine(margins: tuple) -> None:
    cosine, labels = _cosine_grid()
    ours = CombinedMargin(S, *margins)(cosine, labels)
    expected = reference.margin_logits(cosine, labels, S, *margins)
    torch.testing.assert_close(ours, expected, rtol=0, atol=2e-5)


def test_arcface_target_logit_at_the_ends_of_the_cosine_range() -> None:
    """cos(theta + m) everywhere: -s cos(m) at cos = -1 (not the linear fallback's -79.3) and
    s cos(m) at cos = +1 (no floor on 1 - cos^2 shifting it)."""
    logits = build_loss("arcface")(torch.tensor([[-1.0, 0.0], [1.0, 0.0]]), torch.tensor([0, 0]))
    expected = torch.tensor([-S * 0.8775825618903728, S * 0.8775825618903728])
    torch.testing.assert_close(logits[:, 0], expected, rtol=0, atol=1e-5)


def test_combined_margin_is_arcface_then_cosface_with_a_straight_through_gradient() -> None:
    """(1, m2, m3): cos(theta + m2) - m3 on the target; the gradient reaching the cosines is
    s for every entry, as in arcface_torch's ArcFace branch (the reference itself drops m2 when
    m3 > 0, so this is checked against the composition of its two branches)."""
    cosine, labels = _cosine_grid()
    margin = CombinedMargin(S, 1.0, 0.3, 0.2)
    arc = reference.margin_logits(cosine, labels, S, 1.0, 0.3, 0.0)
    rows = torch.arange(len(labels))
    expected = arc.clone()
    expected[rows, labels] -= S * 0.2
    torch.testing.assert_close(margin(cosine, labels), expected, rtol=0, atol=2e-5)

    leaf = cosine.clone().requires_grad_(True)
    margin(leaf, labels).sum().backward()
    torch.testing.assert_close(leaf.grad, torch.full_like(cosine, S))
