"""Model-zoo weights from the command line: a bare arcface_torch state dict, an AdaFace-style
Lightning checkpoint, a TFace backbone file, and unknown layouts (one clear error each). Built
from tiny-width backbones; nothing is downloaded."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
import yaml

from backbones import build_backbone
from backbones.iresnet import STAGE_DEPTHS, IResNet
from bench.cli import main as cli_main
from bench.core.errors import BenchError, EvalError, FormatError
from bench.eval.embed import load_model
from bench.eval.model_zoo import zoo_model
from bench.formats import encode_png, write_bin

WIDTH, EMBEDDING = 4, 8
IMAGES = (torch.rand(2, 3, 112, 112) * 2 - 1).float()


def _trained_like(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random (non-default) BN statistics and shifts, so a wrong mapping shows in the output."""
    generator = torch.Generator().manual_seed(seed)
    for buffer_or_parameter in [*module.buffers(), *module.parameters()]:
        if buffer_or_parameter.dtype.is_floating_point and buffer_or_parameter.dim() == 1:
            values = torch.rand(buffer_or_parameter.shape, generator=generator) * 0.5 + 0.75
            buffer_or_parameter.data.copy_(values)
    return module.eval()


def _tface_names(state: dict) -> dict:
    """IResNet names -> TFace/AdaFace names (body numbered over all blocks), written for the test."""
    stem = {"conv1": "input_layer.0", "bn1": "input_layer.1", "prelu": "input_layer.2"}
    head = {"bn2": "output_layer.0", "fc": "output_layer.3", "features": "output_layer.4"}
    block = {"bn1": 0, "conv1": 1, "bn2": 2, "prelu": 3, "conv2": 4, "bn3": 5}
    offsets, total = {}, 0
    for stage in range(1, 5):
        offsets[stage] = total
        total += len({k.split(".")[1] for k in state if k.startswith(f"layer{stage}.")})
    renamed = {}
    for key, value in state.items():
        match = re.fullmatch(r"layer(\d)\.(\d+)\.(\w+)\.(.+)", key)
        if match:
            stage, index, module, rest = match.groups()
            body = f"body.{offsets[int(stage)] + int(index)}"
            if module == "downsample":
                renamed[f"{body}.shortcut_layer.{rest}"] = value
            elif module == "se":
                renamed[f"{body}.res_layer.se_block.{rest}"] = value
            else:
                renamed[f"{body}.res_layer.{block[module]}.{rest}"] = value
            continue
        module, _, rest = key.partition(".")
        if key in ("features.weight", "features.bias"):
            continue  # TFace's embedding BN1d has affine=False
        renamed[f"{(stem | head)[module]}.{rest}"] = value
    return renamed


def test_bare_arcface_torch_state_dict_is_detected_and_equal(tmp_path) -> None:
    torch.manual_seed(0)
    original = _trained_like(build_backbone("ir18", width=WIDTH, embedding_size=EMBEDDING))
    path = tmp_path / "backbone.pth"
    torch.save({f"module.{k}": v for k, v in original.state_dict().items()}, path)  # DDP prefix
    zoo = zoo_model(torch.load(path, weights_only=True), path)
    assert (zoo.backbone, zoo.layout, zoo.input_colour) == ("ir18", "arcface_torch", "rgb")
    with torch.no_grad():
        torch.testing.assert_close(zoo.module(IMAGES), original(IMAGES))
    embedder = load_model(path, backbone="ir18")
    assert embedder.info.format == "state_dict" and embedder.info.backbone == "ir18"


def test_ir200_and_irse50_state_dicts_are_detected(tmp_path) -> None:
    for name in ("ir200", "irse50"):
        original = build_backbone(name, width=2, embedding_size=EMBEDDING)
        zoo = zoo_model(original.state_dict(), tmp_path / f"{name}.pth")
        assert zoo.backbone == name
    assert STAGE_DEPTHS["ir200"] == (6, 26, 60, 6)


def test_adaface_lightning_checkpoint_loads_with_bgr_and_equal_outputs(tmp_path) -> None:
    torch.manual_seed(1)
    original = IResNet(
        STAGE_DEPTHS["ir50"], width=2, embedding_size=EMBEDDING, squeeze_excite=True,
        pool_shortcut=True,
    )  # fmt: skip
    original = _trained_like(original)
    original.features.weight.data.fill_(1.0)
    original.features.bias.data.zero_()  # AdaFace's BN1d is affine=False
    state = {f"model.{k}": v for k, v in _tface_names(original.state_dict()).items()}
    state["head.kernel"] = torch.randn(EMBEDDING, 10)
    path = tmp_path / "adaface_ir50.ckpt"
    torch.save({"state_dict": state, "epoch": 25, "hyper_parameters": {"arch": "ir_50"}}, path)
    zoo = zoo_model(torch.load(path, weights_only=True), path)
    assert (zoo.backbone, zoo.layout, zoo.input_colour) == ("irse50", "adaface", "bgr")
    assert "layer1.0.downsample.0.weight" not in zoo.module.state_dict()  # max-pool shortcut
    with torch.no_grad():
        torch.testing.assert_close(zoo.module(IMAGES), original(IMAGES))
    assert zoo_model(
        torch.load(path, weights_only=True), path, input_colour="rgb"
    ).input_colour == ("rgb")


def test_tface_backbone_file_loads(tmp_path) -> None:
    torch.manual_seed(2)
    original = IResNet(
        STAGE_DEPTHS["ir34"], width=WIDTH, embedding_size=EMBEDDING, pool_shortcut=True
    )
    original = _trained_like(original)
    original.features.weight.data.fill_(1.0)
    original.features.bias.data.zero_()
    zoo = zoo_model(_tface_names(original.state_dict()), tmp_path / "Backbone_IR_34.pth")
    assert (zoo.backbone, zoo.layout) == ("ir34", "tface")
    with torch.no_grad():
        torch.testing.assert_close(zoo.module(IMAGES), original(IMAGES))


def _assert_short(error: BenchError) -> None:
    assert len(str(error)) < 700 and str(error).count("\n") == 0


@pytest.mark.parametrize(
    ("weights", "match"),
    [
        ({f"encoder.block{i}.weight": torch.zeros(2) for i in range(40)}, "unknown weight layout"),
        ({"state_dict": {"net.w": torch.zeros(1)}}, "no 'model.' keys"),
        ({"conv1.weight": torch.zeros(1), "epoch": 3}, "non-tensor entries: epoch"),
        ([torch.zeros(1)], "holds a list"),
    ],
    ids=["unknown", "lightning_without_model", "mixed", "list"],
)
def test_unknown_layouts_give_one_clear_error(tmp_path, weights, match: str) -> None:
    with pytest.raises(FormatError, match=match) as caught:
        zoo_model(weights, tmp_path / "w.pth")
    _assert_short(caught.value)
    assert str(caught.value).count("encoder.block") <= 4  # a few keys, not all 40


def test_wrong_backbone_and_damaged_weights_name_a_few_keys(tmp_path) -> None:
    state = build_backbone("ir18", width=WIDTH, embedding_size=EMBEDDING).state_dict()
    with pytest.raises(
        EvalError, match="--backbone ir50 does not fit these weights, which are ir18"
    ):
        zoo_model(state, tmp_path / "w.pth", backbone="ir50")
    damaged = {k: v for k, v in state.items() if not k.startswith("layer2.0.bn1.")}
    damaged["fc.weight"] = torch.zeros(3, 5)
    with pytest.raises(FormatError, match=r"missing \d+ key\(s\).*shape mismatch") as caught:
        zoo_model(damaged, tmp_path / "w.pth")
    _assert_short(caught.value)


def test_tface_bottleneck_layout_is_refused_clearly(tmp_path) -> None:
    weights = {"input_layer.0.weight": torch.zeros(4, 3, 3, 3)}
    weights["body.0.res_layer.8.weight"] = torch.zeros(4)
    with pytest.raises(FormatError, match="bottleneck IR"):
        zoo_model(weights, tmp_path / "w.pth")


def _eval_world(base):
    """A 10-pair .bin of noise faces and a catalog naming it."""
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, (20, 112, 112, 3), dtype=np.uint8)
    (base / "data" / "eval").mkdir(parents=True)
    write_bin(base / "data" / "eval" / "zoo.bin", [encode_png(f) for f in faces], [True, False] * 5)
    entry = {"display_name": "Zoo", "pairs": 10, "file": "zoo.bin", "obtain": "made by the test"}
    catalog = base / "datasets.yaml"
    catalog.write_text(
        yaml.safe_dump({"schema_version": 1, "training": {}, "evaluation": {"zoo": entry}})
    )
    return base / "data", catalog


def test_bench_eval_cli_evaluates_a_bare_state_dict(tmp_path) -> None:
    root, catalog = _eval_world(tmp_path)
    torch.save(build_backbone("ir18", width=WIDTH, embedding_size=EMBEDDING).state_dict(),
               tmp_path / "backbone.pth")  # fmt: skip
    out = tmp_path / "result.json"
    code = cli_main(
        ["eval", "--model", str(tmp_path / "backbone.pth"), "--backbone", "ir18",
         "--targets", "zoo", "--data-root", str(root), "--catalog", str(catalog),
         "--device", "cpu", "--input-colour", "bgr", "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    result = json.loads(out.read_text())
    assert result["model"]["format"] == "state_dict" and result["model"]["backbone"] == "ir18"
    assert 0.0 <= result["targets"]["zoo"]["acc"] <= 1.0
