"""Hostile and broken model files through `bench eval`: code in a model file never runs unless the
user trusts it, and every broken model is one clear error line (rc 2), never a traceback."""

from __future__ import annotations

import inspect
import logging

import pytest
import torch
from hostile_inputs import (
    FileWriter,
    ReturnsDict,
    ReturnsRank4,
    checkpoint,
    eval_argv,
    make_world,
    onnx_custom_op,
    onnx_external_data,
    onnx_identity,
    onnx_model,
    onnx_two_inputs,
    torchscript,
)
from onnx import TensorProto

from backbones import BACKBONES, backbone_names
from bench import cli
from bench.core.errors import EvalError
from bench.eval.embed import load_model
from bench.eval.results import read_result


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return make_world(tmp_path_factory.mktemp("hostile_models"))


def run_cli(argv, caplog) -> tuple[int, str]:
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="bench"):
        code = cli.main(argv)
    return code, " ".join(record.getMessage() for record in caplog.records)


def test_torchscript_that_writes_a_file_is_refused_without_trust(world, tmp_path, caplog):
    target = tmp_path / "user_script.sh"
    target.write_text("echo safe\n")
    model = torchscript(FileWriter(str(target)), tmp_path / "writer.ts")
    code, message = run_cli(eval_argv(world, model), caplog)
    assert code == 2
    assert "TorchScript" in message and "--trust-model" in message and "from_file" in message
    assert target.read_text() == "echo safe\n"  # the forward never ran
    with pytest.raises(EvalError, match="trust=True"):
        load_model(model)
    assert target.read_text() == "echo safe\n"


def test_trusted_torchscript_runs(world, tmp_path, caplog):
    model = tmp_path / "mean.ts"
    torch.jit.trace(lambda x: x.mean(dim=(2, 3)), torch.zeros(1, 3, 112, 112)).save(str(model))
    code, _ = run_cli(eval_argv(world, model, "--trust-model"), caplog)
    assert code == 0
    assert read_result(model.with_suffix(".result.json"))["model"]["format"] == "torchscript"


@pytest.mark.parametrize(
    ("module", "expected"),
    [(ReturnsDict(), "returned a dict"), (ReturnsRank4(), r"returned shape \(\d+, 3, 2, 2\)")],
)
def test_trusted_torchscript_with_wrong_output_is_a_clear_error(
    world, tmp_path, caplog, module, expected
):
    model = torchscript(module, tmp_path / "bad.ts")
    code, message = run_cli(eval_argv(world, model, "--trust-model"), caplog)
    assert code == 2
    assert str(model) in message
    assert __import__("re").search(expected, message), message


def onnx_cases(tmp_path):
    """name -> (model file, what the one-line error must say)."""
    random_bytes = tmp_path / "random.onnx"
    random_bytes.write_bytes(torch.randint(0, 256, (4096,), generator=torch.Generator().manual_seed(1)).to(torch.uint8).numpy().tobytes())  # fmt: skip
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    return {
        "input_224": (onnx_model(tmp_path / "a.onnx", ["N", 3, 224, 224]), "expected (N, 3, 112"),
        "nhwc": (
            onnx_model(tmp_path / "b.onnx", ["N", 112, 112, 3], output_shape=["N", 112]),
            "NCHW",
        ),  # fmt: skip
        "double": (
            onnx_model(tmp_path / "c.onnx", input_type=TensorProto.DOUBLE),
            "tensor(double)",
        ),  # fmt: skip
        "float16": (
            onnx_model(tmp_path / "d.onnx", input_type=TensorProto.FLOAT16),
            "tensor(float16)",
        ),  # fmt: skip
        "two_inputs": (onnx_two_inputs(tmp_path / "e.onnx"), "takes 2 inputs"),
        "rank4_output": (onnx_identity(tmp_path / "f.onnx"), "expected (N, D)"),
        "rank1_output": (
            onnx_model(tmp_path / "g.onnx", output_shape=[], reduce_axes=(1, 2, 3)),
            "expected (",
        ),
        "custom_op": (onnx_custom_op(tmp_path / "h.onnx"), "onnxruntime cannot load"),
        "random_bytes": (random_bytes, "onnx"),
        "empty": (empty, "onnx"),
        "outside_data": (
            onnx_external_data(tmp_path / "i.onnx", "../secret.bin"),
            "outside the model's folder",
        ),
    }


def test_broken_onnx_models_are_one_clear_error(world, tmp_path, caplog):
    (tmp_path.parent / "secret.bin").write_bytes(b"\0\0\x80?")  # 1.0f, outside the folder
    failures = []
    for name, (model, expected) in onnx_cases(tmp_path).items():
        code, message = run_cli(eval_argv(world, model), caplog)
        if code != 2 or str(model) not in message or expected not in message:
            failures.append(f"{name}: rc {code}, {message!r}")
    assert not failures, "\n".join(failures)


def test_onnx_external_data_beside_the_model_still_loads(world, tmp_path, caplog):
    (tmp_path / "weights.bin").write_bytes(b"\0\0\x80?")
    model = onnx_external_data(tmp_path / "inside.onnx", "weights.bin")
    code, message = run_cli(eval_argv(world, model), caplog)
    assert code == 0, message


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"width": 4096}, "'width' must lie within 1..512"),
        ({"widht": 2}, "unknown argument 'widht'"),
        ({"width": "2"}, "'width' must be int, got str"),
        ({"embedding_size": 10**6}, "'embedding_size' must lie within"),
        ({"dropout": 2.0}, "'dropout' must lie within"),
        ([2, 4], "'backbone_kwargs' must map"),
    ],
)
def test_checkpoint_backbone_kwargs_are_checked_before_building(
    world, tmp_path, caplog, kwargs, expected
):
    model = checkpoint(tmp_path / "ckpt.pt", kwargs)
    code, message = run_cli(eval_argv(world, model), caplog)
    assert code == 2
    assert str(model) in message and expected in message, message


@pytest.mark.parametrize("name", backbone_names())
def test_every_backbone_declares_the_range_of_each_argument(name):
    """A new backbone is checked like the others: ranges for exactly its factory's arguments."""
    factory = BACKBONES.get(name)
    ranges = getattr(factory, "argument_ranges", None)
    assert ranges is not None, f"decorate build_{name} with backbones.arguments.declare(...)"
    assert set(ranges) == set(inspect.signature(factory).parameters)
