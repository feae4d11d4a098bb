"""AdaFace (Kim et al., CVPR 2022): a margin that adapts to image quality via the feature norm.

The norm ||z|| of the un-normalised embedding is a proxy for image quality. Normalised by the
batch statistics (an EMA of the mean and std of the norms in each batch) and scaled by h, it gives
a per-sample scaler s_hat = clip(h * (||z|| - mu) / (sigma + eps), -1, 1). The target logit
becomes s * (cos(theta + g_angle) - g_add) with g_angle = -m * s_hat, g_add = m * s_hat + m:
s_hat = -1 (low norm, low quality) is ArcFace (angular margin m), s_hat = 0 is CosFace (m),
s_hat = 1 (high quality) an angle shifted by -m with an additive 2m, so hard samples are
emphasised when the image is good and de-emphasised when it is unrecognisable.
Values follow mk-minchul/AdaFace `head.py`: eps 1e-3, norms clipped to [1e-3, 100] and detached,
EMA buffers start at mean 20 / std 100, std is the unbiased sample std, cosines clamped to
[-1 + eps, 1 - eps] and theta + g_angle to [eps, pi - eps].

Batch statistics are those of the norms this module is given, updated in training mode only;
they live in buffers, so checkpoints carry them and a resumed run continues with them. Under DDP
(the head inside DistributedDataParallel) each process sees its own slice of the batch and DDP
broadcasts rank 0's buffers before every forward, as in AdaFace's own DDP training: results then
depend on the process count. The sharded head passes the norms of the whole global batch.
Labels of -1 get no margin (see CombinedMargin).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from bench.core.errors import ConfigError
from losses.margin import LOSSES, at_least_float32

EPS = 1e-3  # AdaFace's eps: cosine clamp, angle clip, std floor
NORM_RANGE = (1e-3, 100.0)  # AdaFace clips the norms to this range "for stability"
INITIAL_MEAN, INITIAL_STD = 20.0, 100.0  # AdaFace's initial EMA buffers


class AdaFaceMargin(nn.Module):
    """Cosine logits (B, C) + labels (B,) + embedding norms (B,) -> float32 scaled logits."""

    needs_norms = True  # PartialFC passes the norms of the un-normalised embeddings

    def __init__(
        self, s: float = 64.0, m: float = 0.4, h: float = 0.333, t_alpha: float = 0.01
    ) -> None:
        super().__init__()
        if s <= 0 or m < 0 or h < 0 or not 0.0 < t_alpha <= 1.0:
            raise ConfigError(
                f"adaface (s={s}, m={m}, h={h}, t_alpha={t_alpha}) is invalid: need s > 0, "
                "m >= 0, h >= 0, 0 < t_alpha <= 1 (AdaFace: s 64, m 0.4, h 0.333, t_alpha 0.01)"
            )
        self.s, self.m, self.h, self.t_alpha = float(s), float(m), float(h), float(t_alpha)
        self.register_buffer("batch_mean", torch.tensor(INITIAL_MEAN))
        self.register_buffer("batch_std", torch.tensor(INITIAL_STD))

    def extra_repr(self) -> str:
        return f"s={self.s}, m={self.m}, h={self.h}, t_alpha={self.t_alpha}"

    @torch.no_grad()
    def margin_scaler(self, norms: torch.Tensor) -> torch.Tensor:
        """Per-sample s_hat in [-1, 1]; in training mode the EMA statistics are updated first."""
        safe = norms.detach().to(self.batch_mean.dtype).clamp(*NORM_RANGE)
        if self.training:
            alpha = self.t_alpha
            self.batch_mean.mul_(1.0 - alpha).add_(alpha * safe.mean())
            if safe.numel() > 1:  # the unbiased std of one sample is undefined: keep the EMA
                self.batch_std.mul_(1.0 - alpha).add_(alpha * safe.std())
        scaler = (safe - self.batch_mean) / (self.batch_std + EPS)
        return (scaler * self.h).clamp(-1.0, 1.0)

    def forward(
        self, cosine: torch.Tensor, labels: torch.Tensor, norms: torch.Tensor
    ) -> torch.Tensor:
        cosine = at_least_float32(cosine).clamp(-1.0 + EPS, 1.0 - EPS)
        scaler = self.margin_scaler(norms.reshape(-1)).to(cosine.dtype)
        rows = torch.nonzero(labels != -1, as_tuple=True)[0]
        columns = labels[rows].long()
        theta = torch.acos(cosine[rows, columns])
        angle = (theta - self.m * scaler[rows]).clamp(EPS, math.pi - EPS)  # g_angle = -m s_hat
        target = torch.cos(angle) - (self.m + self.m * scaler[rows])  # g_add = m s_hat + m
        logits = cosine.index_put((rows, columns), target)
        return logits * self.s


@LOSSES.register("adaface")
def adaface(
    s: float = 64.0,
    margins: tuple | None = None,
    m: float = 0.4,
    h: float = 0.333,
    t_alpha: float = 0.01,
) -> AdaFaceMargin:
    """AdaFace: quality-adaptive margin (m 0.4, h 0.333, t_alpha 0.01 as AdaFace's IR-50 runs).

    `margins` (the (m1, m2, m3) triple of the CombinedMargin presets) has no meaning here and is
    not used: set AdaFace's own parameters with the recipe's `loss_kwargs` (m, h, t_alpha)."""
    return AdaFaceMargin(s, m, h, t_alpha)
