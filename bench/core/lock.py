"""Exclusive advisory locks on a run directory or prepared set, and the owner test for leftovers.

The lock is `fcntl.flock` on a small file beside the target (`.NAME.lock`): the OS releases it
when the holding process dies, however it dies, so a crash never leaves a stale lock. The file
holds the owner's pid and start time, which the refusal names. The file itself stays (deleting a
lock file races with a process that has just opened it)."""

from __future__ import annotations

import datetime
import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.core.errors import BusyError, StorageError

LOCK_SUFFIX = ".lock"


def lock_path(target: str | os.PathLike) -> Path:
    """Where the lock of `target` lives: a hidden file beside it (survives renames of `target`)."""
    target = Path(target)
    return target.with_name(f".{target.name}{LOCK_SUFFIX}")


@contextmanager
def exclusive(target: str | os.PathLike, what: str) -> Iterator[Path]:
    """Hold the exclusive lock of `target` for the `with` block, or raise BusyError at once.

    `what` says what is locked ("run", "prepared set") in the refusal."""
    import fcntl  # POSIX only; imported here so the rest of bench.core stays importable elsewhere

    path = lock_path(target)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise StorageError(
            f"{path}: cannot create the lock of {target} ({error.strerror})"
        ) from None
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise BusyError(
                f"{target}: this {what} is already running ({_holder(descriptor)}); wait for it "
                f"to finish or stop it (the lock is {path})"
            ) from None
        since = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()} {since}\n".encode("ascii"), 0)
        yield path
    finally:
        os.close(descriptor)  # closing releases the flock


def _holder(descriptor: int) -> str:
    """'pid N since T' as the holder wrote it into the lock file."""
    text = os.pread(descriptor, 200, 0).decode("ascii", "replace").split()
    if len(text) >= 2:
        return f"pid {text[0]} since {text[1]}"
    return "by a process that is still starting"


def process_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this machine (signal 0 probes, sends nothing)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True
