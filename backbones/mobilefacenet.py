"""MobileFaceNet (Chen et al. 2018): a ~1M-parameter embedding network for CPU-sized runs.

Layout as in the paper: 3x3/2 conv, depthwise 3x3, three inverted-residual stages (each opened by
a strided depthwise bottleneck), 1x1 conv to 512, then a global depthwise conv (GDC) over the
7x7 map, a linear layer and BN1d. `width` scales every channel count (64 = the paper).
"""

from __future__ import annotations

import torch
from torch import nn

from backbones import BACKBONES
from backbones.arguments import STANDARD, declare

FEATURE_MAP = 7


class ConvBN(nn.Sequential):
    """Conv -> BN [-> PReLU]; `groups == in_channels` makes it depthwise."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int = 1,
        stride: int = 1,
        groups: int = 1,
        activation: bool = True,
    ) -> None:
        padding = kernel // 2 if kernel < FEATURE_MAP else 0
        layers: list[nn.Module] = [
            nn.Conv2d(
                in_channels, out_channels, kernel, stride, padding, groups=groups, bias=False
            ),
            nn.BatchNorm2d(out_channels),
        ]
        if activation:
            layers.append(nn.PReLU(out_channels))
        super().__init__(*layers)


class Bottleneck(nn.Module):
    """Inverted residual: 1x1 expand -> depthwise 3x3 (stride) -> 1x1 linear projection."""

    def __init__(self, in_channels: int, out_channels: int, expanded: int, stride: int) -> None:
        super().__init__()
        self.residual = stride == 1 and in_channels == out_channels
        self.body = nn.Sequential(
            ConvBN(in_channels, expanded),
            ConvBN(expanded, expanded, 3, stride, groups=expanded),
            ConvBN(expanded, out_channels, activation=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return x + out if self.residual else out


class MobileFaceNet(nn.Module):
    """MobileFaceNet; input (N,3,112,112) in [-1,1] -> (N, embedding_size)."""

    # (output channels as a multiple of width, expansion as a multiple of width, repeats)
    STAGES = ((1, 2, 5), (2, 4, 7), (2, 2, 3))

    def __init__(self, width: int = 64, embedding_size: int = 512, dropout: float = 0.0) -> None:
        super().__init__()
        self.embedding_size = embedding_size
        layers: list[nn.Module] = [
            ConvBN(3, width, 3, 2),
            ConvBN(width, width, 3, 1, groups=width),
        ]
        channels = width
        for out_mult, expand_mult, repeats in self.STAGES:
            out_channels, expanded = out_mult * width, expand_mult * width
            layers.append(Bottleneck(channels, out_channels, expanded * 2, stride=2))
            layers += [
                Bottleneck(out_channels, out_channels, expanded, 1) for _ in range(repeats - 1)
            ]
            channels = out_channels
        last = 8 * width
        layers.append(ConvBN(channels, last))
        self.trunk = nn.Sequential(*layers)
        # GDC: one 7x7 depthwise filter per channel replaces global average pooling.
        self.gdc = ConvBN(last, last, FEATURE_MAP, groups=last, activation=False)
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(last, embedding_size, bias=False)
        self.features = nn.BatchNorm1d(embedding_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.gdc(self.trunk(x)), 1)
        with torch.autocast(device_type=x.device.type, enabled=False):
            x = self.dropout(x)
            return self.features(self.fc(x.to(torch.promote_types(x.dtype, torch.float32))))


@BACKBONES.register("mobilefacenet")
@declare(**STANDARD)
def build_mobilefacenet(
    width: int = 64, embedding_size: int = 512, dropout: float = 0.0
) -> MobileFaceNet:
    """MobileFaceNet (width 64 = the paper's channel counts)."""
    return MobileFaceNet(width=width, embedding_size=embedding_size, dropout=dropout)
