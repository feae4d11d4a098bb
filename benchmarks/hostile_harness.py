"""The harness of benchmarks/hostile_runs.py: the checkout under test, the scripts its cases run
in subprocesses (a recipe, a lock holder, a writer cut short), and the Runner that runs the CLI and
tallies each case's outcome (ok, traceback, silent, lost)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
GOOD = FIXTURES / "results" / "uiface_0.5m" / "ir50_arcface-seed0.json"
DATASET = "uiface_0.5m"
# A complete smoke recipe written out (so that the old code, which had no `base:`, reads it too).
SMOKE = """name: smoke
backbone: ir18
backbone_kwargs: {width: 8}
embedding_size: 32
sync_bn: false
loss: arcface
scale: 64.0
margins: [1.0, 0.5, 0.0]
sample_rate: 1.0
batch_size: 8
base_lr: 0.1
base_batch_size: 8
momentum: 0.9
weight_decay: 5.0e-4
epochs: 1
warmup_epochs: 0.0
lr_power: 1.0
clip_grad_norm: 5.0
clip_scope: backbone
flip: true
seed: 0
precision: fp32
channels_last: false
compile: false
deterministic: true
encoded_input: false
num_threads: 1
num_workers: 0
log_every: 1
checkpoint_every: 100
keep_checkpoints: 2
verify_every: 0
verify_targets: []
progress: false
"""
KNOWN_KEYS = (
    "import dataclasses as d, bench.train.config as c; "
    "print(*(f.name for f in d.fields(c.TrainConfig)))"
)
HOLD_LOCK = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, f"{os.getpid()} 2026-01-01T00:00:00+00:00".encode())
print("locked", flush=True)
time.sleep(600)
"""
# Runs `bench report` with every write to a file named argv[1] cut half-way: by SIGKILL, or by
# ENOSPC (argv[2]); the rest of argv is the report's arguments.
CUT_WRITE = """
import builtins, errno, io, os, signal, sys
victim, how = sys.argv[1], sys.argv[2]
real_open = io.open
class Half:
    def __init__(self, handle): self.handle = handle
    def write(self, data):
        self.handle.write(data[: len(data) // 2]); self.handle.flush()
        if how == "kill": os.kill(os.getpid(), signal.SIGKILL)
        raise OSError(errno.ENOSPC, "No space left on device")
    def __getattr__(self, name): return getattr(self.handle, name)
    def __enter__(self): return self
    def __exit__(self, *exc): self.handle.close()
def opening(file, mode="r", *args, **kwargs):
    handle = real_open(file, mode, *args, **kwargs)
    name = os.readlink(f"/proc/self/fd/{file}") if isinstance(file, int) else os.fspath(file)
    if any(flag in mode for flag in "wax") and victim in os.path.basename(name):
        return Half(handle)
    return handle
io.open = builtins.open = opening
from bench.cli import main
sys.exit(main(sys.argv[3:]))
"""


class Runner:
    """Runs the CLI of one checkout on generated inputs and tallies the outcomes."""

    def __init__(self, code: Path, work: Path):
        self.code, self.work = code, work
        self.env = {**os.environ, "PYTHONPATH": str(code), "PYTHONHASHSEED": "0"}
        self.outcomes: dict[str, str] = {}
        # The checkout's own fixture registry: an older checkout may not read today's schema.
        self.catalog = str(code / "tests" / "fixtures" / "datasets.yaml")
        self.verify_flag = "--verify-data" in self.bench("train", "--help").stdout
        fields = self.python("-c", KNOWN_KEYS).stdout.split()
        # The smoke recipe in the keys this checkout knows (an older one lacks newer keys).
        self.smoke = "".join(
            line + "\n" for line in SMOKE.splitlines() if line.split(":")[0] in fields
        )

    def python(self, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, *args], cwd=self.code, env=self.env, text=True,
                              capture_output=True, timeout=timeout)  # fmt: skip

    def bench(self, *args: str) -> subprocess.CompletedProcess:
        return self.python("-m", "bench", *args)

    def record(self, case: str, done: subprocess.CompletedProcess, silent: bool, lost=False):
        text = done.stdout + done.stderr
        outcome = ("traceback" if "Traceback (most recent call last)" in text
                   else "lost" if lost else "silent" if silent else "ok")  # fmt: skip
        self.outcomes[case] = outcome
        said = [line for line in done.stderr.splitlines() if line.strip()][-1:] or [""]
        print(f"  {outcome:9s} {case} (rc {done.returncode}) {said[0][-110:]}", flush=True)

    def folder(self, name: str) -> Path:
        path = self.work / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path
