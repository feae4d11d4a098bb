"""Training-time augmentation, batched on the device: random resized crop, low resolution (down-up
sampling), photometric jitter, random erasing. Flip stays with the sampler (`flip` key).

The recipe's `augmentation` mapping names the operations and their parameters, e.g.
    augmentation: {crop: {p: 0.2}, low_res: {p: 0.2}, photometric: {p: 0.2}}
An empty mapping (THE recipe) changes nothing. Every random number is a pure function of
(seed, step, position of the sample in the global batch): the parameters of the whole global
batch are drawn on the CPU from a generator seeded by (seed, step) and each rank takes its rows,
so the result does not depend on the device, the process count or where a run was resumed.

Images are the model input, float (N, 3, H, W) in [-1, 1], RGB. Spatial operations are per-sample
separable resampling matrices (out = R_h @ image @ R_w^T), so one batched matmul does them all:
the crop resize is bilinear (F.interpolate, align_corners=False, on the crop), the low-resolution
round trip is adaptive average pooling down and bilinear up. Photometric jitter follows
torchvision's ColorJitter formulas in a fixed order (brightness, contrast, saturation, hue; hue
as a rotation of the YIQ chroma plane, an approximation of torchvision's HSV shift).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from bench.core.errors import ConfigError
from bench.core.registry import close_matches

ATTEMPTS = 10  # box draws per sample, as torchvision's RandomResizedCrop / RandomErasing
BLACK = -1.0  # pixel 0 in the normalised input space: AdaFace's crop pads with zeros
GREY_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R 601 luma, as torchvision's rgb_to_grayscale

# Parameters of each operation and their defaults (AdaFace's augmenter unless noted).
DEFAULTS: dict[str, dict[str, Any]] = {
    # mode pad: the crop stays in place on a black canvas (AdaFace); resize: torchvision's
    # RandomResizedCrop (the crop is resized to the full image).
    "crop": {"p": 0.0, "scale": (0.2, 1.0), "ratio": (3 / 4, 4 / 3), "mode": "pad"},
    "low_res": {"p": 0.0, "side": (0.2, 1.0)},  # small side = int(side * H)
    "photometric": {"p": 0.0, "brightness": 0.5, "contrast": 0.5, "saturation": 0.5, "hue": 0.0},
    # torchvision RandomErasing defaults; value in the normalised space (0 = mid grey).
    "erase": {"p": 0.0, "scale": (0.02, 0.33), "ratio": (0.3, 3.3), "value": 0.0},
}
CROP_MODES = ("pad", "resize")


@dataclass(frozen=True)
class Augmentation:
    """Parsed `augmentation` mapping: per operation, its parameters (defaults filled in)."""

    ops: dict[str, dict[str, Any]]

    @property
    def active(self) -> bool:
        return any(params["p"] > 0 for params in self.ops.values())

    def p(self, op: str) -> float:
        return self.ops[op]["p"]


def parse_augmentation(mapping: Mapping[str, Any], where: str = "augmentation") -> Augmentation:
    """Validate the recipe's `augmentation` mapping; ConfigError naming the key otherwise."""
    ops = {op: dict(params) for op, params in DEFAULTS.items()}
    for op, given in dict(mapping).items():
        if op not in DEFAULTS:
            known = sorted(DEFAULTS)
            raise ConfigError(
                f"{where}: unknown operation {op!r}{close_matches(op, known)}; "
                f"known: {', '.join(known)}"
            )
        if not isinstance(given, Mapping):
            raise ConfigError(f"{where}.{op}: expected a mapping such as {{p: 0.2}}, got {given!r}")
        for key, value in given.items():
            if key not in DEFAULTS[op]:
                known = sorted(DEFAULTS[op])
                raise ConfigError(
                    f"{where}.{op}: unknown parameter {key!r}{close_matches(key, known)}; "
                    f"known: {', '.join(known)}"
                )
            ops[op][key] = _checked(value, DEFAULTS[op][key], f"{where}.{op}.{key}")
    _check_ranges(ops, where)
    return Augmentation(ops)


def augmentation_problems(mapping: Mapping[str, Any]) -> list[str]:
    """What is wrong with an `augmentation` mapping (for the config's validation), or []."""
    try:
        parse_augmentation(mapping)
    except ConfigError as error:
        return [str(error)]
    return []


def _checked(value: Any, default: Any, where: str) -> Any:
    if isinstance(default, tuple):
        ok = isinstance(value, (list, tuple)) and len(value) == 2
        ok = ok and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        if not ok:
            raise ConfigError(f"{where}: expected a [low, high] pair of numbers, got {value!r}")
        return (float(value[0]), float(value[1]))
    if isinstance(default, str):
        if value not in CROP_MODES:
            raise ConfigError(f"{where}: expected one of {', '.join(CROP_MODES)}, got {value!r}")
        return value
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    return float(value)


def _check_ranges(ops: dict[str, dict[str, Any]], where: str) -> None:
    problems = [f"{op}.p must be in [0, 1]" for op in ops if not 0.0 <= ops[op]["p"] <= 1.0]
    pairs = [("crop", "scale"), ("crop", "ratio"), ("low_res", "side")]
    pairs += [("erase", "scale"), ("erase", "ratio")]
    for op, key in pairs:
        low, high = ops[op][key]
        if not 0.0 < low <= high or (key in ("scale", "side") and high > 1.0):
            bound = " <= 1" if key in ("scale", "side") else ""
            problems.append(f"{op}.{key} must be 0 < low <= high{bound}, got [{low}, {high}]")
    jitter = ("brightness", "contrast", "saturation")
    problems += [f"photometric.{k} must be >= 0" for k in jitter if ops["photometric"][k] < 0]
    if not 0.0 <= ops["photometric"]["hue"] <= 0.5:
        problems.append("photometric.hue must be in [0, 0.5] (a fraction of a turn)")
    if problems:
        raise ConfigError(f"{where}: " + "; ".join(problems))


# --- random parameters: a pure function of (seed, step, position in the global batch) -------


@dataclass(frozen=True)
class Draws:
    """Per-sample uniforms in [0, 1) (float64, CPU): one block of columns per operation."""

    crop: torch.Tensor  # (N, 1 + 4 * ATTEMPTS): apply, then area/ratio/top/left per attempt
    low_res: torch.Tensor  # (N, 2): apply, side
    photometric: torch.Tensor  # (N, 5): apply, brightness, contrast, saturation, hue
    erase: torch.Tensor  # (N, 1 + 4 * ATTEMPTS)


WIDTHS = {"crop": 1 + 4 * ATTEMPTS, "low_res": 2, "photometric": 5, "erase": 1 + 4 * ATTEMPTS}


def draw(seed: int, step: int, global_batch: int, offset: int, count: int) -> Draws:
    """Uniforms of global-batch positions [offset, offset + count) at `step`."""
    generator = torch.Generator().manual_seed(((seed * 1_000_003 + step) * 7_919 + 17) % 2**63)
    uniforms = torch.rand(
        global_batch, sum(WIDTHS.values()), generator=generator, dtype=torch.float64
    )
    uniforms = uniforms[offset : offset + count]
    blocks, start = {}, 0
    for op, width in WIDTHS.items():
        blocks[op] = uniforms[:, start : start + width]
        start += width
    return Draws(**blocks)


@dataclass(frozen=True)
class Boxes:
    """Integer boxes per sample (top, left, height, width) and whether a draw succeeded."""

    top: torch.Tensor
    left: torch.Tensor
    height: torch.Tensor
    width: torch.Tensor
    found: torch.Tensor


def sample_boxes(
    uniforms: torch.Tensor, size: tuple[int, int], scale: tuple, ratio: tuple, strict: bool
) -> Boxes:
    """torchvision's box draw, vectorised: up to ATTEMPTS tries of area ~ U(scale) * area and
    log-uniform aspect ratio; the first that fits wins. `strict` (RandomErasing) needs the box
    smaller than the image on both sides; otherwise (RandomResizedCrop) it may fill it."""
    height, width = size
    area, log_ratio, top, left = (uniforms[:, k::4] for k in range(4))
    target = height * width * (scale[0] + (scale[1] - scale[0]) * area)
    aspect = torch.exp(math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * log_ratio)
    box_w = torch.round(torch.sqrt(target * aspect))
    box_h = torch.round(torch.sqrt(target / aspect))
    if strict:
        fits = (box_w < width) & (box_h < height)
    else:
        fits = (box_w > 0) & (box_w <= width) & (box_h > 0) & (box_h <= height)
    found = fits.any(dim=1)
    first = torch.argmax(fits.to(torch.int8), dim=1, keepdim=True)  # first True (0 if none)
    box_h = box_h.gather(1, first).squeeze(1)
    box_w = box_w.gather(1, first).squeeze(1)
    box_h = torch.where(found, box_h, torch.full_like(box_h, height))
    box_w = torch.where(found, box_w, torch.full_like(box_w, width))
    top = torch.floor(top.gather(1, first).squeeze(1) * (height - box_h + 1))
    left = torch.floor(left.gather(1, first).squeeze(1) * (width - box_w + 1))
    return Boxes(top.long(), left.long(), box_h.long(), box_w.long(), found)


# --- the operations on a batch (N, 3, H, W) in [-1, 1] -------------------------------------


def box_mask(boxes: Boxes, size: tuple[int, int], device: torch.device) -> torch.Tensor:
    """(N, 1, H, W) bool: True inside each sample's box."""
    rows = torch.arange(size[0], device=device).view(1, -1, 1)
    cols = torch.arange(size[1], device=device).view(1, 1, -1)
    top, left = boxes.top.to(device).view(-1, 1, 1), boxes.left.to(device).view(-1, 1, 1)
    bottom = top + boxes.height.to(device).view(-1, 1, 1)
    right = left + boxes.width.to(device).view(-1, 1, 1)
    inside = (rows >= top) & (rows < bottom) & (cols >= left) & (cols < right)
    return inside.unsqueeze(1)


def bilinear_matrix(
    out_size: int, start: torch.Tensor, length: torch.Tensor, in_size: int, like: torch.Tensor
) -> torch.Tensor:
    """(N, out, in) matrices resampling input positions [start, start + length) bilinearly onto
    `out_size` outputs, as F.interpolate(mode="bilinear", align_corners=False) does on that slice;
    built on the device and in the dtype of `like` (all positions are small exact integers)."""
    start = start.to(like).view(-1, 1)
    length = length.to(like).view(-1, 1)
    position = torch.arange(out_size).to(like).view(1, -1)
    source = ((position + 0.5) * length / out_size - 0.5).clamp_min(0.0)
    low = torch.floor(source)
    high = torch.minimum(low + 1, length - 1)
    fraction = source - low
    columns = torch.arange(in_size).to(like).view(1, 1, -1)
    low, high = (low + start).unsqueeze(2), (high + start).unsqueeze(2)
    fraction = fraction.unsqueeze(2)
    return (columns == low) * (1 - fraction) + (columns == high) * fraction


def pooling_matrix(out_size: torch.Tensor, in_size: int, like: torch.Tensor) -> torch.Tensor:
    """(N, in, in) matrices whose first out_size[n] rows average input bins [floor(k in/out),
    ceil((k + 1) in/out)), as adaptive average pooling does; the remaining rows are zero."""
    out = out_size.to(like).view(-1, 1, 1)
    k = torch.arange(in_size).to(like).view(1, -1, 1)
    x = torch.arange(in_size).to(like).view(1, 1, -1)
    begin = torch.floor(k * in_size / out)
    end = torch.ceil((k + 1) * in_size / out)
    inside = (x >= begin) & (x < end) & (k < out)
    return inside.to(like) / (end - begin)


def resample(images: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """rows (N, H, H) @ image (N, C, H, W) @ cols (N, W, W)^T (all on the images' device)."""
    return torch.einsum("nij,ncjk,nlk->ncil", rows, images, cols)


def crop(images: torch.Tensor, boxes: Boxes, mode: str) -> torch.Tensor:
    """pad: keep the box in place, black elsewhere (AdaFace); resize: the box resized to H x W."""
    size = (images.shape[2], images.shape[3])
    if mode == "pad":
        return torch.where(box_mask(boxes, size, images.device), images, BLACK)
    rows = bilinear_matrix(size[0], boxes.top, boxes.height, size[0], images)
    cols = bilinear_matrix(size[1], boxes.left, boxes.width, size[1], images)
    return resample(images, rows, cols)


def low_resolution(images: torch.Tensor, side: torch.Tensor) -> torch.Tensor:
    """Down to int(side * H) x int(side * W) by average pooling, back up bilinearly."""
    height, width = images.shape[2], images.shape[3]
    small_h = torch.floor(side * height).clamp_min(1)
    small_w = torch.floor(side * width).clamp_min(1)
    zero = torch.zeros_like(side)
    rows = bilinear_matrix(height, zero, small_h, height, images)
    rows = rows @ pooling_matrix(small_h, height, images)
    cols = bilinear_matrix(width, zero, small_w, width, images)
    cols = cols @ pooling_matrix(small_w, width, images)
    return resample(images, rows, cols)


def photometric(images: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """factors (N, 4): brightness, contrast, saturation multipliers and hue shift (turns)."""
    factors = factors.to(images).view(-1, 4, 1, 1, 1)
    weights = images.new_tensor(GREY_WEIGHTS).view(1, 3, 1, 1)
    unit = (images + 1) / 2  # torchvision's formulas work on [0, 1]
    unit = (unit * factors[:, 0]).clamp(0, 1)
    grey = (unit * weights).sum(1, keepdim=True)
    mean = grey.mean(dim=(2, 3), keepdim=True)
    unit = (factors[:, 1] * unit + (1 - factors[:, 1]) * mean).clamp(0, 1)
    grey = (unit * weights).sum(1, keepdim=True)
    unit = (factors[:, 2] * unit + (1 - factors[:, 2]) * grey).clamp(0, 1)
    unit = rotate_hue(unit, factors[:, 3]).clamp(0, 1)
    return unit * 2 - 1


def rotate_hue(unit: torch.Tensor, turns: torch.Tensor) -> torch.Tensor:
    """Rotate the chroma (I, Q) plane of YIQ by `turns` (N, 1, 1, 1) of a full circle."""
    to_yiq = unit.new_tensor(
        [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]]
    )
    yiq = torch.einsum("ij,njhw->nihw", to_yiq, unit)
    angle = 2 * math.pi * turns.view(-1, 1, 1)
    cos, sin = torch.cos(angle), torch.sin(angle)
    i_rot = cos * yiq[:, 1] - sin * yiq[:, 2]
    q_rot = sin * yiq[:, 1] + cos * yiq[:, 2]
    yiq = torch.stack([yiq[:, 0], i_rot, q_rot], dim=1)
    return torch.einsum("ij,njhw->nihw", torch.linalg.inv(to_yiq), yiq)


def erase(images: torch.Tensor, boxes: Boxes, value: float) -> torch.Tensor:
    """Fill each sample's box with `value` (samples without a box, found False, are unchanged)."""
    size = (images.shape[2], images.shape[3])
    mask = box_mask(boxes, size, images.device) & boxes.found.to(images.device).view(-1, 1, 1, 1)
    return torch.where(mask, value, images)


def augment(images: torch.Tensor, spec: Augmentation, draws: Draws) -> torch.Tensor:
    """Crop, low resolution, photometric, erase (in that order) where each sample's draw falls
    below the operation's p; the other samples keep their pixels exactly. The draws live on the
    CPU, so an operation no sample of the batch drew is skipped without a device sync."""
    size = (images.shape[2], images.shape[3])
    channels_last = images.dim() == 4 and images.is_contiguous(memory_format=torch.channels_last)

    def picked(block: torch.Tensor, op: str) -> torch.Tensor:
        return block[:, 0] < spec.p(op)

    def apply(where: torch.Tensor, changed: torch.Tensor) -> torch.Tensor:
        return torch.where(where.to(images.device).view(-1, 1, 1, 1), changed, images)

    if (chosen := picked(draws.crop, "crop")).any():
        params = spec.ops["crop"]
        boxes = sample_boxes(draws.crop[:, 1:], size, params["scale"], params["ratio"], False)
        images = apply(chosen, crop(images, boxes, params["mode"]))
    if (chosen := picked(draws.low_res, "low_res")).any():
        low, high = spec.ops["low_res"]["side"]
        images = apply(chosen, low_resolution(images, low + (high - low) * draws.low_res[:, 1]))
    if (chosen := picked(draws.photometric, "photometric")).any():
        factors = jitter_factors(spec.ops["photometric"], draws.photometric[:, 1:])
        images = apply(chosen, photometric(images, factors))
    if (chosen := picked(draws.erase, "erase")).any():
        params = spec.ops["erase"]
        boxes = sample_boxes(draws.erase[:, 1:], size, params["scale"], params["ratio"], True)
        images = apply(chosen, erase(images, boxes, params["value"]))
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    return images.contiguous(memory_format=memory_format)


def jitter_factors(params: dict[str, Any], uniforms: torch.Tensor) -> torch.Tensor:
    """(N, 4) brightness/contrast/saturation factors ~ U(max(0, 1 - a), 1 + a) and hue shift
    ~ U(-hue, hue), from (N, 4) uniforms (torchvision ColorJitter's ranges)."""
    columns = []
    for k, name in enumerate(("brightness", "contrast", "saturation")):
        low, high = max(0.0, 1.0 - params[name]), 1.0 + params[name]
        columns.append(low + (high - low) * uniforms[:, k])
    columns.append(params["hue"] * (2 * uniforms[:, 3] - 1))
    return torch.stack(columns, dim=1)


class InputTransform:
    """What the loop applies to the model input after `to_model_input`: the recipe's
    augmentation (drawn for this rank's rows of the global batch) and its colour order."""

    def __init__(
        self,
        augmentation: Mapping[str, Any],
        input_colour: str,
        seed: int,
        global_batch: int,
        rank: int,
    ) -> None:
        self.spec = parse_augmentation(augmentation)
        self.bgr = input_colour == "bgr"
        self.seed, self.global_batch, self.rank = seed, global_batch, rank

    def __call__(self, images: torch.Tensor, step: int) -> torch.Tensor:
        if self.spec.active:
            count = images.shape[0]  # the local batch: rank r holds rows [r * count, ...)
            draws = draw(self.seed, step, self.global_batch, self.rank * count, count)
            images = augment(images, self.spec, draws)
        if self.bgr:  # the channel order the recipe trains on (AdaFace models: BGR)
            images = images.flip(1)
        return images
