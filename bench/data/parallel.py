"""Parallel map over chunks of a training set: workers get the data set once, at start-up."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

from bench.core import io
from bench.formats import TrainingRecords

CHUNK_SIZE = 1024  # records per worker task: large enough to amortise IPC, small for memory
PARENT_POLL_SECONDS = 0.5  # how soon a worker notices that its parent was killed


_WORKER_DATASET: TrainingRecords | None = None


def _init_worker(dataset: TrainingRecords, parent: int) -> None:
    global _WORKER_DATASET
    _WORKER_DATASET = dataset
    # A killed parent (kill -9) cannot stop its workers: each one leaves when its parent is gone.
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    """Watchdog thread of a worker: exit at once when the parent process no longer exists."""
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_SECONDS)
    os._exit(1)  # no clean-up to run: the parent that wanted the results is gone


def _call_in_worker(function: Callable, *args: Any) -> Any:
    return function(_WORKER_DATASET, *args)


def map_chunks(
    dataset: TrainingRecords, function: Callable, tasks: Iterable[tuple], workers: int
) -> Iterator[Any]:
    """Yield `function(dataset, *task)` for each task, in order, using `workers` processes.

    At most 2 x workers tasks are in flight, so results never pile up in memory. Workers are
    spawned (not forked): file handles and LMDB environments never cross a fork.
    """
    if workers <= 1:
        for task in tasks:
            yield function(dataset, *task)
        return
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_worker, initargs=(dataset, os.getpid())
    )
    pending: deque = deque()
    try:
        for task in tasks:
            pending.append(pool.submit(_call_in_worker, function, *task))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def record_chunks(indices: np.ndarray) -> Iterator[np.ndarray]:
    """Consecutive slices of `indices` of CHUNK_SIZE records (one worker task each)."""
    return io.chunked(indices, CHUNK_SIZE)
