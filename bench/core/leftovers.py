"""What a killed writer leaves behind, found by name and removed once its process is gone.

bench.core.io names everything it writes beside a target after the writing process:
`.NAME.KIND-PID-XXXX` staging folders (atomic_directory), `.NAME.replaced-PID` (an old folder
renamed aside for a moment by replace_directory) and `.NAME.PID.XXXX.tmp` files (atomic_write).
A crash between write and rename leaves them; the next run of the same command (holding the
target's lock, bench.core.lock) calls these functions. Only leftovers of processes that no
longer exist are touched, so a live writer's files are never removed."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from bench.core.io import TMP_SUFFIX, remove_tree
from bench.core.lock import process_alive

log = logging.getLogger(__name__)
_TEMP_FILE = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[^.]+" + re.escape(TMP_SUFFIX) + "$")


def _dead(pid: str) -> bool:
    return int(pid) != os.getpid() and not process_alive(int(pid))


def clean_directory_leftovers(target: str | os.PathLike, staging_kind: str) -> list[Path]:
    """Remove dead processes' staging folders of `target`, and put a replaced `target` back if
    the crash came between the two renames (no `target`, its old copy aside). Returns what was
    removed or restored."""
    target = Path(target)
    if not target.parent.is_dir():
        return []
    staging = re.compile(rf"^\.{re.escape(target.name)}\.{re.escape(staging_kind)}-(\d+)-")
    replaced = re.compile(rf"^\.{re.escape(target.name)}\.replaced-(\d+)$")
    touched = []
    for entry in sorted(target.parent.iterdir()):
        if (match := staging.match(entry.name)) and _dead(match.group(1)):
            log.warning("%s: removing the unfinished %s of a crashed run (pid %s)",
                        entry, staging_kind, match.group(1))  # fmt: skip
            remove_tree(entry)
            touched.append(entry)
        elif (match := replaced.match(entry.name)) and _dead(match.group(1)):
            if target.exists():
                log.warning("%s: removing the old copy a crashed run (pid %s) had replaced",
                            entry, match.group(1))  # fmt: skip
                remove_tree(entry)
            else:
                log.warning("%s: missing after a crash between two renames; restoring it from %s",
                            target, entry)  # fmt: skip
                os.rename(entry, target)
            touched.append(entry)
    return touched


def clean_temp_files(directory: str | os.PathLike) -> list[Path]:
    """Remove the `.NAME.PID.XXXX.tmp` files of dead processes in `directory`."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    removed = []
    for entry in sorted(directory.iterdir()):
        match = _TEMP_FILE.match(entry.name)
        if match and entry.is_file() and _dead(match.group("pid")):
            log.warning("%s: removing the unfinished write of a crashed run (pid %s)",
                        entry, match.group("pid"))  # fmt: skip
            entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed
