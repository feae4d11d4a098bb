"""The demo's size knob: IResNet with a stride-2 stem (stem_stride=2), checked against stride 1."""

from __future__ import annotations

import pytest
import torch

from backbones import build_backbone
from bench.core.errors import ConfigError


def test_stride_two_stem_halves_every_feature_map_and_keeps_the_head():
    torch.manual_seed(0)
    plain = build_backbone("ir18", width=8, embedding_size=32).eval()
    torch.manual_seed(0)
    strided = build_backbone("ir18", width=8, embedding_size=32, stem_stride=2).eval()
    assert plain.fc.in_features == 64 * 7 * 7  # 112 -> 56 -> 28 -> 14 -> 7
    assert strided.fc.in_features == 64 * 4 * 4  # 112 -> 56 -> 28 -> 14 -> 7 -> 4
    x = torch.randn(2, 3, 112, 112)
    assert strided(x).shape == plain(x).shape == (2, 32)
    assert strided.conv1.stride == (2, 2) and plain.conv1.stride == (1, 1)
    # Same parameter names (a checkpoint records stem_stride in backbone_kwargs to rebuild it).
    assert plain.state_dict().keys() == strided.state_dict().keys()


def test_stem_stride_is_range_checked():
    with pytest.raises(ConfigError, match="stem_stride"):
        build_backbone("ir18", width=8, stem_stride=3)
