"""File-system plumbing every package shares: atomic writes (files and whole folders), file
hashing, chunking, the default worker count. Imports nothing from bench but bench.core.errors.

Atomic means: the new content is written beside the target (same folder, so the rename cannot
cross file systems), flushed and fsync'ed, then renamed over the target; the folder is fsync'ed
so the rename itself survives a crash. A reader sees the old file or the new one, never a mix,
and a killed writer leaves the old one intact. A full disk is a StorageError naming the path.
"""

from __future__ import annotations

import errno
import hashlib
import itertools
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

from bench.core.errors import StorageError

log = logging.getLogger(__name__)

T = TypeVar("T")
TMP_SUFFIX = ".tmp"
MAX_DEFAULT_WORKERS = 8


def fsync_directory(directory: Path) -> None:
    """Make a rename inside `directory` durable (POSIX; a no-op elsewhere)."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def storage_error(path: Path, error: OSError) -> StorageError:
    """The StorageError for a failed write of `path`: a full disk says how much space is left."""
    if error.errno == errno.ENOSPC:
        usage = shutil.disk_usage(path.parent if path.parent.exists() else Path.cwd())
        return StorageError(
            f"{path}: the disk is full ({usage.free / 2**20:.1f} MiB free); nothing was "
            "replaced. Free some space and run the command again"
        )
    return StorageError(f"{path}: cannot write ({error.strerror or error})")


def ensure_directory(path: str | os.PathLike) -> Path:
    """Create the folder `path` (with its parents), or a StorageError naming it and why not:
    called before long work, so an unwritable output place fails first, not last."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StorageError(
            f"{path}: cannot create this output folder ({error.strerror or error}); choose a "
            "place you can write to"
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise StorageError(f"{path}: this output folder is not writable; choose another place")
    return path


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], Any]) -> Path:
    """Call write(binary stream) into a temporary file beside `path`, then rename it into place."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=TMP_SUFFIX
        )
    except OSError as error:
        raise storage_error(path, error) from None
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
        fsync_directory(path.parent)
    except OSError as error:
        raise storage_error(path, error) from None
    finally:
        Path(temporary).unlink(missing_ok=True)  # only left behind when something failed
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically."""
    return atomic_write(path, lambda stream: stream.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 `text` to `path` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_directory(
    target: str | os.PathLike, write: Callable[[Path], T], *, staging_kind: str = "writing"
) -> T:
    """Build a folder with write(staging) beside `target`, then put it in place of `target`.

    An existing `target` is renamed aside first and deleted only once the new folder is in its
    place, so at every moment one complete copy exists. A failed or interrupted write leaves no
    staging folder behind (a killed one does: bench.core.leftovers removes it on the next run).
    Returns what `write` returned.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    # The pid in the name tells a crashed writer's leftover from a live one (bench.core.leftovers).
    staging = Path(
        tempfile.mkdtemp(prefix=f".{target.name}.{staging_kind}-{os.getpid()}-", dir=target.parent)
    )
    finished = False
    try:
        value = write(staging)
        replace_directory(staging, target)
        finished = True
    except OSError as error:
        raise storage_error(target, error) from None
    finally:
        if not finished:
            remove_tree(staging)
    return value


def replace_directory(staging: Path, target: Path) -> None:
    """Rename the finished `staging` folder to `target`, retiring an old one only at the end."""
    if target.exists():
        retired = target.with_name(f".{target.name}.replaced-{os.getpid()}")
        os.rename(target, retired)
        os.rename(staging, target)
        remove_tree(retired)
    else:
        os.rename(staging, target)
    fsync_directory(target.parent)


def remove_tree(path: Path) -> None:
    """Delete a folder tree, logging (not raising) what could not be removed."""

    def report(_function: Callable, failed: str, error: Any) -> None:
        log.warning("could not remove %s while cleaning up %s: %s", failed, path, error)

    if not Path(path).exists():
        return
    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=report)
    else:
        shutil.rmtree(path, onerror=report)


def sha256_file(path: str | os.PathLike, block: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def chunked(items: Iterable[T], size: int) -> Iterator[Sequence[T]]:
    """Consecutive chunks of at most `size` items, the last one shorter: slices of a sequence or
    array (no copy), lists of any other iterable."""
    if size < 1:
        raise ValueError(f"chunk size must be >= 1, got {size}")
    if isinstance(items, Sequence) or hasattr(items, "__array__"):
        for start in range(0, len(items), size):
            yield items[start : start + size]
        return
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def default_workers() -> int:
    """Worker processes for CPU-bound parallel work: the CPUs this process may use, at most 8."""
    if hasattr(os, "sched_getaffinity"):
        cpus = len(os.sched_getaffinity(0))
    else:
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_DEFAULT_WORKERS))
