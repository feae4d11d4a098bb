"""`bench bench --nproc 2` on CPU (gloo): torchrun under the hood, rank 0 alone prepares, checks,
evaluates and writes; a rank killed mid-run stops the other, and rerunning completes the run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from test_pipeline import _tiny_catalog

from bench.train.checkpoint import list_checkpoints, load_checkpoint

RUN = Path("demo_diverse") / "smoke-seed0"


def _command(tmp_path: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "bench", "bench", "demo_diverse", "--nproc", "2",
        "--catalog", str(_tiny_catalog(tmp_path)), "--device", "cpu", "--workers", "1",
        "--data-root", str(tmp_path / "data"), "--runs-root", str(tmp_path / "runs"),
        "--results", str(tmp_path / "results"), *extra,
    ]  # fmt: skip


@pytest.mark.slow
def test_two_processes_run_the_whole_pipeline_once(tmp_path: Path) -> None:
    done = subprocess.run(_command(tmp_path), capture_output=True, text=True, timeout=600)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "--nproc-per-node=2" in output and "local_batch=4" in output  # 2 ranks of batch 8
    assert [p.name for p in (tmp_path / "results" / "demo_diverse").iterdir()] == [
        "smoke-seed0.json"
    ]
    assert output.count("result: ") == 1  # printed by rank 0 only
    assert output.count("checking") <= 1 and output.count("prepared set found") <= 1
    assert load_checkpoint(tmp_path / "runs" / RUN / "final.pt")["step"] == 3


@pytest.mark.slow
def test_killed_rank_stops_the_other_and_a_rerun_completes(tmp_path: Path) -> None:
    command = _command(tmp_path, "epochs=8", "checkpoint_every=2")  # 24 steps
    tag = uuid.uuid4().hex
    log = (tmp_path / "first.log").open("w")
    launched = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "BENCH_TEST_TAG": tag}
    )
    checkpoints = tmp_path / "runs" / RUN / "checkpoints"
    _wait_for(lambda: list_checkpoints(checkpoints), launched, "the first checkpoint")
    os.kill(_rank_pid(tag, rank=1), signal.SIGKILL)
    start = time.monotonic()
    assert launched.wait(timeout=120) != 0
    assert time.monotonic() - start < 60  # rank 0 was stopped, not left waiting
    first = (tmp_path / "first.log").read_text()
    assert "Signal 9 (SIGKILL)" in first and "rank" in first, first[-3000:]
    assert "Rerun the same command to resume" in first
    assert not (tmp_path / "results" / "demo_diverse").exists()
    resumed_from = list_checkpoints(checkpoints)[-1][0]

    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert f"resumed from {checkpoints}" in output and f"at step {resumed_from}" in output
    assert load_checkpoint(tmp_path / "runs" / RUN / "final.pt")["step"] == 24
    assert (tmp_path / "results" / "demo_diverse" / "smoke-seed0.json").is_file()


def _wait_for(condition, process: subprocess.Popen, what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"the run ended before {what}"
        assert time.monotonic() < deadline, f"no {what} after {timeout} s"
        time.sleep(0.05)


def _rank_pid(tag: str, rank: int) -> int:
    """The pid of the training process of `rank` among the processes carrying `tag`."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"BENCH_TEST_TAG={tag}".encode() in environ and f"RANK={rank}".encode() in environ:
            return int(entry.name)
    raise AssertionError(f"no process of rank {rank} found")
