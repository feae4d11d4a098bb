"""bench.train.sharding without a process group: the memory line and the refused combinations."""

from __future__ import annotations

import pytest
import torch

from bench.core.errors import ConfigError
from bench.train.config import TrainConfig
from bench.train.dist import DistContext
from bench.train.model import build_train_module
from bench.train.sharding import memory_line, shard_head
from losses.partial_fc_sharded import shard_bounds

SMALL = {"backbone": "ir18", "backbone_kwargs": {"width": 8}, "embedding_size": 16}


def _context(world: int) -> DistContext:
    return DistContext(rank=0, world_size=world, local_rank=0, device=torch.device("cpu"))


def test_memory_line_names_centres_per_rank_and_megabytes() -> None:
    cfg = TrainConfig(embedding_size=512)
    line = memory_line(cfg, 300_000, _context(8), sharded=True)
    # 37,500 x 512 float32 = 73.2 MiB, and as much again for SGD's momentum buffer
    assert line.startswith("classifier: 300,000 x 512 on 8 ranks = 37,500 centres/rank, 73.2 MiB")
    assert "optimiser 73.2 MiB" in line
    replicated = memory_line(cfg, 300_000, _context(8), sharded=False)
    assert "replicated on every rank = 300,000 centres/rank, 585.9 MiB" in replicated


def test_shards_cover_every_class_once() -> None:
    for classes, world in [(11, 4), (300_000, 8), (3, 4)]:
        shards = [shard_bounds(classes, rank, world) for rank in range(world)]
        assert [i for shard in shards for i in shard] == list(range(classes))
        assert max(map(len, shards)) - min(map(len, shards)) <= 1


@pytest.mark.parametrize(
    ("keys", "message"),
    [({"clip_scope": "all"}, "clip_scope=backbone"), ({"precision": "fp16"}, "precision=bf16")],
)
def test_refused_combinations_say_what_to_set(keys: dict, message: str) -> None:
    cfg = TrainConfig(model_parallel_head=True, **SMALL, **keys)
    with pytest.raises(ConfigError, match=message):
        shard_head(build_train_module(cfg, 10), cfg, _context(2))


def test_one_process_keeps_the_full_head() -> None:
    cfg = TrainConfig(model_parallel_head=True, **SMALL)
    module = build_train_module(cfg, 10)
    head = module.head
    assert shard_head(module, cfg, _context(1)).head is head
