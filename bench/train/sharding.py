"""The model-parallel head in training (`model_parallel_head: true`): shard it, report its memory,
and checkpoint it as the full classifier so a resume with another process count re-shards.

The head is not inside DDP (each rank's centres and their momentum are its own); the loop wraps
the backbone alone, whose gradients DDP all-reduces. Checkpoints hold the full (C, D) centres
and their full momentum buffer, gathered from the shards: the same layout as a replicated run,
so the evaluator, `bench train --resume` and any process count read them alike.
"""

from __future__ import annotations

import copy
import logging

import torch
from torch import nn

from bench.core.errors import ConfigError
from bench.train.config import TrainConfig
from bench.train.dist import DistContext
from bench.train.model import TrainModule
from losses.partial_fc_sharded import ShardedPartialFC, gather_rows

log = logging.getLogger(__name__)

MIB = 2**20


def shard_head(module: TrainModule, cfg: TrainConfig, context: DistContext) -> TrainModule:
    """Replace the full head (same on every rank: same seed) by this rank's shard of it."""
    if not context.distributed:
        return module  # one process: the full head is its own shard
    if cfg.clip_grad_norm > 0 and cfg.clip_scope != "backbone":
        raise ConfigError(
            f"model_parallel_head: true clips the backbone's gradient only; clip_scope="
            f"{cfg.clip_scope!r} would need the norm of the centres over all ranks. Set "
            "clip_scope=backbone (arcface_torch's choice) or model_parallel_head=false"
        )
    if cfg.precision == "fp16":
        raise ConfigError(
            "model_parallel_head: true with precision=fp16: the gradient scaler would skip the "
            "step on some ranks only (each checks its own centres' gradient for inf). Use "
            "precision=bf16 (the GPU default) or model_parallel_head=false"
        )
    module.head = ShardedPartialFC.from_replicated(module.head, context.rank, context.world_size)
    return module


def is_sharded(module: TrainModule) -> bool:
    """True when `module.head` holds a shard of the centres."""
    return isinstance(module.head, ShardedPartialFC)


def memory_line(cfg: TrainConfig, num_classes: int, context: DistContext, sharded: bool) -> str:
    """'classifier: 300,000 x 512 on 8 ranks = 37,500 centres/rank, 73.2 MB + optimiser 73.2 MB'."""
    ranks = context.world_size if sharded else 1
    largest = -(-num_classes // ranks)  # shards differ by at most one centre
    bytes_per_value = 8 if cfg.precision == "fp64" else 4
    weight_mb = largest * cfg.embedding_size * bytes_per_value / MIB
    # SGD with momentum keeps one buffer per parameter: as large as the centres themselves.
    optimiser_mb = weight_mb if cfg.momentum > 0 else 0.0
    where = f"on {context.world_size} ranks" if sharded else "replicated on every rank"
    return (
        f"classifier: {num_classes:,} x {cfg.embedding_size} {where} = {largest:,} centres/rank, "
        f"{weight_mb:,.1f} MiB + optimiser {optimiser_mb:,.1f} MiB (+ as much again for the "
        "gradient)"
    )


def _head_index(module: TrainModule, optimizer: torch.optim.Optimizer) -> int:
    """Position of the head's centres among the optimiser's parameters (its state_dict key)."""
    position = 0
    for group in optimizer.param_groups:
        for parameter in group["params"]:
            if parameter is module.head.weight:
                return position
            position += 1
    raise ValueError("the optimiser does not hold the head's centres")


def checkpoint_parts(
    module: TrainModule, optimizer: torch.optim.Optimizer, context: DistContext
) -> dict:
    """{"head", "optimizer"} state dicts with the full centres (collective when sharded)."""
    head = module.head.state_dict()
    optimiser = optimizer.state_dict()
    if not is_sharded(module):
        return {"head": head, "optimizer": optimiser}
    num_classes, world = module.head.num_classes, context.world_size
    head["weight"] = gather_rows(head["weight"], num_classes, world)
    index = _head_index(module, optimizer)
    state = optimiser["state"].get(index, {})
    if state.get("momentum_buffer") is not None:  # absent before the first step, on all ranks
        state = {
            **state,
            "momentum_buffer": gather_rows(state["momentum_buffer"], num_classes, world),
        }
        optimiser["state"] = {**optimiser["state"], index: state}
    return {"head": head, "optimizer": optimiser}


def load_parts(module: TrainModule, optimizer: torch.optim.Optimizer, saved: dict) -> None:
    """Load a checkpoint's head and optimiser, taking this rank's rows when sharded."""
    head, optimiser = dict(saved["head"]), copy.copy(saved["optimizer"])
    if is_sharded(module):
        shard = module.head.shard
        full = head["weight"]
        if full.shape[0] != module.head.num_classes:
            raise ConfigError(
                f"checkpoint head has {full.shape[0]} centres, the data set {module.head.num_classes}"
            )
        head["weight"] = full[shard.start : shard.stop]
        index = _head_index(module, optimizer)
        state = optimiser["state"].get(index)
        if state and state.get("momentum_buffer") is not None:
            state = {**state, "momentum_buffer": state["momentum_buffer"][shard.start : shard.stop]}
            optimiser["state"] = {**optimiser["state"], index: state}
    module.head.load_state_dict(head)
    optimizer.load_state_dict(optimiser)


def backbone_only_ddp(module: TrainModule, ddp: type[nn.Module], **kwargs) -> nn.Module:
    """What the step calls when sharded: DDP over the backbone, the sharded head beside it."""
    return TrainModule(ddp(module.backbone, **kwargs), module.head)
