"""Outputs under a kill or a full disk (issue 18 item 4): a report killed while writing one of its
files leaves the previous file intact, and a full disk is one clear message naming the path."""

from __future__ import annotations

import builtins
import errno
import io
import os
import shutil
from pathlib import Path

import pytest
from helpers import FIXTURES

from bench.cli import main as cli
from bench.core import io as bench_io
from bench.core.errors import StorageError
from bench.data.manifest import Manifest

RESULTS = FIXTURES / "results"
CATALOG = FIXTURES / "datasets.yaml"


MANIFEST = Manifest("x", "canonical", 1, 1, [1], "0" * 64, "0" * 64, "2026-01-01T00:00:00+00:00")


class Killed(BaseException):
    """Stands for SIGKILL arriving in the middle of a write (nothing after it runs cleanly)."""


def _opened_name(file) -> str:
    if isinstance(file, int):
        return os.readlink(f"/proc/self/fd/{file}")
    return os.fspath(file)


class _HalfWriter:
    """A file object that writes half of what it is given, then the process 'dies'."""

    def __init__(self, handle, failure: BaseException):
        self._handle, self._failure = handle, failure

    def write(self, data):
        self._handle.write(data[: len(data) // 2])
        self._handle.flush()
        raise self._failure

    def __getattr__(self, name):
        return getattr(self._handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._handle.close()


def _fail_writes_to(monkeypatch, name: str, failure: BaseException) -> None:
    """Every open-for-writing of a file whose name contains `name` fails half-way through."""
    real_open = io.open

    def opening(file, mode="r", *args, **kwargs):
        handle = real_open(file, mode, *args, **kwargs)
        if any(flag in mode for flag in "wax") and name in Path(_opened_name(file)).name:
            return _HalfWriter(handle, failure)
        return handle

    monkeypatch.setattr(io, "open", opening)
    monkeypatch.setattr(builtins, "open", opening)


def _report(results: Path, out: Path) -> int:
    return cli(["report", "--results", str(results), "--out", str(out), "--catalog", str(CATALOG)])


def _outputs(out: Path) -> dict[str, bytes]:
    return {path.relative_to(out).as_posix(): path.read_bytes() for path in out.rglob("*")
            if path.is_file()}  # fmt: skip


@pytest.fixture(scope="module")
def previous_report(tmp_path_factory) -> tuple[Path, Path, dict[str, bytes]]:
    """A report of two results, and a results folder with a third (so a rebuild changes all)."""
    root = tmp_path_factory.mktemp("report")
    results = root / "results"
    for name in ("uiface_0.5m", "dcface_0.5m"):
        shutil.copytree(RESULTS / name, results / name)
    assert _report(results, root / "out") == 0
    shutil.copytree(RESULTS / "vec2face_hsface10k", results / "vec2face_hsface10k")
    return results, root / "out", _outputs(root / "out")


@pytest.mark.parametrize("victim", ["leaderboard.html", "leaderboard.csv", "suite1-accuracy.png"])
def test_a_killed_report_leaves_the_previous_file_intact(tmp_path, monkeypatch, previous_report,
                                                         victim):  # fmt: skip
    results, previous_out, before = previous_report
    out = tmp_path / "out"
    shutil.copytree(previous_out, out)
    _fail_writes_to(monkeypatch, victim, Killed())
    with pytest.raises(Killed):
        _report(results, out)
    monkeypatch.undo()
    after = _outputs(out)
    path = next(name for name in before if name.endswith(victim))
    assert after[path] == before[path], f"{path} was changed by a killed write"
    assert set(after) == set(before), "a temporary file was left behind or an output lost"


def test_a_full_disk_is_one_message_and_keeps_the_report(tmp_path, monkeypatch, caplog,
                                                         previous_report):  # fmt: skip
    results, previous_out, before = previous_report
    out = tmp_path / "out"
    shutil.copytree(previous_out, out)
    _fail_writes_to(monkeypatch, "leaderboard.md", OSError(errno.ENOSPC, "No space left on device"))
    assert _report(results, out) == 2
    monkeypatch.undo()
    [message] = [record.getMessage() for record in caplog.records if record.levelname == "ERROR"]
    assert "leaderboard.md: the disk is full" in message and "MiB free" in message
    assert _outputs(out)["leaderboard.md"] == before["leaderboard.md"]


@pytest.mark.parametrize("where", ["checkpoint", "result", "eval_cache", "manifest"])
def test_every_writer_turns_enospc_into_a_storage_error(tmp_path, monkeypatch, where):
    """Checkpoints, results, the eval cache and manifests all write through bench.core.io."""
    import numpy as np
    import torch

    from bench.data.manifest import write_manifest
    from bench.eval import sets
    from bench.train import checkpoint

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(bench_io.os, "fsync", full)
    writers = {
        "checkpoint": lambda: checkpoint.atomic_save({"w": torch.zeros(2)}, tmp_path / "c.pt"),
        "result": lambda: bench_io.atomic_write_text(tmp_path / "r.json", "{}"),
        "eval_cache": lambda: sets._save_array(tmp_path / "e.npy", np.zeros(3)),
        "manifest": lambda: write_manifest(tmp_path, MANIFEST),
    }
    with pytest.raises(StorageError, match="the disk is full"):
        writers[where]()
    assert not list(tmp_path.iterdir()), "a temporary file was left behind"


def test_the_training_log_on_a_full_disk_is_a_storage_error(tmp_path):
    from types import SimpleNamespace

    from bench.train.progress import Progress

    progress = Progress(tmp_path, SimpleNamespace(is_main=True), 10, 0, bar=False)

    class FullDisk:
        name = str(tmp_path / "log.jsonl")

        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")

    progress.jsonl.close()
    progress.jsonl = FullDisk()
    with pytest.raises(StorageError, match="log.jsonl: the disk is full"):
        progress.write({"type": "train", "step": 1})


@pytest.mark.parametrize("where", ["under a file", "in /proc"])
def test_an_unwritable_out_is_one_message_before_any_work(tmp_path, caplog, where):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    out = blocker / "reports" if where == "under a file" else Path("/proc/facebench-reports")
    assert _report(RESULTS, out) == 2
    [message] = [record.getMessage() for record in caplog.records if record.levelname == "ERROR"]
    assert message.startswith(f"{out}: cannot create this output folder")
