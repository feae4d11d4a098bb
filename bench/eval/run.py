"""Evaluate one model on several verification sets -> result dict / result JSON.

Used by `bench eval` (any model file) and by the pipeline (`evaluate_checkpoint_run`, the final
checkpoint of a training run, with the run's provenance). Every requested target must exist:
a missing .bin is a DatasetError before anything is embedded, never a skipped column."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from bench.catalog import Catalog, load_catalog
from bench.core import io
from bench.core.errors import DatasetError
from bench.data.manifest import MANIFEST_NAME, read_manifest
from bench.eval.embed import (
    Embedder,
    checkpoint_embedder,
    default_device,
    embed_pairs,
    read_checkpoint,
)
from bench.eval.protocol import verify
from bench.eval.results import build_result as build_result_dict
from bench.eval.results import decode_scores, target_entry, write_result
from bench.eval.sets import eval_set_path, load_eval_data, load_eval_set

log = logging.getLogger(__name__)
DEGENERATE_TOLERANCE = 1e-6  # XNorm / distance spread below which embeddings are degenerate


def check_targets(targets: list[str], root: Path, catalog: Catalog) -> list[str]:
    """Deduplicated targets, after checking every one is registered and its .bin is present."""
    unique = list(dict.fromkeys(targets))
    if not unique:
        raise DatasetError("no evaluation targets given")
    missing = []
    for name in unique:
        try:
            eval_set_path(name, root, catalog)
        except DatasetError as error:
            missing.append(str(error))
    if missing:
        raise DatasetError(f"{len(missing)} evaluation set(s) missing:\n  " + "\n  ".join(missing))
    return unique


def evaluate(
    embedder: Embedder, targets: list[str], root: Path, catalog: Catalog, batch_size: int = 512
) -> dict[str, dict]:
    """Per-target result entries (metrics, xnorm, file hash, compact scores) for `embedder`."""
    entries = {}
    for name in check_targets(targets, Path(root), catalog):
        data = load_eval_data(name, Path(root), catalog)
        started = time.perf_counter()
        embeddings, xnorm = embed_pairs(embedder, data.images, batch_size)
        embed_seconds = time.perf_counter() - started
        metrics = verify(embeddings, data.issame)
        entries[name] = target_entry(metrics, data.issame, xnorm, data.sha256)
        for warning in degenerate_warnings({name: entries[name]}):
            log.warning("%s", warning)
        log.info(
            "%s: acc %.2f%% ± %.2f (%d pairs, embedded in %.1fs)",
            name,
            100 * metrics["acc"],
            100 * metrics["acc_std"],
            metrics["pairs"],
            embed_seconds,
        )
    return entries


def build_result(
    embedder: Embedder, entries: dict[str, dict], run: dict | None = None, ijb: dict | None = None
) -> dict:
    """The result dict of `embedder`'s evaluation (bench.eval.results schema, validated); `ijb`:
    IJB entries from bench.eval.ijb.run.evaluate_packages."""
    return build_result_dict(
        embedder.info.to_dict(),
        entries,
        run=run,
        device=embedder.device,
        warnings=degenerate_warnings(entries),
        ijb=ijb,
    )


def degenerate_warnings(entries: dict[str, dict]) -> list[str]:
    """What says a model's embeddings carry no information (an all-zero or constant model): an
    XNorm of 0, or one distance for every pair. Its accuracy is then the share of the majority
    label at one threshold - a number that looks like a result but is not one."""
    warnings = []
    for name, entry in entries.items():
        scores = decode_scores(entry["scores_b64"])
        if entry["xnorm"] < DEGENERATE_TOLERANCE:
            warnings.append(
                f"{name}: XNorm is {entry['xnorm']:.3g}: the model outputs (near-)zero embeddings; "
                "its accuracy is meaningless (is this a trained model?)"
            )
        elif scores.size and float(np.ptp(scores)) < DEGENERATE_TOLERANCE:
            warnings.append(
                f"{name}: every pair has the same distance ({float(scores[0]):.3g}): the model "
                "gives one embedding for every face; its accuracy is meaningless"
            )
    return warnings


def run_info(
    checkpoint: dict,
    dataset: str,
    recipe: str,
    run_dir: Path,
    recipe_hash: str | None = None,
    prepared: Path | None = None,
) -> dict:
    """The result's `run` section: dataset, recipe, resolved config and training statistics.

    The recipe hash is the one the checkpoint records (bench.train stores it), else the caller's
    (`recipe_hash`, computed from the recipe it trained with), else "unknown". `prepared`: the
    prepared set it trained on, whose manifest identifies the data (`data`, also in provenance)."""
    config = dict(checkpoint.get("config") or {})
    log_path = Path(run_dir) / "log.jsonl"
    return {
        **({"data": prepared_data(Path(prepared))} if prepared is not None else {}),
        "dataset": dataset,
        "recipe": recipe,
        "recipe_hash": str(checkpoint.get("config_hash") or recipe_hash or "unknown"),
        "seed": config.get("seed"),
        "config": config,
        "train": {
            "steps": int(checkpoint.get("step") or 0),
            "epochs": int(checkpoint.get("epoch") or 0),
            **_train_log_stats(log_path),
            "log": str(log_path),
        },
    }


def prepared_data(prepared: Path) -> dict:
    """Name, counts and hashes of a prepared set from its manifest (content_sha256 "unknown" for
    sets prepared before content hashes existed)."""
    manifest = read_manifest(prepared)
    return {
        "name": manifest.name,
        "images": manifest.images,
        "identities": manifest.identities,
        "content_sha256": manifest.content_sha256 or "unknown",
        "rec_sha256": manifest.rec_sha256,
        # The manifest file itself (counts, both hashes): what `bench train` verified at start.
        "manifest_sha256": io.sha256_file(Path(prepared) / MANIFEST_NAME),
    }


def _train_log_stats(log_path: Path) -> dict:
    """Wall time and throughput from the training log.

    wall_s: per session (a "config" record starts each launch or resume), last minus first
    "train" record time plus the first window's own step time; summed over sessions, so the
    time between an interruption and its resume does not count. images_per_s: images over step
    time of all windows (checkpointing and periodic verification excluded). Logs written before
    windows recorded `images`/`elapsed` fall back to the mean of the window speeds."""
    if not log_path.is_file():
        log.warning("%s not found: the result's train.wall_s/images_per_s are 0", log_path)
        return {"wall_s": 0.0, "images_per_s": 0.0}
    sessions: list[list[dict]] = [[]]
    for number, line in enumerate(log_path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DatasetError(f"{log_path}:{number}: not a JSON line ({error})") from None
        if record.get("type") == "config" and sessions[-1]:
            sessions.append([])
        elif record.get("type") == "train":
            sessions[-1].append(record)
    records = [record for session in sessions for record in session]
    if not records:
        return {"wall_s": 0.0, "images_per_s": 0.0}
    wall = sum(
        float(s[-1].get("time", 0.0))
        - float(s[0].get("time", 0.0))
        + float(s[0].get("elapsed", 0.0))
        for s in sessions
        if s
    )
    step_time = sum(float(record.get("elapsed", 0.0)) for record in records)
    if step_time > 0 and all("images" in record for record in records):
        speed = sum(float(record["images"]) for record in records) / step_time
    else:
        speed = sum(float(r.get("images_per_s", 0.0)) for r in records) / len(records)
    return {"wall_s": wall, "images_per_s": speed}


def evaluate_checkpoint_run(
    checkpoint: Path,
    targets: list[str],
    data_root: Path,
    catalog: Catalog,
    dataset: str,
    recipe: str,
    run_dir: Path,
    out: Path,
    device: str | None = None,
    batch_size: int = 512,
    recipe_hash: str | None = None,
    prepared: Path | None = None,
) -> dict:
    """Evaluate a run's final checkpoint and write its result JSON to `out`; returns the result."""
    targets = check_targets(targets, Path(data_root), catalog)  # fail before loading the model
    state = read_checkpoint(Path(checkpoint))
    embedder = checkpoint_embedder(state, Path(checkpoint), default_device(device))
    entries = evaluate(embedder, targets, Path(data_root), catalog, batch_size)
    result = build_result(
        embedder, entries, run=run_info(state, dataset, recipe, run_dir, recipe_hash, prepared)
    )
    write_result(out, result)
    log.info("result written to %s (mean acc %.2f%%)", out, 100 * result["mean_acc"])
    return result


def verify_backbone(
    backbone: nn.Module,
    targets: tuple[str, ...],
    eval_root: Path,
    device: torch.device,
    catalog: Catalog | None = None,
    input_colour: str = "rgb",
) -> dict[str, dict[str, float]]:
    """Verification accuracy of `backbone` on `targets` (curves only, never model selection);
    the targets are looked up in `catalog` (default: the default registry); the images are fed
    in the recipe's `input_colour`."""
    from bench.eval.embed import ModelInfo, TorchEmbedder, embed_pairs

    catalog = catalog or load_catalog()
    info = ModelInfo("(training)", "", "checkpoint")
    embedder = TorchEmbedder(backbone, info, str(device), input_colour)
    results = {}
    started = time.perf_counter()
    for target in targets:
        images, issame = load_eval_set(target, eval_root, catalog)
        embeddings, _xnorm = embed_pairs(embedder, images)
        metrics = verify(embeddings, issame)
        results[target] = {"acc": float(metrics["acc"]), "acc_std": float(metrics["acc_std"])}
    backbone.train()
    log.info("verification %s in %.1fs", results, time.perf_counter() - started)
    return results
