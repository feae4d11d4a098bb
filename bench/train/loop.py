"""The training loop: one recipe, any number of processes, resumable at any checkpoint.

Read `_run` top to bottom: set up -> build -> (resume) -> loop over global steps -> final model.
The result of a run is always the final model; periodic verification is only logged as curves.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from bench.catalog import Catalog, load_catalog
from bench.core import io, leftovers, lock
from bench.core.errors import TrainingError
from bench.data.gpu_decode import BatchDecoder
from bench.data.loader import GlobalBatchSampler, make_loader, open_training_set
from bench.data.verify import verify_prepared
from bench.eval.run import check_targets, verify_backbone
from bench.train import dist
from bench.train.augment import InputTransform
from bench.train.checkpoint import (
    FORMAT_VERSION,
    atomic_save,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from bench.train.config import (
    HASH_OMITTED_AT_DEFAULT,
    OPERATIONAL_KEYS,
    Derived,
    TrainConfig,
    config_hash,
    derive,
    resolved_yaml,
)
from bench.train.dist import convert_sync_batchnorm
from bench.train.model import TrainModule, backbone_kwargs, build_train_module
from bench.train.progress import Progress
from bench.train.schedule import recipe_learning_rate
from bench.train.sharding import (
    backbone_only_ddp,
    checkpoint_parts,
    is_sharded,
    load_parts,
    memory_line,
    shard_head,
)
from bench.train.step import (
    autocast_dtype,
    clipped_parameters,
    determinism,
    optimizer_step,
    parameter_dtype,
    seed_step,
    to_model_input,
    use_channels_last,
)

log = logging.getLogger(__name__)

FINAL_NAME = "final.pt"

__all__ = ["FINAL_NAME", "TrainingError", "train"]


def train(
    cfg: TrainConfig,
    data_dir: Path,
    run_dir: Path,
    resume: bool = False,
    *,
    eval_root: Path | None = None,
    catalog: Catalog | None = None,
    device: str = "auto",
    verify_data: bool = False,
) -> Path:
    """Train `cfg` on the prepared set in `data_dir`, writing into `run_dir`; returns final.pt.

    Launched by torchrun, each process calls this; the process group is set up from the env.
    `eval_root` is the data root whose eval/ holds the verify_targets (periodic verification),
    looked up in `catalog` (default: the default registry). `device`: auto (CUDA when present),
    cpu, cuda or cuda:N; asking for CUDA without it is a ConfigError before anything runs.
    The set is checked against its manifest first (`verify_data`: every record's bytes too).
    """
    verification = None
    if cfg.verify_every > 0:  # fail now, not after verify_every steps (and on rank 0 only)
        if eval_root is None:
            raise TrainingError("verify_every > 0 needs the data root (eval_root) of the eval sets")
        verification = Verification(Path(eval_root), catalog or load_catalog())
        check_targets(list(cfg.verify_targets), verification.root, verification.catalog)
    # One launch per run directory: rank 0 holds its lock (a second launch is refused at once,
    # before its process group forms) and removes the temp files of a killed earlier launch.
    with _run_lock(Path(run_dir)):
        if int(os.environ.get("RANK", "0")) == 0:  # the other ranks read what rank 0 checked
            verify_prepared(Path(data_dir), full=verify_data)
        context = dist.setup(device)
        if not context.is_main:
            logging.getLogger().setLevel(logging.WARNING)  # log lines come from rank 0 only
        try:
            with determinism(cfg, context.device):
                return _run(cfg, Path(data_dir), Path(run_dir), resume, context, verification)
        finally:
            dist.teardown(context)


@contextmanager
def _run_lock(run_dir: Path) -> Iterator[None]:
    """The run directory's lock on the launch's rank 0 (torchrun sets RANK), nothing elsewhere."""
    if int(os.environ.get("RANK", "0")) != 0:
        yield
        return
    with lock.exclusive(run_dir, "training run"):
        for directory in (run_dir, run_dir / "checkpoints"):
            leftovers.clean_temp_files(directory)
        yield


@dataclass(frozen=True)
class Verification:
    """Where periodic verification finds its sets: the data root and the registry."""

    root: Path
    catalog: Catalog


@dataclass
class _State:
    """What the loop carries: the raw module (for state dicts), optimiser, scaler, step."""

    module: TrainModule
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    step: int


def _run(
    cfg: TrainConfig,
    data_dir: Path,
    run_dir: Path,
    resume: bool,
    context: dist.DistContext,
    verification: Verification | None,
) -> Path:
    # --- set-up: data, derived step counts, model, optional resume -------------------------
    device = context.device
    records = open_training_set(data_dir)
    num_classes = records.num_classes
    derived = derive(cfg, len(records), context.world_size)
    checkpoints = run_dir / "checkpoints"
    state = _build(cfg, num_classes, context)
    _start_or_resume(cfg, state, checkpoints, resume, context)
    final_path = run_dir / FINAL_NAME
    if context.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        io.atomic_write_text(run_dir / "config.yaml", resolved_yaml(cfg))
        log.info("resolved config (hash %s):\n%s", config_hash(cfg), resolved_yaml(cfg))
        log.info("%s", derived)
        log.info("%s", memory_line(cfg, num_classes, context, is_sharded(state.module)))

    # --- the model as the step sees it: DDP over ranks, optionally compiled ---------------
    model: nn.Module = state.module
    if context.distributed:
        device_ids = [device.index] if device.type == "cuda" else None
        if is_sharded(state.module):  # DDP over the backbone only: the centres are per rank
            model = backbone_only_ddp(model, DistributedDataParallel, device_ids=device_ids)
        else:
            model = DistributedDataParallel(model, device_ids=device_ids)
    if cfg.compile:
        model = torch.compile(model)
    dtype = autocast_dtype(cfg, device)
    channels_last = use_channels_last(cfg, device)
    # arcface_torch clips the backbone's gradient norm only (cfg.clip_scope says which).
    clipped = clipped_parameters(state.module, cfg.clip_scope)
    weights = parameter_dtype(cfg)

    # --- data: this rank's slice of each global batch, from the resume step on ------------
    sampler = GlobalBatchSampler(
        len(records), derived.global_batch, context.rank, context.world_size, cfg.seed,
        cfg.flip, start_step=state.step, total_steps=derived.total_steps,
    )  # fmt: skip
    loader = make_loader(
        records, sampler, cfg.num_workers, cfg.seed, device.type == "cuda", cfg.encoded_input
    )
    # Encoded mode: workers only read bytes; the batch is decoded on the device (nvJPEG).
    decode = BatchDecoder("auto", str(device)) if cfg.encoded_input else None
    # The recipe's augmentation (a function of seed, step, sample) and colour order.
    transform = InputTransform(
        cfg.augmentation, cfg.input_colour, cfg.seed, derived.global_batch, context.rank
    )
    progress = Progress(run_dir, context, derived.total_steps, state.step, cfg.progress)
    progress.write({"type": "config", "config": cfg.to_dict(), "start_step": state.step})

    # --- the loop -------------------------------------------------------------------------
    loss_sum = torch.zeros((), device=device)
    nonfinite = torch.zeros((), dtype=torch.bool, device=device)
    window_steps, window_start = 0, time.perf_counter()
    try:
        for batch in loader:
            step = state.step
            lr = recipe_learning_rate(step, cfg, derived)  # poly or step (cfg.lr_schedule)
            for group in state.optimizer.param_groups:
                group["lr"] = lr
            seed_step(cfg.seed, step, context.rank)  # dropout / Partial FC draws: f(step, rank)
            images = batch["images"] if decode is None else decode(batch["images"])
            images = to_model_input(images, batch["flips"], device, channels_last).to(weights)
            images = transform(images, step)
            labels = batch["labels"].to(device, non_blocking=True)
            loss = optimizer_step(
                model, images, labels, state.optimizer, state.scaler, clipped,
                cfg.clip_grad_norm, dtype,
            )  # fmt: skip
            state.step = step = step + 1

            # No host sync per step: loss and the non-finite flag accumulate on the device.
            loss_sum += loss
            nonfinite |= ~torch.isfinite(loss)
            window_steps += 1
            at_epoch_end = step % derived.steps_per_epoch == 0
            at_checkpoint = step % cfg.checkpoint_every == 0 or at_epoch_end
            at_end = step == derived.total_steps
            if step % cfg.log_every == 0 or at_checkpoint or at_end:
                # Synchronised over ranks: a NaN anywhere stops every rank at the same step.
                mean_loss = _check_and_average(loss_sum, nonfinite, window_steps, step, context)
                elapsed = time.perf_counter() - window_start
                images = window_steps * derived.global_batch
                speed = images / max(elapsed, 1e-9)
                record = {"type": "train", "step": step, "epoch": step // derived.steps_per_epoch}
                record |= {"loss": mean_loss, "lr": lr, "images_per_s": speed, "time": time.time()}
                record |= {"images": images, "elapsed": elapsed}  # step time of this window only
                progress.write(record)
                progress.advance(window_steps, mean_loss, lr, speed)
                loss_sum.zero_()
                window_steps = 0
            if at_checkpoint or at_end:
                # Only reached with a finite loss (checked just above): never saves a NaN model.
                _save(cfg, state, derived, checkpoints, context)
            if verification and (step % cfg.verify_every == 0 or at_end):
                _verify(cfg, state, step, verification, progress, context)
            if window_steps == 0:  # after saving/verifying: they must not count as step time
                window_start = time.perf_counter()
    finally:
        progress.close()

    # --- the result: the final model, whatever verification said --------------------------
    final = _checkpoint_state(cfg, state, derived, context)  # gathers a sharded head
    if context.is_main:
        atomic_save(final, final_path)
        log.info("final model: %s (step %d)", final_path, state.step)
    dist.barrier(context)
    return final_path


def _build(cfg: TrainConfig, num_classes: int, context: dist.DistContext) -> _State:
    """Model (same initial weights on every rank), SGD optimiser and gradient scaler."""
    torch.manual_seed(cfg.seed)
    module = build_train_module(cfg, num_classes)
    if cfg.model_parallel_head:  # on the host, so the device only ever holds this rank's shard
        module = shard_head(module, cfg, context)  # before the optimiser: it holds the shard
    module = module.to(context.device, parameter_dtype(cfg))
    if use_channels_last(cfg, context.device):
        module = module.to(memory_format=torch.channels_last)
    if cfg.sync_bn and context.distributed:
        module = convert_sync_batchnorm(module, context.device)
    # Weight decay on all parameters, as arcface_torch does.
    optimizer = torch.optim.SGD(
        [p for p in module.parameters() if p.requires_grad],
        lr=0.0,  # set every step from the schedule
        momentum=cfg.momentum,
        weight_decay=cfg.weight_decay,
    )
    use_scaler = autocast_dtype(cfg, context.device) is torch.float16
    # fp16 only: arcface_torch's scaler grows the scale after 100 clean steps (torch: 2000).
    scaler = torch.amp.GradScaler(context.device.type, growth_interval=100, enabled=use_scaler)
    return _State(module, optimizer, scaler, 0)


def _start_or_resume(cfg, state: _State, checkpoints: Path, resume: bool, context) -> None:
    """Load the latest checkpoint into `state` (resume) or make sure none would be clobbered."""
    latest = latest_checkpoint(checkpoints)
    if not resume:
        if latest is not None:
            raise TrainingError(
                f"{checkpoints} already holds checkpoints (latest {latest.name}); pass --resume "
                "to continue that run, or delete the run directory to start over"
            )
        return
    if latest is None:
        log.info("--resume: no checkpoint in %s, starting from step 0", checkpoints)
        return
    saved = load_checkpoint(latest, map_location=context.device)
    _check_same_recipe(cfg, saved["config"], latest)
    state.module.backbone.load_state_dict(saved["model"])
    load_parts(state.module, state.optimizer, saved)  # head + optimiser, re-sharded if sharded
    state.scaler.load_state_dict(saved["scaler"])
    state.step = int(saved["step"])
    log.info("resumed from %s at step %d", latest, state.step)


def _check_same_recipe(cfg: TrainConfig, saved: dict, path: Path) -> None:
    current = cfg.to_dict()
    # Keys added later that are off at their default: a checkpoint from before them had them off.
    defaults = TrainConfig().to_dict()
    saved = {**{key: defaults[key] for key in HASH_OMITTED_AT_DEFAULT}, **saved}
    changed = sorted(
        key
        for key in set(current) | set(saved)
        if key not in OPERATIONAL_KEYS and current.get(key) != saved.get(key)
    )
    if changed:
        details = ", ".join(f"{k}: {saved.get(k)!r} -> {current.get(k)!r}" for k in changed)
        raise TrainingError(
            f"{path}: the config differs from the checkpoint's ({details}); resume with the "
            "same recipe, or start a new run directory"
        )


def _check_and_average(loss_sum, nonfinite, steps: int, step: int, context) -> float:
    """Mean loss over the window and ranks; TrainingError if any rank saw NaN/inf."""
    packed = torch.stack([loss_sum.float(), nonfinite.float()])
    dist.all_reduce_sum(packed, context)
    if packed[1].item() > 0:
        raise TrainingError(
            f"the loss became NaN/inf before step {step}; the run stopped and the last good "
            "checkpoint is kept. Lower base_lr, enable clip_grad_norm, or use precision=bf16/fp32"
        )
    return packed[0].item() / (steps * context.world_size)


def _checkpoint_state(cfg: TrainConfig, state: _State, derived: Derived, context) -> dict:
    """The checkpoint dict of ARCHITECTURE.md (the evaluator reads backbone/_kwargs/model).

    Called on every rank: a sharded head's centres are gathered (the full classifier is saved).
    """
    return {
        "format_version": FORMAT_VERSION,
        "backbone": cfg.backbone,
        "backbone_kwargs": backbone_kwargs(cfg),
        "embedding_size": cfg.embedding_size,
        "model": state.module.backbone.state_dict(),
        **checkpoint_parts(state.module, state.optimizer, context),  # "head", "optimizer"
        "scaler": state.scaler.state_dict(),
        "step": state.step,
        "epoch": state.step // derived.steps_per_epoch,
        "config": cfg.to_dict(),
        "config_hash": config_hash(cfg),
        "input_colour": cfg.input_colour,  # the evaluator feeds the model this channel order
        # torch's RNG is reseeded every step from (seed, step, rank): nothing else to restore.
        "rng": {"scheme": "seed_step(seed, step, rank)", "seed": cfg.seed},
    }


def _save(cfg, state: _State, derived: Derived, checkpoints: Path, context) -> None:
    checkpoint = _checkpoint_state(cfg, state, derived, context)  # collective when sharded
    if context.is_main:
        path = save_checkpoint(checkpoint, checkpoints, cfg.keep_checkpoints)
        log.debug("checkpoint %s", path)


def _verify(
    cfg: TrainConfig,
    state: _State,
    step: int,
    verification: Verification,
    progress: Progress,
    context: dist.DistContext,
) -> None:
    """Rank 0 evaluates the current backbone; the others wait (logged as curves only)."""
    if context.is_main:
        results = verify_backbone(
            state.module.backbone,
            cfg.verify_targets,
            verification.root,
            context.device,
            verification.catalog,
            cfg.input_colour,
        )
        for target, metrics in results.items():
            progress.write({"type": "eval", "step": step, "target": target, **metrics})
    dist.barrier(context)
