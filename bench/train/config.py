"""The training recipe as a frozen, validated TrainConfig; its hash; derived values.

Reading recipe files and overrides is bench.train.recipe. Every derived quantity (scaled lr,
steps per epoch, total steps, warmup steps, per-rank batch) comes from `derive()` alone.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

import yaml

from bench.core.errors import ConfigError
from bench.train.augment import augmentation_problems

# fp64 exists for equivalence tests (N processes vs 1 without float32 rounding noise).
PRECISIONS = ("auto", "fp32", "bf16", "fp16", "fp64")
# Which gradients clip_grad_norm clips: the backbone's (arcface_torch) or backbone + centres.
CLIP_SCOPES = ("backbone", "all")

# Keys that change how a run is executed or observed but not the maths it does; they are left
# out of `config_hash` so that, e.g., more loader workers do not make a "different recipe".
OPERATIONAL_KEYS = frozenset(
    {
        "num_workers",
        "log_every",
        "checkpoint_every",
        "keep_checkpoints",
        "verify_every",
        "verify_targets",
        "num_threads",
        "progress",
        # Where the centres live and whether activations are recomputed: same maths (issue 14;
        # at sample_rate < 1 the random negatives differ, as with another process count).
        "model_parallel_head",
        "gradient_checkpointing",
    }
)
# Keys added for the source recipes (issue 15): at their default they are left out of
# `config_hash`, so a recipe that does not use them keeps the hash it had before they existed.
HASH_OMITTED_AT_DEFAULT = frozenset(
    {
        "loss_kwargs",
        "lr_schedule",
        "lr_milestones",
        "lr_step_factor",
        "augmentation",
        "input_colour",
    }
)
# Keys that pick a replicate of a recipe, not another recipe: left out of `config_hash` so that
# the seeds of one (set, recipe) share a hash and the report aggregates them (mean ± 95% CI).
REPLICATE_KEYS = frozenset({"seed"})
LR_SCHEDULES = ("poly", "step")
INPUT_COLOURS = ("rgb", "bgr")


@dataclass(frozen=True)
class TrainConfig:
    """The training recipe; see configs/ir50_arcface.yaml for why each value."""

    name: str = "ir50_arcface"
    # model
    backbone: str = "ir50"
    backbone_kwargs: dict = field(default_factory=dict)
    embedding_size: int = 512
    sync_bn: bool = False
    # head / loss
    loss: str = "arcface"
    scale: float = 64.0
    margins: tuple[float, float, float] = (1.0, 0.5, 0.0)
    loss_kwargs: dict = field(default_factory=dict)  # the loss's own arguments (adaface: m, h)
    sample_rate: float = 1.0
    # optimisation
    batch_size: int = 512  # global batch over all processes
    base_lr: float = 0.1
    base_batch_size: int = 512  # lr = base_lr * batch_size / base_batch_size
    momentum: float = 0.9
    weight_decay: float = 5e-4
    epochs: int = 30
    warmup_epochs: float = 0.0
    lr_power: float = 1.0  # arcface_torch: linear decay (PolynomialLRWarmup, power 1)
    lr_schedule: str = "poly"  # poly (lr_power) | step (lr_milestones, lr_step_factor)
    lr_milestones: tuple[float, ...] = ()  # epochs at which the step schedule multiplies the lr
    lr_step_factor: float = 0.1
    clip_grad_norm: float = 5.0  # 0 disables clipping
    clip_scope: str = "backbone"  # backbone (arcface_torch) | all (backbone + centres)
    # augmentation
    flip: bool = True
    augmentation: dict = field(default_factory=dict)  # bench/train/augment.py; {} = flip only
    input_colour: str = "rgb"  # channel order the model is fed (AdaFace-trained models: bgr)
    # execution
    seed: int = 0
    precision: str = "auto"  # auto = bf16 on GPU, fp32 on CPU
    channels_last: bool = True
    compile: bool = False
    deterministic: bool = False
    num_threads: int = 0  # 0 = torch's default
    num_workers: int = 4
    encoded_input: bool = False  # loader yields raw bytes (GPU decoding); see bench/data.py
    # Scaling levers (README "Scaling"), off in THE recipe: class centres sharded over the ranks
    # (bench/train/sharding.py), backbone activations recomputed in backward (less memory).
    model_parallel_head: bool = False
    gradient_checkpointing: bool = False
    # bookkeeping
    log_every: int = 50
    checkpoint_every: int = 2000
    keep_checkpoints: int = 2
    verify_every: int = 0  # 0 = no periodic verification
    verify_targets: tuple[str, ...] = ()
    progress: bool = True

    def __post_init__(self) -> None:
        _validate(self)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML-serialisable dict (tuples as lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))


@dataclass(frozen=True)
class Derived:
    """Quantities computed from the config, the data set size and the world size."""

    global_batch: int
    local_batch: int
    lr: float
    steps_per_epoch: int
    total_steps: int
    warmup_steps: int
    milestone_steps: tuple[int, ...] = ()  # lr_milestones (epochs) as optimiser steps


def derive(cfg: TrainConfig, num_images: int, world_size: int) -> Derived:
    """The ONE place that turns config + data set size + world size into step counts and lr."""
    if world_size < 1 or cfg.batch_size % world_size:
        raise ConfigError(
            f"batch_size={cfg.batch_size} (global) is not divisible by the {world_size} "
            "processes; choose a global batch that is a multiple of the process count"
        )
    steps_per_epoch = num_images // cfg.batch_size  # the incomplete last batch is dropped
    if steps_per_epoch < 1:
        raise ConfigError(
            f"batch_size={cfg.batch_size} is larger than the data set ({num_images} images); "
            "lower batch_size"
        )
    total_steps = steps_per_epoch * cfg.epochs
    return Derived(
        global_batch=cfg.batch_size,
        local_batch=cfg.batch_size // world_size,
        lr=cfg.base_lr * cfg.batch_size / cfg.base_batch_size,
        steps_per_epoch=steps_per_epoch,
        total_steps=total_steps,
        warmup_steps=min(round(cfg.warmup_epochs * steps_per_epoch), total_steps),
        milestone_steps=tuple(round(epoch * steps_per_epoch) for epoch in cfg.lr_milestones),
    )


def config_hash(cfg: TrainConfig) -> str:
    """12-hex fingerprint of the recipe's maths (operational keys and the seed excluded)."""
    defaults = TrainConfig().to_dict()
    payload = {
        k: v
        for k, v in cfg.to_dict().items()
        if k not in OPERATIONAL_KEYS
        and k not in REPLICATE_KEYS
        and not (k in HASH_OMITTED_AT_DEFAULT and v == defaults[k])
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def resolved_yaml(cfg: TrainConfig) -> str:
    """The resolved config as YAML text (what is saved beside the checkpoints)."""
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)


def _validate(cfg: TrainConfig) -> None:
    """Range checks that no type check can express."""
    problems = []
    positive = ("embedding_size", "batch_size", "base_batch_size", "epochs", "log_every")
    problems += [f"{key} must be > 0" for key in positive if getattr(cfg, key) <= 0]
    nonnegative = ("warmup_epochs", "clip_grad_norm", "weight_decay", "num_workers", "num_threads")
    problems += [f"{key} must be >= 0" for key in nonnegative if getattr(cfg, key) < 0]
    if not (cfg.base_lr > 0 and math.isfinite(cfg.base_lr)):
        problems.append("base_lr must be a finite number > 0")
    if not 0 <= cfg.seed < 2**32:  # numpy's generators (sampler, loader workers) take no other
        problems.append(f"seed must be within 0 .. {2**32 - 1}, got {cfg.seed}")
    if cfg.precision not in PRECISIONS:
        problems.append(f"precision must be one of {', '.join(PRECISIONS)}")
    problems += _schedule_problems(cfg)
    problems += augmentation_problems(cfg.augmentation)
    if cfg.input_colour not in INPUT_COLOURS:
        problems.append(f"input_colour must be one of {', '.join(INPUT_COLOURS)}")
    if cfg.clip_scope not in CLIP_SCOPES:
        problems.append(f"clip_scope must be one of {', '.join(CLIP_SCOPES)}")
    if cfg.checkpoint_every < 1 or cfg.keep_checkpoints < 1:
        problems.append("checkpoint_every and keep_checkpoints must be >= 1")
    if cfg.verify_every > 0 and not cfg.verify_targets:
        problems.append("verify_every > 0 needs verify_targets (e.g. verify_targets=lfw,cfp_fp)")
    if problems:
        raise ConfigError("; ".join(problems))


def _schedule_problems(cfg: TrainConfig) -> list[str]:
    """The step schedule needs increasing milestones inside the run and a factor in (0, 1]."""
    if cfg.lr_schedule not in LR_SCHEDULES:
        return [f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}"]
    milestones = list(cfg.lr_milestones)
    if cfg.lr_schedule == "poly":
        return ["lr_milestones is only used by lr_schedule: step"] if milestones else []
    problems = []
    if not milestones or milestones != sorted(set(milestones)) or milestones[0] <= 0:
        problems.append(
            "lr_schedule step needs lr_milestones: increasing epochs > 0 (e.g. [12, 20])"
        )
    elif milestones[-1] >= cfg.epochs:
        problems.append(f"lr_milestones must lie before the last epoch ({cfg.epochs})")
    if not 0.0 < cfg.lr_step_factor <= 1.0:
        problems.append("lr_step_factor must be in (0, 1] (0.1 = divide the lr by 10)")
    return problems
