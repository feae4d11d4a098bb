"""Broken evaluation inputs through `bench eval`: empty sets, a truncated decode cache, a device that
does not exist, a model that outputs nothing. Each is one clear line, a repair, or a warning."""

from __future__ import annotations

import json
import logging

import pytest
from hostile_inputs import EVAL_SET, eval_argv, make_world, onnx_model

from bench import cli
from bench.eval.results import read_result
from bench.formats import write_bin


def run_cli(argv, caplog, level=logging.ERROR) -> tuple[int, str]:
    caplog.clear()
    with caplog.at_level(level, logger="bench"):
        code = cli.main(argv)
    return code, " ".join(record.getMessage() for record in caplog.records)


@pytest.fixture
def world(tmp_path):
    return make_world(tmp_path)


def test_empty_bin_file_is_one_clear_error(world, tmp_path, caplog):
    world["bin"].write_bytes(b"")
    code, message = run_cli(eval_argv(world, onnx_model(tmp_path / "m.onnx")), caplog)
    assert code == 2 and str(world["bin"]) in message


def test_bin_without_pairs_is_one_clear_error(world, tmp_path, caplog):
    write_bin(world["bin"], [], [])
    code, message = run_cli(eval_argv(world, onnx_model(tmp_path / "m.onnx")), caplog)
    assert code == 2 and str(world["bin"]) in message and "no pairs" in message


def test_truncated_eval_cache_is_deleted_and_rebuilt(world, tmp_path, caplog):
    model = onnx_model(tmp_path / "m.onnx")
    assert cli.main(eval_argv(world, model)) == 0
    first = read_result(model.with_suffix(".result.json"))["targets"][EVAL_SET]
    (cache,) = [path for path in (world["bin"].parent / ".cache").glob("*.npy") if ".issame" not in path.name]  # fmt: skip
    size = cache.stat().st_size
    cache.write_bytes(cache.read_bytes()[: size // 2])  # a killed writer / full disk / bad copy
    code, message = run_cli(eval_argv(world, model), caplog, logging.WARNING)
    assert code == 0, message
    assert "unusable decoded cache" in message and str(cache) in message
    assert cache.stat().st_size == size  # rebuilt
    again = read_result(model.with_suffix(".result.json"))["targets"][EVAL_SET]
    assert again["scores_b64"] == first["scores_b64"]


def test_unknown_device_is_refused_by_the_parser(world, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(eval_argv(world, tmp_path / "m.onnx", "--device", "tpu"))
    assert stop.value.code == 2
    assert "--device" in capsys.readouterr().err


def test_all_zero_model_is_flagged_in_output_and_result(world, tmp_path, caplog, capsys):
    model = onnx_model(tmp_path / "zero.onnx", scale=0.0)  # every embedding is (0, 0, 0)
    code, message = run_cli(eval_argv(world, model), caplog, logging.WARNING)
    assert code == 0
    assert "XNorm" in message and "WARNING" in capsys.readouterr().out
    result = json.loads(model.with_suffix(".result.json").read_text())
    assert any(EVAL_SET in warning and "XNorm" in warning for warning in result["warnings"])


def test_constant_model_is_flagged(world, tmp_path):
    from hostile_inputs import onnx_constant

    model = onnx_constant(tmp_path / "constant.onnx")  # one non-zero embedding for every face
    assert cli.main(eval_argv(world, model)) == 0
    warnings = read_result(model.with_suffix(".result.json"))["warnings"]
    assert any("same distance" in warning for warning in warnings), warnings


def test_a_real_model_has_no_warnings(world, tmp_path):
    model = onnx_model(tmp_path / "mean.onnx")
    assert cli.main(eval_argv(world, model)) == 0
    assert read_result(model.with_suffix(".result.json"))["warnings"] == []
