"""1 process vs 2 gloo processes with the same global batch give the same weights.

Tolerance: with sync_bn the 2-process run computes the same global-batch maths as the
1-process run; what differs is float32 summation order (gradients summed over two half-batches
then averaged by DDP, BN statistics from float64 per-rank sums). Measured differences after 3
steps are ~1e-6 (relative); we allow rtol 1e-4 / atol 1e-5, two orders of magnitude above that
and far below the size of one SGD update (lr 0.1 x gradient ~1e-2..1e-1), which a real bug
(wrong sample split, unsynced BN, unaveraged gradient) changes at the first step.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from helpers import make_set

from bench.checkpoint import load_checkpoint
from bench.config import load_config
from bench.dist import free_port
from bench.train import train

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "smoke.yaml"
OVERRIDES = ["epochs=1", "sync_bn=true", "checkpoint_every=100"]


def _worker(rank: int, world: int, port: int, data: str, run: str, overrides: list[str]) -> None:
    os.environ.update(
        RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
    )  # fmt: skip
    train(load_config(CONFIG, overrides), Path(data), Path(run))


@pytest.mark.slow
def test_two_processes_match_one(tmp_path: Path) -> None:
    data = make_set(tmp_path / "data")
    single = train(load_config(CONFIG, OVERRIDES), data, tmp_path / "one")
    mp.spawn(_worker, args=(2, free_port(), str(data), str(tmp_path / "two"), OVERRIDES), nprocs=2)
    one = load_checkpoint(single)
    two = load_checkpoint(tmp_path / "two" / "final.pt")
    assert one["step"] == two["step"] == 3
    initial = _initial_backbone(one)
    moved = 0.0
    for name, tensor in one["model"].items():
        torch.testing.assert_close(two["model"][name], tensor, rtol=1e-4, atol=1e-5, msg=name)
        if tensor.is_floating_point():
            moved = max(moved, (tensor - initial[name]).abs().max().item())
    torch.testing.assert_close(two["head"]["weight"], one["head"]["weight"], rtol=1e-4, atol=1e-5)
    # The comparison means something only if training moved the weights well past the tolerance.
    assert moved > 1e-2


def _initial_backbone(checkpoint: dict) -> dict:
    from backbones import build_backbone

    torch.manual_seed(checkpoint["config"]["seed"])
    return build_backbone(checkpoint["backbone"], **checkpoint["backbone_kwargs"]).state_dict()
