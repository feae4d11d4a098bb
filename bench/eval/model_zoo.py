"""Model-zoo weights -> a facebench backbone with the weights loaded (`bench eval --model FILE`).

Read as state dicts (tensors only), in three layouts:
- arcface_torch `backbone.pth`: a bare state dict in IResNet names (conv1, layer1.0.bn1, ...,
  fc, features), optionally "module."-prefixed; loads into backbones.iresnet as it is.
- TFace backbone files (torchkit model_irse `IR_*` / `IR_SE_*`): input_layer, body.N.res_layer,
  body.N.shortcut_layer, output_layer, renamed here to IResNet names. Where a stage keeps its
  width (the first) the shortcut is a strided 1x1 max-pool, not a conv + BN (`pool_shortcut`),
  and the embedding BN1d has no affine parameters (scale 1, shift 0 here).
- AdaFace's Lightning checkpoints: {"state_dict": {"model.<TFace names>", "head.kernel"}}
  (AdaFace's backbone is TFace's layout). AdaFace models were trained on BGR input.
The architecture comes from keys and shapes: stage depths, width, embedding size, SE blocks.
The channel order is `input_colour` when given, else what the file records, else bgr for
AdaFace and rgb otherwise (TFace files record none: pass --input-colour if yours was BGR).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from backbones import build_backbone
from backbones.iresnet import STAGE_DEPTHS, IResNet
from bench.core.errors import EvalError, FormatError

INPUT_COLOURS = ("rgb", "bgr")
SHOWN_KEYS = 4  # error messages name at most this many keys
EXPECTED_LAYOUTS = (
    "expected an arcface_torch backbone.pth (IResNet names: conv1.weight, layer1.0.bn1.weight, "
    "..., fc.weight), a TFace backbone file (input_layer.0.weight, body.0.res_layer.0.weight, "
    "..., output_layer.3.weight), an AdaFace Lightning checkpoint ({'state_dict': "
    "{'model.input_layer.0.weight', ...}}) or a facebench checkpoint (keys 'backbone', "
    "'backbone_kwargs', 'model')"
)


@dataclass(frozen=True)
class ZooModel:
    """A loaded model-zoo backbone and what evaluating it needs."""

    module: nn.Module
    backbone: str  # registry name of the architecture (ir50, irse50, mobilefacenet, ...)
    layout: str  # arcface_torch | tface | adaface | facebench
    input_colour: str  # channel order the model was trained on


@dataclass(frozen=True)
class Architecture:
    """What the keys and shapes of a state dict say about the network."""

    backbone: str
    width: int
    embedding_size: int
    squeeze_excite: bool = False
    pool_shortcut: bool = False


def is_facebench_checkpoint(weights: Any) -> bool:
    """A facebench training checkpoint (backbone name + kwargs + weights) rather than zoo weights."""
    return isinstance(weights, dict) and "backbone" in weights and "model" in weights


def few(keys: Any) -> str:
    """At most SHOWN_KEYS keys, and how many more there are."""
    keys = sorted(str(key) for key in keys)
    if not keys:
        return "no keys"
    shown = ", ".join(keys[:SHOWN_KEYS])
    return shown + (f" (+{len(keys) - SHOWN_KEYS} more)" if len(keys) > SHOWN_KEYS else "")


def zoo_model(
    weights: Any, path: Path, backbone: str | None = None, input_colour: str | None = None
) -> ZooModel:
    """Build and load the backbone held by model-zoo `weights` (read from `path`).

    `backbone`, when given, must agree with what the weights are; `input_colour` overrides
    what the file records."""
    state, layout, recorded_colour = unwrap(weights, path)
    if layout != "arcface_torch":
        state = from_tface_names(state, path)
    architecture = detect_architecture(state, path)
    if backbone is not None and backbone != architecture.backbone:
        raise EvalError(
            f"{path}: --backbone {backbone} does not fit these weights, which are "
            f"{architecture.backbone} (width {architecture.width}, embedding "
            f"{architecture.embedding_size}); drop --backbone or pass --backbone "
            f"{architecture.backbone}"
        )
    module = build(architecture)
    load_strict(module, state, path, architecture.backbone)
    default = "bgr" if layout == "adaface" else "rgb"
    colour = input_colour or recorded_colour or default
    if colour not in INPUT_COLOURS:
        raise EvalError(f"{path}: input colour must be rgb or bgr, got {colour!r}")
    return ZooModel(module.eval(), architecture.backbone, layout, colour)


def unwrap(weights: Any, path: Path) -> tuple[dict[str, torch.Tensor], str, str | None]:
    """(state dict, layout, recorded colour) of an arcface_torch/TFace file or AdaFace checkpoint."""
    if not isinstance(weights, dict):
        raise FormatError(f"{path}: holds a {type(weights).__name__}; {EXPECTED_LAYOUTS}")
    if isinstance(weights.get("state_dict"), dict):  # a (PyTorch Lightning) training checkpoint
        inner = weights["state_dict"]
        state = {k[len("model.") :]: v for k, v in inner.items() if k.startswith("model.")}
        if not state:
            raise FormatError(
                f"{path}: a Lightning checkpoint whose state_dict has no 'model.' keys (found "
                f"{few(inner)}); {EXPECTED_LAYOUTS}"
            )
        hyper = weights.get("hyper_parameters")
        recorded = weights.get("input_colour") or (
            hyper.get("input_colour") if isinstance(hyper, dict) else None
        )
        return _tensors_only(state, path), "adaface", recorded
    state = _tensors_only(weights, path)
    if state and all(key.startswith("module.") for key in state):  # saved from a DDP wrapper
        state = {key[len("module.") :]: value for key, value in state.items()}
    layout = "tface" if any(key.startswith("input_layer.") for key in state) else "arcface_torch"
    return state, layout, None


def _tensors_only(state: dict, path: Path) -> dict[str, torch.Tensor]:
    others = [key for key, value in state.items() if not isinstance(value, torch.Tensor)]
    if others or not state:
        raise FormatError(
            f"{path}: not a state dict of tensors ("
            + (f"non-tensor entries: {few(others)}" if others else "empty")
            + f"); {EXPECTED_LAYOUTS}"
        )
    return state


_TFACE_STEM = {"input_layer.0": "conv1", "input_layer.1": "bn1", "input_layer.2": "prelu"}
_TFACE_HEAD = {"output_layer.0": "bn2", "output_layer.3": "fc", "output_layer.4": "features"}
_TFACE_BLOCK = {
    "res_layer.0": "bn1",
    "res_layer.1": "conv1",
    "res_layer.2": "bn2",
    "res_layer.3": "prelu",
    "res_layer.4": "conv2",
    "res_layer.5": "bn3",
    "res_layer.se_block": "se",
    "shortcut_layer.0": "downsample.0",
    "shortcut_layer.1": "downsample.1",
}
_BODY_KEY = re.compile(r"body\.(\d+)\.(res_layer\.(?:\d+|se_block)|shortcut_layer\.\d+)\.(.+)")


def from_tface_names(state: dict[str, torch.Tensor], path: Path) -> dict[str, torch.Tensor]:
    """TFace/AdaFace IR key names -> IResNet names (unknown keys kept, so loading names them)."""
    if any(re.match(r"body\.\d+\.res_layer\.[6-9]\.", key) for key in state):
        raise FormatError(
            f"{path}: TFace bottleneck IR blocks (IR-152/IR-200 with 9-layer res_layer) have no "
            "facebench counterpart (IResNet has basic blocks only); export the model to ONNX"
        )
    if "body.0.res_layer.2.weight" in state and "body.0.res_layer.2.running_mean" not in state:
        raise FormatError(
            f"{path}: face.evoLVe / InsightFace_Pytorch IR blocks (BN, conv, PReLU, conv, BN: no "
            "BN after the first conv) cannot be mapped onto IResNet; export the model to ONNX"
        )
    positions = _block_positions(state)
    renamed = {}
    for key, value in state.items():
        match = _BODY_KEY.fullmatch(key)
        if match:
            stage, block = positions[int(match.group(1))]
            name = _TFACE_BLOCK.get(match.group(2), match.group(2))
            renamed[f"layer{stage}.{block}.{name}.{match.group(3)}"] = value
            continue
        prefix, _, rest = key.rpartition(".")
        mapped = _TFACE_STEM.get(prefix) or _TFACE_HEAD.get(prefix)
        renamed[f"{mapped}.{rest}" if mapped else key] = value
    # TFace/AdaFace's embedding BN1d has no affine parameters: scale 1, shift 0.
    if "features.running_mean" in renamed and "features.weight" not in renamed:
        size = renamed["features.running_mean"].shape
        renamed["features.weight"] = torch.ones(size)
        renamed["features.bias"] = torch.zeros(size)
    return renamed


def _block_positions(state: dict[str, torch.Tensor]) -> dict[int, tuple[int, int]]:
    """body index -> (stage 1.., block in stage 0..): a new stage wherever the width changes."""
    widths = {}
    for key, value in state.items():
        match = re.fullmatch(r"body\.(\d+)\.res_layer\.1\.weight", key)
        if match:
            widths[int(match.group(1))] = value.shape[0]
    positions, stage, block, previous = {}, 0, 0, None
    for index in sorted(widths):
        if widths[index] != previous:
            stage, block, previous = stage + 1, 0, widths[index]
        positions[index] = (stage, block)
        block += 1
    return positions


def detect_architecture(state: dict[str, torch.Tensor], path: Path) -> Architecture:
    """The registered backbone that `state` (IResNet or facebench MobileFaceNet names) fits."""
    if "conv1.weight" in state and "layer1.0.bn1.weight" in state and "fc.weight" in state:
        return _iresnet_architecture(state, path)
    if "trunk.0.0.weight" in state and "gdc.0.weight" in state and "fc.weight" in state:
        return Architecture(
            "mobilefacenet", state["trunk.0.0.weight"].shape[0], state["fc.weight"].shape[0]
        )
    if any(key.startswith(("layers.", "conv_sep.")) for key in state):
        raise FormatError(
            f"{path}: arcface_torch's MobileFaceNet layout (keys {few(state)}) has no facebench "
            "counterpart (facebench's mobilefacenet uses other modules); export it to ONNX"
        )
    raise FormatError(f"{path}: unknown weight layout (keys {few(state)}); {EXPECTED_LAYOUTS}")


def _iresnet_architecture(state: dict[str, torch.Tensor], path: Path) -> Architecture:
    depths = tuple(
        len({key.split(".")[1] for key in state if key.startswith(f"layer{stage}.")})
        for stage in range(1, 5)
    )
    squeeze_excite = any(".se.fc1.weight" in key for key in state)
    known = {"irse50": STAGE_DEPTHS["ir50"]} if squeeze_excite else STAGE_DEPTHS
    names = [name for name, stage_depths in known.items() if stage_depths == depths]
    if not names:
        kind = "IR-SE" if squeeze_excite else "IR"
        choices = ", ".join(f"{name} {list(d)}" for name, d in known.items())
        raise FormatError(
            f"{path}: {kind} weights with stage depths {list(depths)} match no registered "
            f"backbone (known: {choices})"
        )
    return Architecture(
        backbone=names[0],
        width=state["conv1.weight"].shape[0],
        embedding_size=state["fc.weight"].shape[0],
        squeeze_excite=squeeze_excite,
        pool_shortcut="layer1.0.downsample.0.weight" not in state,
    )


def build(architecture: Architecture) -> nn.Module:
    """An untrained module of `architecture` (IResNet built directly for TFace's shortcut)."""
    if architecture.backbone == "mobilefacenet" or not architecture.pool_shortcut:
        return build_backbone(
            architecture.backbone,
            width=architecture.width,
            embedding_size=architecture.embedding_size,
        )
    depths = STAGE_DEPTHS["ir50" if architecture.squeeze_excite else architecture.backbone]
    return IResNet(
        depths,
        width=architecture.width,
        embedding_size=architecture.embedding_size,
        squeeze_excite=architecture.squeeze_excite,
        pool_shortcut=True,
    )


def load_strict(module: nn.Module, state: dict[str, torch.Tensor], path: Path, name: str) -> None:
    """load_state_dict(strict) with an error that names a few keys and what was expected."""
    expected = module.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    wrong = [
        f"{key} {list(state[key].shape)} (expected {list(expected[key].shape)})"
        for key in expected
        if key in state and state[key].shape != expected[key].shape
    ]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} key(s): {few(missing)}")
    if unexpected:
        problems.append(f"unexpected {len(unexpected)} key(s): {few(unexpected)}")
    if wrong:
        problems.append(f"{len(wrong)} shape mismatch(es): {'; '.join(wrong[:SHOWN_KEYS])}")
    if problems:
        raise FormatError(f"{path}: weights do not fit {name}: {'; '.join(problems)}")
    module.load_state_dict(state, strict=True)
