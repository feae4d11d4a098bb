"""Training-time augmentation: deterministic in (seed, step, sample), identity at p 0, expected
statistics at p 1, the batched code equal to a per-sample reference (and CPU equal to CUDA)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from bench.core.errors import ConfigError
from bench.train.augment import (
    DEFAULTS,
    InputTransform,
    augment,
    draw,
    jitter_factors,
    parse_augmentation,
    sample_boxes,
)
from bench.train.config import TrainConfig

EVERYTHING = {
    "crop": {"p": 0.5, "mode": "resize"},
    "low_res": {"p": 0.5},
    "photometric": {"p": 0.5, "hue": 0.1},
    "erase": {"p": 0.5},
}


def _images(count: int, size: int = 16, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(count, 3, size, size, generator=generator) * 2 - 1


def _only(op: str, **params) -> dict:
    return {op: {"p": 1.0, **params}}


def test_deterministic_for_seed_and_step_and_independent_of_the_rank_split() -> None:
    images = _images(8)
    whole = InputTransform(EVERYTHING, "rgb", seed=3, global_batch=8, rank=0)
    first = whole(images, step=5)
    assert torch.equal(first, whole(images, step=5))
    assert not torch.equal(first, whole(images, step=6))
    assert not torch.equal(first, InputTransform(EVERYTHING, "rgb", 4, 8, 0)(images, step=5))
    halves = [InputTransform(EVERYTHING, "rgb", 3, 8, rank)(images[4 * rank : 4 * rank + 4], 5)
              for rank in (0, 1)]  # fmt: skip
    torch.testing.assert_close(torch.cat(halves), first, rtol=0, atol=1e-6)


@pytest.mark.parametrize("mapping", [{}, {op: {"p": 0.0} for op in DEFAULTS}])
def test_probability_zero_is_the_identity(mapping: dict) -> None:
    images = _images(6)
    assert torch.equal(InputTransform(mapping, "rgb", 0, 6, 0)(images, step=1), images)


def test_bgr_input_swaps_the_channels() -> None:
    images = _images(2)
    swapped = InputTransform({}, "bgr", 0, 2, 0)(images, step=0)
    assert torch.equal(swapped, images[:, [2, 1, 0]])


def test_crop_pad_keeps_a_box_of_the_drawn_area_on_black() -> None:
    images = torch.ones(400, 3, 56, 56)
    out = InputTransform(_only("crop", scale=[0.2, 1.0]), "rgb", 0, 400, 0)(images, step=0)
    kept = (out[:, 0] == 1.0).float().mean(dim=(1, 2))
    assert torch.equal(out.unique(), torch.tensor([-1.0, 1.0]))
    assert kept.min() >= 0.18 and kept.max() <= 1.0
    # Area ~ U(0.2, 1): mean 0.6, lowered a little by rejected boxes that do not fit.
    assert 0.5 < kept.mean() < 0.62, kept.mean()


def test_erase_fills_the_drawn_fraction_with_the_value() -> None:
    images = torch.ones(400, 3, 56, 56)
    out = InputTransform(_only("erase", scale=[0.02, 0.1]), "rgb", 0, 400, 0)(images, step=0)
    erased = (out[:, 0] == 0.0).float().mean(dim=(1, 2))
    assert erased.min() >= 0.015 and erased.max() <= 0.11
    assert abs(erased.mean().item() - 0.06) < 0.01, erased.mean()


def test_brightness_factor_is_uniform_around_one() -> None:
    grey = torch.zeros(2000, 3, 2, 2)  # unit 0.5: no clamping for factors in [0.5, 1.5]
    params = {"brightness": 0.5, "contrast": 0.0, "saturation": 0.0}
    out = InputTransform(_only("photometric", **params), "rgb", 0, 2000, 0)(grey, step=0)
    factor = ((out[:, 0, 0, 0] + 1) / 2) / 0.5
    assert factor.min() >= 0.5 - 1e-6 and factor.max() <= 1.5 + 1e-6
    assert abs(factor.mean().item() - 1.0) < 0.03
    assert abs(factor.std().item() - 1 / 12**0.5) < 0.02


def test_saturation_contrast_and_hue_keep_the_luma() -> None:
    images = _images(64) * 0.1  # away from the clamps
    params = {"brightness": 0.0, "contrast": 0.0, "saturation": 0.5, "hue": 0.3}
    out = InputTransform(_only("photometric", **params), "rgb", 0, 64, 0)(images, step=0)
    luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    torch.testing.assert_close((out * luma).sum(1), (images * luma).sum(1), atol=1e-5, rtol=0)
    assert (out - images).abs().mean() > 0.01
    contrast = InputTransform(_only("photometric", brightness=0, saturation=0), "rgb", 0, 64, 0)
    mean_luma = (contrast(images, 0) * luma).sum(1).mean(dim=(1, 2))
    torch.testing.assert_close(
        mean_luma, (images * luma).sum(1).mean(dim=(1, 2)), atol=1e-5, rtol=0
    )


def test_low_resolution_keeps_constants_and_removes_fine_detail() -> None:
    constant = torch.full((32, 3, 28, 28), 0.25)
    transform = InputTransform(_only("low_res"), "rgb", 0, 32, 0)
    torch.testing.assert_close(transform(constant, 0), constant)
    checker = (torch.arange(28).view(-1, 1) + torch.arange(28).view(1, -1)) % 2 * 2.0 - 1
    checker = checker.expand(32, 3, 28, 28).contiguous()
    out = transform(checker, 0)
    assert out.abs().mean() < 0.5 * checker.abs().mean()  # side U(0.2, 1): most detail gone
    assert out.min() >= -1 - 1e-6 and out.max() <= 1 + 1e-6


def _reference(images: torch.Tensor, mapping: dict, seed: int, step: int) -> torch.Tensor:
    """One sample at a time with slicing and torch's own interpolation."""
    spec = parse_augmentation(mapping)
    draws = draw(seed, step, images.shape[0], 0, images.shape[0])
    size = images.shape[2:]
    out = []
    for n, image in enumerate(images):
        x = image.clone()
        if draws.crop[n, 0] < spec.p("crop"):
            params = spec.ops["crop"]
            box = sample_boxes(
                draws.crop[n : n + 1, 1:], size, params["scale"], params["ratio"], False
            )
            t, left, h, w = (int(v) for v in (box.top, box.left, box.height, box.width))
            if params["mode"] == "pad":
                y = torch.full_like(x, -1.0)
                y[:, t : t + h, left : left + w] = x[:, t : t + h, left : left + w]
            else:
                y = F.interpolate(x[None, :, t : t + h, left : left + w], size=tuple(size),
                                  mode="bilinear", align_corners=False)[0]  # fmt: skip
            x = y
        if draws.low_res[n, 0] < spec.p("low_res"):
            low, high = spec.ops["low_res"]["side"]
            side = low + (high - low) * draws.low_res[n, 1].item()
            small = (max(1, int(side * size[0])), max(1, int(side * size[1])))
            down = F.adaptive_avg_pool2d(x[None], small)
            x = F.interpolate(down, size=tuple(size), mode="bilinear", align_corners=False)[0]
        if draws.photometric[n, 0] < spec.p("photometric"):
            b, c, s, hue = jitter_factors(
                spec.ops["photometric"], draws.photometric[n : n + 1, 1:]
            )[0]
            unit = ((x + 1) / 2 * b.item()).clamp(0, 1)
            luma = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)
            mean = (unit * luma).sum(0).mean()
            unit = (c.item() * unit + (1 - c.item()) * mean).clamp(0, 1)
            grey = (unit * luma).sum(0)
            unit = (s.item() * unit + (1 - s.item()) * grey).clamp(0, 1)
            x = _hue(unit, hue.item()).clamp(0, 1) * 2 - 1
        if draws.erase[n, 0] < spec.p("erase"):
            params = spec.ops["erase"]
            box = sample_boxes(
                draws.erase[n : n + 1, 1:], size, params["scale"], params["ratio"], True
            )
            if box.found.item():
                t, left, h, w = (int(v) for v in (box.top, box.left, box.height, box.width))
                x[:, t : t + h, left : left + w] = params["value"]
        out.append(x)
    return torch.stack(out)


def _hue(unit: torch.Tensor, turns: float) -> torch.Tensor:
    import math

    r, g, b = unit
    y = 0.299 * r + 0.587 * g + 0.114 * b
    i = 0.596 * r - 0.274 * g - 0.322 * b
    q = 0.211 * r - 0.523 * g + 0.312 * b
    angle = 2 * math.pi * turns
    i, q = math.cos(angle) * i - math.sin(angle) * q, math.sin(angle) * i + math.cos(angle) * q
    matrix = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
    return torch.einsum("ij,jhw->ihw", torch.linalg.inv(matrix), torch.stack([y, i, q]))


@pytest.mark.parametrize(
    "mapping",
    [
        EVERYTHING,
        {**EVERYTHING, "crop": {"p": 0.7, "mode": "pad"}},
        _only("low_res", side=[0.3, 0.9]),
    ],
)
def test_batched_equals_the_per_sample_reference(mapping: dict) -> None:
    images = _images(12, size=20, seed=1)
    spec = parse_augmentation(mapping)
    batched = augment(images, spec, draw(7, 3, 12, 0, 12))
    torch.testing.assert_close(batched, _reference(images, mapping, 7, 3), atol=2e-5, rtol=0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_equals_cpu() -> None:
    images = _images(16, size=112)
    transform = InputTransform(EVERYTHING, "bgr", 0, 16, 0)
    on_gpu = transform(images.cuda(), step=2).cpu()
    torch.testing.assert_close(on_gpu, transform(images, step=2), atol=1e-4, rtol=0)


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"crops": {"p": 1}}, "unknown operation 'crops'.*did you mean: crop"),
        ({"crop": {"prob": 1}}, r"augmentation\.crop: unknown parameter 'prob'"),
        ({"crop": {"p": 1.5}}, r"crop\.p must be in \[0, 1\]"),
        ({"crop": {"mode": "zoom"}}, "pad, resize"),
        ({"erase": {"scale": [0.5, 0.1]}}, "erase.scale"),
        ({"low_res": 0.2}, "expected a mapping"),
    ],
)
def test_bad_mappings_are_config_errors(mapping: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_augmentation(mapping)
    with pytest.raises(ConfigError, match="augmentation"):
        TrainConfig(augmentation=mapping)
