"""`bench speed`'s evaluation timing: the flip-sum embedding plus 10-fold verification per set, as `bench eval` runs them, on the real
`.bin` when the data root has it, else on random images with the set's real pair count."""

from __future__ import annotations

import copy
import time
from pathlib import Path

import numpy as np
import torch

from bench.catalog import load_catalog
from bench.core.paths import eval_dir
from bench.eval.embed import ModelInfo, TorchEmbedder, embed_pairs
from bench.eval.protocol import verify
from bench.eval.sets import load_eval_set
from bench.speed.settings import SpeedSettings
from bench.speed.timing import sync


def eval_inputs(name: str, settings: SpeedSettings, catalog) -> tuple[np.ndarray, np.ndarray, str]:
    """The real set when the data root has its .bin (and no --eval-pairs), else random images."""
    entry = catalog.eval_set(name)
    if settings.data_root and settings.eval_pairs is None:
        if (eval_dir(Path(settings.data_root)) / entry.file).is_file():
            images, issame = load_eval_set(name, Path(settings.data_root), catalog)
            return images, issame, "real"
    pairs = settings.eval_pairs or entry.pairs
    # Content does not change the cost: tile a small random pool (cheap to make, full size).
    pool = np.random.default_rng(settings.seed).integers(0, 256, (64, 112, 112, 3), np.uint8)
    return pool[np.arange(2 * pairs) % len(pool)], np.arange(pairs) % 2 == 0, "synthetic"


def measure_evaluation(model: torch.nn.Module, settings: SpeedSettings) -> dict:
    """Flip-sum embedding + 10-fold verification time per set, as `bench eval` runs them."""
    catalog = load_catalog()
    embedder = TorchEmbedder(
        copy.deepcopy(model).to(memory_format=torch.contiguous_format),
        ModelInfo("(bench speed)", "", "checkpoint", settings.backbone),
        settings.device,
    )
    sets = {}
    for name in settings.eval_sets:
        images, issame, source = eval_inputs(name, settings, catalog)
        pairs = len(issame)
        sync(settings.device)
        start = time.perf_counter()
        embeddings, _xnorm = embed_pairs(embedder, images, settings.eval_batch)
        embed_s = time.perf_counter() - start
        verify(embeddings, issame)
        seconds = time.perf_counter() - start
        sets[name] = {"pairs": pairs, "source": source, "embed_s": embed_s, "seconds": seconds}
    return {"sets": sets, "total_s": sum(entry["seconds"] for entry in sets.values())}
