"""dist.on_main on 2 gloo processes: rank 0's result reaches rank 1; rank 0's error stops rank 1
with rank 0's message; a rank 0 that takes longer than the wait timeout is named in rank 1's."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import torch.distributed as torch_dist
import torch.multiprocessing as mp

from bench.core.errors import DatasetError
from bench.train import dist
from bench.train.dist import free_port


def _outcome(call) -> str:
    try:
        return f"value {call()}"
    except Exception as error:  # what each rank saw, written for the test to read
        return f"{type(error).__name__}: {error}"


def _worker(rank: int, port: int, out: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))  # fmt: skip
    context = dist.setup("cpu")
    group = dist.wait_group(context, timeout_s=2.0)

    def fail() -> None:
        raise DatasetError("data/prepared/x: 3 records are not images")

    lines = [
        _outcome(lambda: dist.on_main("prepare x", lambda: "data/prepared/x", context, group)),
        _outcome(lambda: dist.on_main("prepare x", fail, context, group)),
        _outcome(lambda: dist.on_main("evaluate y", lambda: time.sleep(4) or 1, context, group)),
    ]
    Path(out, f"rank{rank}.txt").write_text("\n".join(lines))
    torch_dist.destroy_process_group()


@pytest.mark.slow
def test_rank_zero_result_error_and_timeout_reach_the_others(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(free_port(), str(tmp_path)), nprocs=2)
    zero = (tmp_path / "rank0.txt").read_text().splitlines()
    one = (tmp_path / "rank1.txt").read_text().splitlines()
    assert zero[0] == one[0] == "value data/prepared/x"
    assert zero[1] == "DatasetError: data/prepared/x: 3 records are not images"
    assert one[1] == (
        "TrainingError: rank 0 failed to prepare x: DatasetError: data/prepared/x: 3 records are "
        "not images"
    )
    # rank 0 itself finishes its work (its broadcast then finds rank 1 gone: torchrun would have
    # stopped it already).
    assert one[2].startswith("TrainingError: rank 1: no word from rank 0, which was to evaluate y")
    assert "--wait-timeout" in one[2]
