"""Feed hostile and broken model/input files (issue 18 items 1, 8, 10: model half) through the CLI
and count what each does: a clear error (one line, rc != 0), a traceback, a silent wrong outcome
(code from a model file ran, a degenerate model passed without a warning), a bomb (refused only
after allocating more than BOMB_MB), a hang, or the expected success (a repaired or warned case).

Every case runs in its own process with an address-space limit (--memory-gb) and a timeout, and
reports its peak RSS and wall time; run it against an older checkout to compare:

    .venv/bin/python benchmarks/hostile_cases.py                      # this checkout
    git worktree add /tmp/old eafb491
    .venv/bin/python benchmarks/hostile_cases.py --code /tmp/old      # the old code

The inputs come from tests/hostile/hostile_inputs.py (generated, tiny)."""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "hostile"))
# Peak RSS a refused bomb may reach: torch + onnxruntime + numpy imported is ~250-300 MB here.
BOMB_MB = 600
RUNNER = "import sys\nfrom bench import cli\nsys.exit(cli.main(sys.argv[1:]))\n"


@dataclass
class Case:
    """One CLI invocation and what a correct facebench does with it."""

    group: str
    name: str
    argv: list[str]
    expect: str  # "error" | "success" | "warning"
    untouched: Path | None = None  # a file the model must not change
    trusted: bool = False  # needs --trust-model where the CLI has it
    max_mb: float | None = None  # a bomb: refused only if the process stayed below this peak RSS


def build_cases(base: Path) -> list[Case]:
    """Generate every input under `base` and return the cases."""
    import hostile_inputs as h
    from onnx import TensorProto

    world = h.make_world(base / "world")
    models = base / "models"
    models.mkdir()
    target = base / "user_script.sh"
    target.write_text("echo safe\n")
    (base / "secret.bin").write_bytes(b"\0\0\x80?")
    cases = [
        Case(
            "torchscript",
            "writes_a_file",
            h.eval_argv(world, h.torchscript(h.FileWriter(str(target)), models / "writer.ts")),
            "error",
            untouched=target,
        ),  # fmt: skip
        Case(
            "torchscript",
            "returns_dict",
            h.eval_argv(world, h.torchscript(h.ReturnsDict(), models / "dict.ts")),
            "error",
            trusted=True,
        ),  # fmt: skip
        Case(
            "torchscript",
            "returns_rank4",
            h.eval_argv(world, h.torchscript(h.ReturnsRank4(), models / "rank4.ts")),
            "error",
            trusted=True,
        ),  # fmt: skip
    ]
    cases += _diagnose_writer(h, base, target)
    onnx_files = {
        "input_224": h.onnx_model(models / "input_224.onnx", ["N", 3, 224, 224]),
        "nhwc": h.onnx_model(models / "nhwc.onnx", ["N", 112, 112, 3], output_shape=["N", 112]),
        "double": h.onnx_model(models / "double.onnx", input_type=TensorProto.DOUBLE),
        "float16": h.onnx_model(models / "float16.onnx", input_type=TensorProto.FLOAT16),
        "two_inputs": h.onnx_two_inputs(models / "two_inputs.onnx"),
        "rank4_output": h.onnx_identity(models / "rank4_output.onnx"),
        "rank1_output": h.onnx_model(models / "rank1.onnx", output_shape=[], reduce_axes=(1, 2, 3)),
        "custom_op": h.onnx_custom_op(models / "custom_op.onnx"),
        "outside_data": h.onnx_external_data(models / "outside.onnx", "../secret.bin"),
    }
    (models / "random.onnx").write_bytes(os.urandom(4096))
    (models / "empty.onnx").write_bytes(b"")
    onnx_files["random_bytes"] = models / "random.onnx"
    onnx_files["empty_file"] = models / "empty.onnx"
    cases += [Case("onnx", name, h.eval_argv(world, path), "error") for name, path in onnx_files.items()]  # fmt: skip
    kwargs = {
        "width_4096": {"width": 4096},
        "embedding_1e6": {"embedding_size": 10**6},
        "unknown_key": {"widht": 2},
        "width_str": {"width": "2"},
        "dropout_2": {"dropout": 2.0},
        "kwargs_list": [2, 4],
    }
    cases += [
        Case(
            "backbone_kwargs",
            name,
            h.eval_argv(world, h.checkpoint(models / f"{name}.pt", value)),
            "error",
            max_mb=BOMB_MB,
        )
        for name, value in kwargs.items()
    ]
    return cases + _bomb_cases(h, base) + _eval_input_cases(h, base)


def _diagnose_writer(h, base: Path, target: Path) -> list[Case]:
    """`bench diagnose` of a 2-identity image folder with the file-writing TorchScript model."""
    import numpy as np
    from PIL import Image

    folder = base / "faces"
    for identity in range(2):
        (folder / f"id{identity}").mkdir(parents=True)
        for index in range(2):
            pixels = np.full((112, 112, 3), 40 * identity + 10 * index, np.uint8)
            Image.fromarray(pixels).save(folder / f"id{identity}" / f"{index}.png")
    model = h.torchscript(h.FileWriter(str(target)), base / "writer_diagnose.ts")
    argv = ["diagnose", str(folder), "--model", str(model), "--targets", "none"]
    argv += ["--out", str(base / "diagnostics"), "--per-identity", "2", "--device", "cpu"]
    return [Case("torchscript", "writes_a_file_diagnose", argv, "error", untouched=target)]


def _bomb_cases(h, base: Path) -> list[Case]:
    cases = []
    for kind, data in (("png_8000", h.png_bomb(8000)), ("jpeg_8000", h.jpeg_bomb(8000))):
        world = h.make_world(base / f"bomb_{kind}")
        h.bin_with_images(world["bin"], [data, data])
        model = h.onnx_model(base / f"bomb_{kind}.onnx")
        argv = h.eval_argv(world, model)
        cases.append(Case("bombs", f"{kind}_in_bin", argv, "error", max_mb=BOMB_MB))
    bomb = h.yaml_alias_bomb(levels=9)
    registry = base / "bomb_registry.yaml"
    entry = f"{{display_name: {bomb}, pairs: 1, file: x.bin, obtain: x}}"
    registry.write_text(f"schema_version: 1\ntraining: {{}}\nevaluation:\n  lfw: {entry}\n")
    recipe = base / "bomb_recipe.yaml"
    recipe.write_text(f"verify_targets: {bomb}\n")
    datasets = ["datasets", "--catalog", str(registry)]
    cases.append(Case("bombs", "yaml_registry", datasets, "error", max_mb=BOMB_MB))
    train = ["train", "ms1mv2", "--recipe", str(recipe), "--data-root", str(base / "none")]
    cases.append(Case("bombs", "yaml_recipe", train, "error", max_mb=BOMB_MB))
    return cases


def _eval_input_cases(h, base: Path) -> list[Case]:
    from bench.formats import write_bin

    cases = []
    empty = h.make_world(base / "empty_bin")
    empty["bin"].write_bytes(b"")
    model = h.onnx_model(base / "mean.onnx")
    cases.append(Case("eval_inputs", "empty_bin", h.eval_argv(empty, model), "error"))
    no_pairs = h.make_world(base / "no_pairs")
    write_bin(no_pairs["bin"], [], [])
    cases.append(Case("eval_inputs", "zero_pair_bin", h.eval_argv(no_pairs, model), "error"))
    cases.append(Case("eval_inputs", "truncated_cache", h.eval_argv(_truncated_cache_world(h, base, model), model), "success"))  # fmt: skip
    world = h.make_world(base / "plain")
    tpu = h.eval_argv(world, model, "--device", "tpu")
    cases.append(Case("eval_inputs", "device_tpu", tpu, "error"))
    zero = h.onnx_model(base / "zero.onnx", scale=0.0)
    cases.append(Case("eval_inputs", "all_zero_model", h.eval_argv(world, zero), "warning"))
    constant = h.onnx_constant(base / "constant.onnx")
    cases.append(Case("eval_inputs", "constant_model", h.eval_argv(world, constant), "warning"))
    return cases


def _truncated_cache_world(h, base: Path, model: Path) -> dict:
    """A world whose decoded-image cache was cut in half (a killed writer, a bad copy)."""
    import numpy as np

    world = h.make_world(base / "cache")
    cache_dir = world["bin"].parent / ".cache"
    cache_dir.mkdir()
    from bench.core.io import sha256_file

    stem = f"{h.EVAL_SET}-{sha256_file(world['bin'])[:16]}"
    images = np.zeros((2 * h.PAIRS, 112, 112, 3), np.uint8)
    np.save(cache_dir / f"{stem}.issame.npy", np.arange(h.PAIRS) % 2 == 0)
    np.save(cache_dir / f"{stem}.npy", images)
    cache = cache_dir / f"{stem}.npy"
    cache.write_bytes(cache.read_bytes()[: cache.stat().st_size // 2])
    return world


def run_case(case: Case, code: Path, memory_gb: float, timeout: float, trust: bool) -> dict:
    """Run one case in a fresh process; classify its outcome."""
    argv = list(case.argv) + (["--trust-model"] if case.trusted and trust else [])
    before = case.untouched.read_bytes() if case.untouched else None
    env = dict(os.environ, PYTHONPATH=str(code))
    limit = int(memory_gb * 2**30)

    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-c", RUNNER, *argv],
            cwd=tempfile.gettempdir(),
            env=env,
            stdout=out,
            stderr=err,
            preexec_fn=limit_memory,
        )
        status, usage = _wait(process, timeout)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    peak_mb = usage.ru_maxrss / 1024 if usage else float("nan")
    outcome = _classify(case, status, stdout, stderr, before)
    if outcome == "clear" and case.max_mb is not None and not peak_mb < case.max_mb:
        outcome = "bomb"  # refused in the end, but only after allocating what it asked for
    last = [line for line in stderr.splitlines() if line.strip()][-1:] or [""]
    return {
        "case": case,
        "outcome": outcome,
        "seconds": seconds,
        "peak_mb": peak_mb,
        "last_line": last[0][:200],
    }


def _wait(process: subprocess.Popen, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            return process.returncode, usage
        time.sleep(0.05)
    process.kill()
    _pid, status, usage = os.wait4(process.pid, 0)
    return None, usage


def _classify(case: Case, status, stdout: str, stderr: str, before: bytes | None) -> str:
    if status is None:
        return "hang"
    if "Traceback (most recent call last)" in stderr or status < 0:
        return "traceback"
    if before is not None and case.untouched.read_bytes() != before:
        case.untouched.write_bytes(before)
        return "silent"  # the model's code ran and wrote a file
    if case.expect == "error":
        return "clear" if status != 0 else "silent"
    if case.expect == "warning":
        return "expected" if status == 0 and "WARNING" in stdout + stderr else "silent"
    return "expected" if status == 0 else "clear"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--code", type=Path, default=REPO, help="checkout to test (PYTHONPATH)")
    parser.add_argument("--memory-gb", type=float, default=6.0, help="address-space limit")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per case")
    parser.add_argument("--groups", help="comma-separated case groups to run (default: all)")
    args = parser.parse_args()
    help_text = subprocess.run(
        [sys.executable, "-c", RUNNER, "eval", "--help"],
        env=dict(os.environ, PYTHONPATH=str(args.code)),
        cwd=tempfile.gettempdir(),
        capture_output=True,
        text=True,
    ).stdout
    trust = "--trust-model" in help_text
    counts: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as directory:
        groups = set(args.groups.split(",")) if args.groups else None
        for case in build_cases(Path(directory)):
            if groups and case.group not in groups:
                continue
            row = run_case(case, args.code, args.memory_gb, args.timeout, trust)
            counts[row["outcome"]] = counts.get(row["outcome"], 0) + 1
            print(
                f"{case.group:16s} {case.name:24s} {row['outcome']:10s} {row['seconds']:6.1f}s "
                f"{row['peak_mb']:7.0f} MB  {row['last_line']}",
                flush=True,
            )
    totals = ", ".join(f"{outcome} {count}" for outcome, count in sorted(counts.items()))
    print(f"totals (code {args.code}): {totals}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
