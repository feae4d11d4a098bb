"""Model-parallel Partial FC on 2 and 4 gloo processes equals the single-process full softmax.

Every rank builds the same full head (same seed) and keeps its shard; the global batch of
embeddings is split over the ranks. In float64 the sharded loss, the centres' gradient
(gathered from the shards) and the embeddings' gradient (divided by the world size, which the
gather multiplies in for DDP's averaging) must equal the full head's. Measured on the 2-core
AMD EPYC VM (torch 2.13 CPU), max abs difference (gradients up to ~2e3 at s = 64):
2 processes: loss 0.0, centres 5.7e-14, embeddings 1.6e-15;
4 processes: loss 0.0, centres 1.1e-13, embeddings 8.9e-16.
So the tolerance is relative 1e-12 (float64 rounding of sums in another order); a wrong shard
offset, a missing all-reduce or a wrong gradient scale is off by O(1).
Slow only because it spawns 2 + 4 processes (the maths takes milliseconds).
"""

from __future__ import annotations

import math
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from bench.train.dist import free_port
from losses import build_head
from losses.partial_fc_sharded import ShardedPartialFC, gather_rows, shard_bounds

CLASSES, DIM, BATCH = 11, 6, 8  # 11 classes: uneven shards over 2 and 4 ranks
TOLERANCE = 1e-12  # relative, float64: measured 1.1e-13 absolute on gradients of ~2e3
SAMPLED_RATE = 0.4


def _inputs() -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(3)
    head = build_head("arcface", DIM, CLASSES).double()
    embeddings = torch.randn(BATCH, DIM, dtype=torch.float64)
    labels = torch.randint(0, CLASSES, (BATCH,))
    return head, embeddings, labels


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        # One process group for both sample rates: spawning is the slow part of this test.
        results = {rate: _sharded_step(rank, world, rate) for rate in (1.0, SAMPLED_RATE)}
        if rank == 0:
            torch.save(results, out)
    finally:
        dist.destroy_process_group()


def _sharded_step(rank: int, world: int, sample_rate: float) -> dict:
    head, embeddings, labels = _inputs()
    head.sample_rate = sample_rate
    sharded = ShardedPartialFC.from_replicated(head, rank, world)
    rows = slice(rank * BATCH // world, (rank + 1) * BATCH // world)
    local = embeddings[rows].clone().requires_grad_(True)
    loss = sharded(local, labels[rows])
    loss.backward()
    return {
        "loss": loss.detach(),
        "weight": gather_rows(sharded.weight.grad, CLASSES, world),
        "embeddings": torch.cat(_all_gather(local.grad / world, world)),
    }


def _all_gather(tensor: torch.Tensor, world: int) -> list[torch.Tensor]:
    parts = [torch.empty_like(tensor) for _ in range(world)]
    dist.all_gather(parts, tensor)
    return parts


@pytest.fixture(scope="module")
def sharded(tmp_path_factory: pytest.TempPathFactory) -> dict[int, dict]:
    """{world size: {sample rate: rank 0's loss and gathered gradients}} for 2 and 4 ranks."""
    results = {}
    for world in (2, 4):
        out = tmp_path_factory.mktemp("sharded") / f"{world}.pt"
        mp.spawn(_worker, args=(world, free_port(), str(out)), nprocs=world)
        results[world] = torch.load(out)
    return results


def _reference() -> dict:
    head, embeddings, labels = _inputs()
    embeddings.requires_grad_(True)
    loss = head(embeddings, labels)
    loss.backward()
    return {"loss": loss.detach(), "weight": head.weight.grad, "embeddings": embeddings.grad}


@pytest.mark.slow
@pytest.mark.parametrize("world", [2, 4])
def test_sharded_head_equals_full_softmax(sharded: dict, world: int) -> None:
    reference, result = _reference(), sharded[world][1.0]
    differences = {key: (result[key] - reference[key]).abs().max().item() for key in reference}
    print(f"{world} processes, max abs difference: {differences}")
    for key in reference:
        torch.testing.assert_close(result[key], reference[key], rtol=TOLERANCE, atol=TOLERANCE)
    # The comparison means something: gradients far above the tolerance.
    assert reference["weight"].abs().max() > 1.0 and reference["embeddings"].abs().max() > 1.0


@pytest.mark.slow
@pytest.mark.parametrize("world", [2, 4])
def test_sampling_keeps_positives_and_updates_only_sampled_centres(sharded, world) -> None:
    _head, _embeddings, labels = _inputs()
    result = sharded[world][SAMPLED_RATE]
    assert torch.isfinite(result["loss"])
    updated = set(torch.nonzero(result["weight"].abs().sum(1) > 0).flatten().tolist())
    for rank in range(world):
        shard = shard_bounds(CLASSES, rank, world)
        positives = {int(label) for label in labels if int(label) in shard}
        mine = {index for index in updated if index in shard}
        assert positives <= mine  # every positive centre is in the softmax
        quota = max(1, math.ceil(SAMPLED_RATE * len(shard)))
        assert len(mine) == max(len(positives), quota), (rank, mine, positives)
