"""Atomic checkpoints: save (tmp + fsync + rename), keep the last K, find and load the latest.

A kill -9 at any moment leaves either the previous complete files or a stray `*.tmp` file,
never a truncated `step-*.pt`: the final name only ever points at fully written, fsynced bytes.
Stray tmp files are ignored when looking for the latest checkpoint and removed on the next save.
"""

from __future__ import annotations

import logging
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from bench.core import io
from bench.core.errors import FormatError

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
CHECKPOINT_PATTERN = re.compile(r"^step-(\d{9})\.pt$")
TMP_SUFFIX = ".tmp"


def checkpoint_name(step: int) -> str:
    """File name of the checkpoint taken after `step` optimiser steps."""
    return f"step-{step:09d}.pt"


def atomic_save(obj: Any, path: Path) -> Path:
    """torch.save `obj` to `path` atomically: tmp file in the same directory, fsync, rename."""
    return io.atomic_write(path, lambda stream: torch.save(obj, stream))


def list_checkpoints(directory: Path) -> list[tuple[int, Path]]:
    """(step, path) of the complete checkpoints in `directory`, oldest first."""
    if not Path(directory).is_dir():
        return []
    found = []
    for path in Path(directory).iterdir():
        match = CHECKPOINT_PATTERN.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def latest_checkpoint(directory: Path) -> Path | None:
    """The complete checkpoint with the highest step, or None (tmp leftovers never count)."""
    found = list_checkpoints(directory)
    return found[-1][1] if found else None


def save_checkpoint(state: dict, directory: Path, keep: int) -> Path:
    """Write `state` (with "step" and "format_version") as step-<step>.pt, then prune to the last `keep`."""
    directory = Path(directory)
    path = atomic_save(state, directory / checkpoint_name(state["step"]))
    _remove_stale_tmp(directory)
    for _step, old in list_checkpoints(directory)[:-keep]:
        old.unlink()
        log.debug("removed old checkpoint %s", old)
    return path


def _remove_stale_tmp(directory: Path) -> None:
    # Leftovers of a process killed mid-write; ours was renamed already, so any remaining
    # *.tmp belongs to a dead writer (one writer per run directory: rank 0).
    for tmp in directory.glob(f".*{TMP_SUFFIX}"):
        log.info("removing partial checkpoint %s left by an interrupted run", tmp)
        tmp.unlink()


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint dict (weights_only: no arbitrary pickle) and check its format version."""
    path = Path(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError) as error:
        raise FormatError(
            f"{path}: cannot read checkpoint ({error}); delete it to resume from the previous one"
        ) from error
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
        version = state.get("format_version") if isinstance(state, dict) else None
        raise FormatError(
            f"{path}: checkpoint format_version {version!r}, expected {FORMAT_VERSION}"
        )
    return state
