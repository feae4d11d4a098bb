"""Atomic checkpoints: latest by scanning, partial tmp files ignored, pruning, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bench.core.errors import FormatError
from bench.train.checkpoint import (
    FORMAT_VERSION,
    atomic_save,
    checkpoint_name,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
)


def _state(step: int) -> dict:
    return {"format_version": FORMAT_VERSION, "step": step, "model": {"w": torch.full((3,), step)}}


def test_save_load_roundtrip_and_pruning(tmp_path: Path) -> None:
    for step in (2, 4, 6, 8):
        save_checkpoint(_state(step), tmp_path, keep=2)
    assert [step for step, _ in list_checkpoints(tmp_path)] == [6, 8]
    latest = latest_checkpoint(tmp_path)
    assert latest == tmp_path / checkpoint_name(8)
    loaded = load_checkpoint(latest)
    assert loaded["step"] == 8 and torch.equal(loaded["model"]["w"], torch.full((3,), 8))


def test_partial_tmp_file_never_counts_and_is_cleaned(tmp_path: Path) -> None:
    save_checkpoint(_state(2), tmp_path, keep=2)
    # What kill -9 during a write leaves behind: a truncated tmp file beside the good one.
    good = (tmp_path / checkpoint_name(2)).read_bytes()
    partial = tmp_path / f".{checkpoint_name(4)}.12345.tmp"
    partial.write_bytes(good[: len(good) // 2])
    assert latest_checkpoint(tmp_path) == tmp_path / checkpoint_name(2)
    assert load_checkpoint(latest_checkpoint(tmp_path))["step"] == 2
    save_checkpoint(_state(4), tmp_path, keep=2)
    assert not partial.exists()
    assert load_checkpoint(latest_checkpoint(tmp_path))["step"] == 4


def test_atomic_save_leaves_no_tmp_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "final.pt"
    atomic_save(_state(1), target)
    atomic_save(_state(3), target)
    assert load_checkpoint(target)["step"] == 3
    assert sorted(p.name for p in target.parent.iterdir()) == ["final.pt"]


def test_unreadable_or_foreign_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / checkpoint_name(5)
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(FormatError, match="cannot read checkpoint"):
        load_checkpoint(broken)
    foreign = tmp_path / "foreign.pt"
    torch.save({"step": 1}, foreign)
    with pytest.raises(FormatError, match="format_version"):
        load_checkpoint(foreign)


def test_empty_or_missing_directory(tmp_path: Path) -> None:
    assert latest_checkpoint(tmp_path / "nothing") is None
    (tmp_path / "notes.txt").write_text("x")
    assert latest_checkpoint(tmp_path) is None
