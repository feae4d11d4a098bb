"""Exclusive advisory locks on a run directory or prepared set, and the owner test for leftovers.

The lock is `fcntl.flock` on a small file beside the target (`.NAME.lock`): the OS releases it
when the holding process dies, however it dies, so a crash never leaves a stale lock. The file
holds the owner's pid and start time, which the refusal names. The holder removes the file on
release; a process that opened it just before checks after locking that the file it locked is
still the one at that path, and starts again if not."""

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

    `what` says what is locked ("training run", "prepare") in the refusal. The lock file is
    removed on release (a killed holder leaves it unlocked, and the next holder removes it)."""
    path = lock_path(target)
    descriptor = _acquire(path, target, what)
    try:
        since = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()} {since}\n".encode("ascii"), 0)
        yield path
    finally:
        path.unlink(missing_ok=True)  # still locked: a waiting opener re-checks the inode
        os.close(descriptor)  # closing releases the flock


def _acquire(path: Path, target: str | os.PathLike, what: str) -> int:
    """An open, flocked descriptor of the file now at `path` (retried if the file was replaced
    between open and lock: a holder removing it on release)."""
    import fcntl  # POSIX only; imported here so the rest of bench.core stays importable elsewhere

    while True:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise StorageError(
                f"{path}: cannot create the lock of {target} ({error.strerror})"
            ) from None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            holder = _holder(descriptor)
            os.close(descriptor)
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise StorageError(f"{path}: cannot lock {target} ({error.strerror})") from None
            raise BusyError(
                f"{target}: this {what} is already running ({holder}); wait for it to finish "
                f"or stop it (the lock is {path})"
            ) from None
        try:
            same = os.fstat(descriptor).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return descriptor
        os.close(descriptor)


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
