"""IResNet (IR-18/34/50/100/200): the ArcFace backbone, weight-compatible with arcface_torch.

Parameter and buffer names follow insightface `recognition/arcface_torch/backbones/iresnet.py`,
so its published `.pth` files load with `load_state_dict(strict=True)`:

    conv1, bn1, prelu                          stem: 3x3 conv (3 -> 64), BN, PReLU
    layer{1..4}.{i}.bn1 / conv1 / bn2 / prelu / conv2 / bn3
                                               IBasicBlock: BN, 3x3 conv, BN, PReLU,
                                               3x3 conv (stride on the first block), BN
    layer{1..4}.0.downsample.0 / .1            1x1 strided conv + BN on every stage's first block
    bn2, dropout, fc, features                 head: BN2d -> flatten -> dropout ->
                                               Linear(512*7*7 -> 512) -> BN1d (weight frozen at 1)

Stage widths are width*(1, 2, 4, 8) with width 64 for the published models; a smaller `width`
gives the narrow CPU variant used by the demo (not weight-compatible, by construction).
"""

from __future__ import annotations

import contextlib
import functools

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from backbones import BACKBONES
from backbones.arguments import STANDARD, Range, declare

STAGE_DEPTHS: dict[str, tuple[int, int, int, int]] = {
    "ir18": (2, 2, 2, 2),
    "ir34": (3, 4, 6, 3),
    "ir50": (3, 4, 14, 3),
    "ir100": (3, 13, 30, 3),
    "ir200": (6, 26, 60, 6),
}
INPUT_SIZE = 112
FEATURE_MAP = 7  # 112 / 2**4: four strided stages


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution, padding 1, no bias (a BN always follows)."""
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


class SqueezeExcite(nn.Module):
    """Channel attention: global pool -> 1x1 reduce -> ReLU -> 1x1 expand -> sigmoid gate."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, 1, bias=False)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.sigmoid(self.fc2(self.relu(self.fc1(x.mean((2, 3), keepdim=True)))))
        return x * gate


class IBasicBlock(nn.Module):
    """Pre-activation-style residual block of IResNet (BN-conv-BN-PReLU-conv-BN [+SE])."""

    def __init__(
        self,
        in_channels: int,
        channels: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        squeeze_excite: bool = False,
    ) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels, eps=1e-5)
        self.conv1 = conv3x3(in_channels, channels)
        self.bn2 = nn.BatchNorm2d(channels, eps=1e-5)
        self.prelu = nn.PReLU(channels)
        self.conv2 = conv3x3(channels, channels, stride)
        self.bn3 = nn.BatchNorm2d(channels, eps=1e-5)
        # Registered only when used, so plain IResNet state dicts have no `se` keys.
        if squeeze_excite:
            self.se = SqueezeExcite(channels)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        if hasattr(self, "se"):
            out = self.se(out)
        shortcut = x if self.downsample is None else self.downsample(x)
        return out + shortcut


class IResNet(nn.Module):
    """IResNet trunk + ArcFace embedding head; input (N,3,112,112) in [-1,1] -> (N, embedding)."""

    def __init__(
        self,
        depths: tuple[int, ...],
        width: int = 64,
        embedding_size: int = 512,
        dropout: float = 0.0,
        squeeze_excite: bool = False,
        pool_shortcut: bool = False,
        stem_stride: int = 1,
    ) -> None:
        super().__init__()
        self.embedding_size = embedding_size
        # stem_stride 2 halves the stem's output resolution: a size knob for CPU-sized demo
        # models (the full-resolution stem and first block are most of a narrow IR-18's cost).
        # The published models, and every recipe but the demo's, use 1.
        self.conv1 = conv3x3(3, width, stem_stride)
        self.bn1 = nn.BatchNorm2d(width, eps=1e-5)
        self.prelu = nn.PReLU(width)
        in_channels = width
        for index, depth in enumerate(depths):
            channels = width * 2**index
            stage = _make_stage(in_channels, channels, depth, squeeze_excite, pool_shortcut)
            self.add_module(f"layer{index + 1}", stage)
            in_channels = channels
        self.bn2 = nn.BatchNorm2d(in_channels, eps=1e-5)
        self.dropout = nn.Dropout(p=dropout)
        side = _feature_map(INPUT_SIZE, stem_stride, len(depths))
        self.fc = nn.Linear(in_channels * side * side, embedding_size)
        self.features = nn.BatchNorm1d(embedding_size, eps=1e-5)
        # arcface_torch's `using_ckpt`: recompute each block's activations in backward instead
        # of keeping them (memory for IR-100 / larger batches, ~30% more compute). Not a weight.
        self.gradient_checkpointing = False
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.prelu(self.bn1(self.conv1(x)))
        recompute = self.gradient_checkpointing and self.training and torch.is_grad_enabled()
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            for block in stage:
                x = _checkpointed(block, x) if recompute else block(x)
        # flatten (not .view): the trunk may run channels_last, which is not view-compatible.
        x = self.dropout(torch.flatten(self.bn2(x), 1))
        # The embedding head runs in float32 even under autocast, as arcface_torch does with
        # fp16: the 25088-wide FC and the BN1d are where half precision loses the most.
        with torch.autocast(device_type=x.device.type, enabled=False):
            # float64 stays float64 (the equivalence tests train in double).
            return self.features(self.fc(x.to(torch.promote_types(x.dtype, torch.float32))))


def _feature_map(size: int, stem_stride: int, stages: int) -> int:
    """Side of the trunk's output: each stride-2 3x3 conv (padding 1) maps n to ceil(n / 2)."""
    for stride in (stem_stride, *([2] * stages)):
        size = (size - 1) // stride + 1
    return size


def _checkpointed(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """`block(x)` whose activations are recomputed in backward (BN statistics updated once)."""
    contexts = functools.partial(_recompute_contexts, block)
    return checkpoint(block, x, use_reentrant=False, context_fn=contexts)


def _recompute_contexts(block: nn.Module) -> tuple:
    # The forward runs as usual; the recomputation must not move BN running statistics again.
    return contextlib.nullcontext(), _KeepBatchNormStatistics(block)


class _KeepBatchNormStatistics:
    """Restores the BN running statistics of `block` on exit (around the recomputation)."""

    def __init__(self, block: nn.Module) -> None:
        self.buffers = [
            buffer
            for module in block.modules()
            if isinstance(module, nn.modules.batchnorm._BatchNorm)
            for buffer in (module.running_mean, module.running_var, module.num_batches_tracked)
            if buffer is not None
        ]

    def __enter__(self) -> None:
        self.saved = [buffer.clone() for buffer in self.buffers]

    def __exit__(self, *exc_info) -> None:
        with torch.no_grad():
            for buffer, saved in zip(self.buffers, self.saved, strict=True):
                buffer.copy_(saved)


def _make_stage(
    in_channels: int, channels: int, depth: int, squeeze_excite: bool, pool_shortcut: bool = False
) -> nn.Sequential:
    """One stride-2 stage: a downsampling block followed by depth-1 identity blocks.

    `pool_shortcut`: where the width does not change, the downsampling shortcut is a strided
    1x1 max-pool (plain subsampling, no weights) as in TFace/AdaFace IR models, instead of
    arcface_torch's 1x1 conv + BN (only model-zoo loading uses it, bench.eval.model_zoo)."""
    downsample: nn.Module = nn.Sequential(
        nn.Conv2d(in_channels, channels, 1, stride=2, bias=False),
        nn.BatchNorm2d(channels, eps=1e-5),
    )
    if pool_shortcut and in_channels == channels:
        downsample = nn.MaxPool2d(1, stride=2)
    blocks = [IBasicBlock(in_channels, channels, 2, downsample, squeeze_excite)]
    blocks += [
        IBasicBlock(channels, channels, squeeze_excite=squeeze_excite) for _ in range(depth - 1)
    ]
    return nn.Sequential(*blocks)


def _init_weights(model: nn.Module) -> None:
    """arcface_torch's initialisation: N(0, 0.1) convs, unit BN, frozen unit embedding BN scale."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.normal_(module.weight, 0.0, 0.1)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    features = model.features
    nn.init.ones_(features.weight)
    # arcface_torch freezes the embedding BN scale (only its shift is learnt).
    features.weight.requires_grad_(False)


def _iresnet_factory(name: str):
    depths = STAGE_DEPTHS[name]

    def build(
        width: int = 64, embedding_size: int = 512, dropout: float = 0.0, stem_stride: int = 1
    ) -> IResNet:
        return IResNet(
            depths,
            width=width,
            embedding_size=embedding_size,
            dropout=dropout,
            stem_stride=stem_stride,
        )

    build = declare(**STANDARD, stem_stride=Range(int, 1, 2))(build)
    build.__name__ = f"build_{name}"
    build.__doc__ = f"IResNet {name.upper()} (stage depths {depths}), arcface_torch-compatible."
    return build


for _name in STAGE_DEPTHS:
    BACKBONES.register(_name)(_iresnet_factory(_name))
