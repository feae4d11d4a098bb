"""Additive-margin softmax on cosine logits: CombinedMargin(s, m1, m2, m3) and its presets.

The target logit becomes s * (cos(m1*theta + m2) - m3), the others s * cos(theta)
(arcface_torch `CombinedMarginLoss`): ArcFace = (1, 0.5, 0), CosFace = (1, 0, 0.4). As in
arcface_torch's ArcFace, where m1*theta + m2 would pass pi (cos no longer decreasing in theta) the
target falls back to cos(theta) - sin(pi - m2)*m2 - m3 (m1 = 1), or to cos(theta) shifted to meet
the curve at that point (m1 != 1), so the logit stays monotonic in theta.
Labels of -1 mark rows whose class is not among the logits' columns (they get no margin).

Everything runs in float32 with cos clamped to [-1, 1] and sin computed from a floored 1 - cos^2,
so the value and gradient stay finite at cos = +-1 and under fp16/bf16 autocast. Gradients are
the exact derivative of the formula above (arcface_torch's current ArcFace instead passes the
gradient straight through the arccos/cos; the forward values are identical).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from bench.core.errors import ConfigError
from bench.core.registry import Registry

LOSSES: Registry = Registry("loss")
SIN_SQUARED_FLOOR = 1e-6  # keeps d sqrt(1 - cos^2) finite at cos = +-1
ACOS_LIMIT = 1.0 - 1e-6  # acos' derivative is infinite at +-1


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
        self.cos_m = math.cos(m2)
        self.sin_m = math.sin(m2)
        # Past theta = pi - m2 the ArcFace curve turns back; use a linear stand-in there.
        self.threshold = math.cos(math.pi - m2)
        self.fallback = math.sin(math.pi - m2) * m2
        # With m1 != 1 the curve reaches -1 at theta* = (pi - m2) / m1; past it, cos(theta)
        # shifted to meet -1 there keeps the logit continuous and decreasing (arcface_torch's
        # constant above is right for m1 = 1 only: with m1 = 1.2 the logit jumped up by 0.16).
        self.general_fallback = math.cos(min((math.pi - m2) / m1, math.pi)) + 1.0

    def extra_repr(self) -> str:
        return f"s={self.s}, m1={self.m1}, m2={self.m2}, m3={self.m3}"

    def target_logit(self, cos_target: torch.Tensor) -> torch.Tensor:
        """Unscaled margin logit cos(m1*theta + m2) - m3 for the target cosines (float32)."""
        if self.m2 == 0.0 and self.m1 == 1.0:
            return cos_target - self.m3  # CosFace: no trigonometry needed
        if self.m1 == 1.0:
            sin_target = (1.0 - cos_target * cos_target).clamp_min(SIN_SQUARED_FLOOR).sqrt()
            shifted = cos_target * self.cos_m - sin_target * self.sin_m
            in_range = cos_target > self.threshold
        else:
            theta = torch.acos(cos_target.clamp(-ACOS_LIMIT, ACOS_LIMIT))
            shifted = torch.cos(self.m1 * theta + self.m2)
            in_range = self.m1 * theta + self.m2 <= math.pi
            return torch.where(in_range, shifted, cos_target - self.general_fallback) - self.m3
        return torch.where(in_range, shifted, cos_target - self.fallback) - self.m3

    def forward(self, cosine: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cosine = at_least_float32(cosine).clamp(-1.0, 1.0)
        rows = torch.nonzero(labels != -1, as_tuple=True)[0]
        columns = labels[rows].long()
        # index_put on a copy (not in place on `cosine`) keeps autograd exact for both entries.
        logits = cosine.index_put((rows, columns), self.target_logit(cosine[rows, columns]))
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
