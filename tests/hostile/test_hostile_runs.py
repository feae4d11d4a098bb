"""Run directories and prepare targets (issue 18 items 5, 6): a second launch is refused while the
first holds the lock, the lock goes with its process, and what a killed process left behind is
cleaned (or a replaced set restored) by the next run of the same command."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import CONFIGS, FIXTURES, make_set

from bench.cli import main as cli
from bench.train.recipe import load_config

CATALOG = FIXTURES / "datasets.yaml"
DATASET = "uiface_0.5m"  # any name the fixture registry knows
HOLD = """
import sys, time
from bench.core.lock import exclusive
with exclusive(sys.argv[1], "test"):
    print("locked", flush=True)
    time.sleep(60)
"""


@pytest.fixture
def holder():
    """Start a process that holds the lock of a path; it is killed (-9) at the end."""
    started = []

    def start(target: Path) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(target)], stdout=subprocess.PIPE, text=True
        )
        assert process.stdout.readline().strip() == "locked"
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()
        process.wait()


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _error(caplog) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.levelname == "ERROR")


def _train_args(tmp_path: Path) -> list[str]:
    return ["train", DATASET, "--catalog", str(CATALOG), "--data-root", str(tmp_path / "data"),
            "--runs-root", str(tmp_path / "runs"), "--recipe", str(CONFIGS / "smoke.yaml"),
            "--device", "cpu"]  # fmt: skip


def test_a_second_training_launch_is_refused_while_the_first_runs(tmp_path, holder, caplog):
    make_set(tmp_path / "data" / "prepared" / DATASET)
    seed = load_config(CONFIGS / "smoke.yaml").seed
    run_dir = tmp_path / "runs" / DATASET / f"smoke-seed{seed}"
    first = holder(run_dir)
    assert cli(_train_args(tmp_path)) == 2
    message = _error(caplog)
    assert f"already running (pid {first.pid} since " in message and str(run_dir) in message
    assert not (run_dir / "checkpoints").exists()


def test_a_second_prepare_is_refused_and_the_lock_dies_with_its_process(tmp_path, holder, caplog):
    source = make_set(tmp_path / "source")
    target = tmp_path / "data" / "prepared" / DATASET
    args = ["prepare", DATASET, "--from", str(source), "--data-root", str(tmp_path / "data"),
            "--catalog", str(CATALOG)]  # fmt: skip
    first = holder(target)
    assert cli(args) == 2
    assert f"already running (pid {first.pid} since " in _error(caplog)
    first.kill()
    first.wait()
    assert cli(args) == 0  # the OS released the killed holder's lock
    assert (target / "manifest.json").is_file()


def test_prepare_cleans_a_dead_process_staging_and_keeps_a_live_one(tmp_path, holder):
    source = make_set(tmp_path / "source")
    prepared = tmp_path / "data" / "prepared"
    dead = prepared / f".{DATASET}.preparing-{_dead_pid()}-k2j4"
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = prepared / f".{DATASET}.preparing-{alive.pid}-x9z8"
        other_kind = prepared / f".{DATASET}.writing-{_dead_pid()}-abcd"
        for folder in (dead, live, other_kind):
            folder.mkdir(parents=True)
            (folder / "train.rec").write_bytes(b"x" * 100)
        assert cli(["prepare", DATASET, "--from", str(source),
                    "--data-root", str(tmp_path / "data"), "--catalog", str(CATALOG)]) == 0  # fmt: skip
        assert not dead.exists(), "a killed prepare's staging folder was left"
        assert live.exists() and other_kind.exists(), "a live or other kind's folder was removed"
    finally:
        alive.kill()
        alive.wait()


def test_a_set_replaced_by_a_killed_prepare_is_restored(tmp_path, caplog):
    source = make_set(tmp_path / "source")
    target = tmp_path / "data" / "prepared" / DATASET
    args = ["prepare", DATASET, "--from", str(source), "--data-root", str(tmp_path / "data"),
            "--catalog", str(CATALOG)]  # fmt: skip
    assert cli(args) == 0
    manifest = (target / "manifest.json").read_bytes()
    # Killed between its two renames: the old set aside, the new one not yet in place.
    os.rename(target, target.with_name(f".{DATASET}.replaced-{_dead_pid()}"))
    assert cli(args) == 2  # restored, so it is there again and --force is needed to replace it
    assert "already exists (a prepared set)" in _error(caplog)
    assert (target / "manifest.json").read_bytes() == manifest
    assert [p.name for p in target.parent.iterdir() if "replaced" in p.name] == []


def test_training_start_removes_a_dead_process_temp_files(tmp_path):
    from bench.train.loop import _run_lock

    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    dead = [run_dir / f".final.pt.{_dead_pid()}.a1b2c3.tmp",
            run_dir / "checkpoints" / f".step-000000004.pt.{_dead_pid()}.zz_1.tmp"]  # fmt: skip
    mine = run_dir / f".final.pt.{os.getpid()}.q1w2.tmp"
    for path in [*dead, mine]:
        path.write_bytes(b"")
    with _run_lock(run_dir):
        pass
    assert [path.exists() for path in dead] == [False, False]
    assert mine.exists()


def test_prepare_workers_exit_when_their_parent_is_killed(tmp_path):
    """A prepare killed -9 while its workers read: the workers leave within seconds."""
    source = make_set(tmp_path / "source")
    # The task must be importable by a spawned worker: a module in tmp_path.
    (tmp_path / "slowtask.py").write_text(
        "import time\n\ndef slow(dataset, *task):\n    time.sleep(60)\n", encoding="utf-8"
    )
    script = f"""
import sys
sys.path.insert(0, {str(tmp_path)!r})
import numpy as np
from slowtask import slow
from bench.data.parallel import map_chunks
from bench.formats import open_dataset

tasks = [(np.arange(4),)] * 4
for _ in map_chunks(open_dataset({str(source)!r}), slow, tasks, workers=2):
    pass
"""
    parent = subprocess.Popen([sys.executable, "-c", script])
    workers: list[int] = []
    deadline = time.monotonic() + 60
    while len(workers) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
        workers = _children(parent.pid)
    assert len(workers) >= 2, "the workers did not start"
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in workers), "workers outlived their killed parent"


def _children(pid: int) -> list[int]:
    """Worker processes of `pid` (spawned workers; the resource tracker excluded)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if f"\nPPid:\t{pid}\n" in status and b"resource_tracker" not in command:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.mark.slow
def test_kill_9_mid_training_then_resume_is_exact(tmp_path):
    """A `bench train` killed -9 (lock held, checkpoints being written) resumes under the same
    command to the weights of an uninterrupted run: the dead lock and temp files do not matter."""
    import torch

    from bench.train.checkpoint import load_checkpoint

    make_set(tmp_path / "data" / "prepared" / DATASET)

    def command(runs: str, *extra: str) -> list[str]:
        return [sys.executable, "-m", "bench", *_train_args(tmp_path)[:-6], "--runs-root",
                str(tmp_path / runs), "--recipe", str(CONFIGS / "smoke.yaml"), "--device", "cpu",
                "epochs=6", "checkpoint_every=1", *extra]  # fmt: skip

    assert subprocess.run(command("whole"), capture_output=True).returncode == 0
    killed = subprocess.Popen(
        command("killed"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    checkpoints = tmp_path / "killed" / DATASET / "smoke-seed0" / "checkpoints"
    deadline = time.monotonic() + 120
    while not list(checkpoints.glob("step-000000006.pt")) and time.monotonic() < deadline:
        time.sleep(0.05)
    killed.kill()
    killed.wait()
    assert not (checkpoints.parent / "final.pt").exists(), "finished before the kill"
    done = subprocess.run(command("killed", "--resume"), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "resumed from" in done.stderr
    whole = load_checkpoint(tmp_path / "whole" / DATASET / "smoke-seed0" / "final.pt")
    resumed = load_checkpoint(checkpoints.parent / "final.pt")
    for key, value in whole["model"].items():
        assert torch.equal(value, resumed["model"][key]), key
