"""Additive-margin softmax on cosine logits: CombinedMargin(s, m1, m2, m3) and its presets.

The target logit becomes s * (cos(m1*theta + m2) - m3), the others s * cos(theta)
(arcface_torch `CombinedMarginLoss`): ArcFace = (1, 0.5, 0), CosFace = (1, 0, 0.4).
As in current arcface_torch (since its commit 657ae30e, Dec 2022) the margin's value is
computed without gradient and the gradient passes straight through it: d logit / d cos = s for
every entry, the target included. With m1 = 1 the value is cos(theta + m2) over the whole range
(no linear fallback past theta = pi - m2). The reference has no m1 != 1 and ignores m2 when
m3 > 0; here (1, m2, m3) is cos(theta + m2) - m3, and m1 != 1 follows cos(m1*theta + m2) up to
m1*theta + m2 = pi, then cos(theta) shifted to meet -1 there (continuous and decreasing).
Labels of -1 mark rows whose class is not among the logits' columns (they get no margin).

Everything runs in float32 (float64 stays float64) with cos clamped to [-1, 1]; arccos is only
evaluated without gradient, so value and gradient are finite at cos = +-1 and under autocast.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from bench.core.errors import ConfigError
from bench.core.registry import Registry

LOSSES: Registry = Registry("loss")


class CombinedMargin(nn.Module):
    """Cosine logits (B, C) + labels (B,) -> float32 scaled logits with the margin on the target."""

    def __init__(self, s: float = 64.0, m1: float = 1.0, m2: float = 0.0, m3: float = 0.0) -> None:
        super().__init__()
        if s <= 0 or m1 <= 0 or m2 < 0 or m3 < 0 or m2 >= math.pi:
            raise ConfigError(
                f"margin (s={s}, m1={m1}, m2={m2}, m3={m3}) is invalid: need s > 0, m1 > 0, "
                "0 <= m2 < pi, m3 >= 0 (ArcFace: 64, 1.0, 0.5, 0.0; CosFace: 64, 1.0, 0.0, 0.4)"
            )
        self.s, self.m1, self.m2, self.m3 = float(s), float(m1), float(m2), float(m3)
        # m1 != 1 only: past theta* = (pi - m2) / m1 the curve would turn back up; cos(theta)
        # shifted by this much meets -1 at theta* instead.
        self.general_fallback = math.cos(min((math.pi - m2) / m1, math.pi)) + 1.0

    def extra_repr(self) -> str:
        return f"s={self.s}, m1={self.m1}, m2={self.m2}, m3={self.m3}"

    @torch.no_grad()
    def target_logit(self, cos_target: torch.Tensor) -> torch.Tensor:
        """Unscaled margin value cos(m1*theta + m2) - m3 for the target cosines (no gradient)."""
        if self.m2 == 0.0 and self.m1 == 1.0:
            return cos_target - self.m3  # CosFace / plain softmax: no trigonometry
        theta = torch.acos(cos_target.clamp(-1.0, 1.0))
        if self.m1 == 1.0:
            return torch.cos(theta + self.m2) - self.m3  # arcface_torch: arccos, + m, cos
        angle = self.m1 * theta + self.m2
        shifted = torch.where(
            angle <= math.pi, torch.cos(angle), cos_target - self.general_fallback
        )
        return shifted - self.m3

    def forward(self, cosine: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cosine = at_least_float32(cosine).clamp(-1.0, 1.0)
        rows = torch.nonzero(labels != -1, as_tuple=True)[0]
        columns = labels[rows].long()
        cos_target = cosine[rows, columns]
        # Straight-through: the value is the margin's, the gradient that of the cosine itself
        # (`cos - cos.detach()` is exactly 0, so the value is not rounded).
        target = self.target_logit(cos_target) + (cos_target - cos_target.detach())
        logits = cosine.index_put((rows, columns), target)
        return logits * self.s


def at_least_float32(tensor: torch.Tensor) -> torch.Tensor:
    """float16/bfloat16 -> float32; float32 and float64 unchanged."""
    return tensor.to(torch.promote_types(tensor.dtype, torch.float32))


def _margins(margins: tuple[float, float, float] | list[float] | None, default: tuple) -> tuple:
    """Validate a (m1, m2, m3) triple, falling back to the preset's."""
    if margins is None:
        return default
    if len(margins) != 3:
        raise ConfigError(f"margins must be (m1, m2, m3), got {margins!r}")
    return tuple(float(m) for m in margins)


@LOSSES.register("arcface")
def arcface(s: float = 64.0, margins: tuple | None = None) -> CombinedMargin:
    """ArcFace: additive angular margin, default (1.0, 0.5, 0.0)."""
    return CombinedMargin(s, *_margins(margins, (1.0, 0.5, 0.0)))


@LOSSES.register("cosface")
def cosface(s: float = 64.0, margins: tuple | None = None) -> CombinedMargin:
    """CosFace: additive cosine margin, default (1.0, 0.0, 0.4)."""
    return CombinedMargin(s, *_margins(margins, (1.0, 0.0, 0.4)))


@LOSSES.register("combined")
def combined(s: float = 64.0, margins: tuple | None = None) -> CombinedMargin:
    """Any (m1, m2, m3): SphereFace-style m1, ArcFace m2, CosFace m3 together."""
    if margins is None:
        raise ConfigError("loss 'combined' needs explicit margins (m1, m2, m3)")
    return CombinedMargin(s, *_margins(margins, (1.0, 0.0, 0.0)))


@LOSSES.register("softmax")
def softmax(s: float = 64.0, margins: tuple | None = None) -> CombinedMargin:
    """Normalised softmax (NormFace): scaled cosine logits, no margin."""
    return CombinedMargin(s, *_margins(margins, (1.0, 0.0, 0.0)))
