"""`bench bench NAME`: the whole benchmark for one training set, as `make bench` runs it.

prepare (or generate, for demo sets) -> check -> train the set's recipe -> evaluate the final
model on the set's evaluation targets -> one result JSON. Every step is idempotent: a prepared
set is reused, a finished run is not retrained, an interrupted run resumes from its checkpoint."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from bench.catalog import Catalog, TrainingSet
from bench.core import paths
from bench.core.errors import DatasetError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BenchOptions:
    """Where things go and how to run; the CLI fills it."""

    data_root: Path
    runs_root: Path
    results_root: Path
    recipe: str | None = None
    overrides: tuple[str, ...] = ()
    device: str = "auto"
    workers: int = 2
    batch_size: int = 512
    # Launched by torchrun: how long ranks > 0 wait for rank 0 to prepare/check/evaluate.
    wait_timeout: float = 6 * 3600.0


def ensure_prepared(entry: TrainingSet, catalog: Catalog, options: BenchOptions) -> Path:
    """The canonical RecordIO of `entry`, generating (demo) or preparing it when missing."""
    from bench.data.prepare import prepare

    prepared = paths.prepared_dir(options.data_root, entry.name)
    if (prepared / "manifest.json").exists():
        log.info("%s: prepared set found at %s", entry.name, prepared)
        return prepared
    raw = paths.raw_dir(options.data_root, entry.name)
    if entry.demo is not None:
        from bench.demo.data import ensure_demo_data

        ensure_demo_data(entry.name, options.data_root, catalog, workers=options.workers)
    if not raw.exists():
        raise DatasetError(
            f"training set {entry.name!r} is registered but not present: neither {prepared} nor "
            f"{raw} exists. How to get it: {entry.obtain} "
            f"Then run: bench prepare {entry.name} --from PATH"
        )
    prepare(entry.name, raw, prepared, workers=options.workers, expected=entry)
    return prepared


def ensure_eval_sets(entry: TrainingSet, catalog: Catalog, options: BenchOptions) -> None:
    """Generate missing demo .bin files; real ones must be present (checked before training)."""
    eval_dir = paths.eval_dir(options.data_root)
    missing = []
    for target in entry.eval_targets:
        spec = catalog.eval_set(target)
        path = eval_dir / spec.file
        if path.exists():
            continue
        if spec.demo is not None:
            from bench.demo.data import ensure_demo_data

            ensure_demo_data(target, options.data_root, catalog, workers=options.workers)
        else:
            missing.append(f"{path} ({spec.obtain})")
    if missing:
        raise DatasetError(
            f"evaluation sets for {entry.name!r} are missing — the benchmark never skips a "
            "set:\n  " + "\n  ".join(missing)
        )


def run_benchmark(name: str, catalog: Catalog, options: BenchOptions) -> Path:
    """Run the whole benchmark for training set `name`; returns the result JSON's path.

    Launched by torchrun (`bench bench --nproc N`), rank 0 alone prepares, checks and evaluates
    and writes files; the other ranks wait for it (a failure there stops them with its message)
    and every rank trains."""
    from bench.train import dist
    from bench.train.config import config_hash
    from bench.train.loop import train
    from bench.train.recipe import load_config, recipe_path

    entry = catalog.training_set(name)
    recipe_file = recipe_path(options.recipe or entry.recipe)
    # Named like `bench train` names it (the file's stem), so both resume the same run.
    recipe = recipe_file.stem
    config = load_config(recipe_file, list(options.overrides))
    context = dist.setup(options.device)  # the process group, when launched by torchrun
    if not context.is_main:
        logging.getLogger().setLevel(logging.WARNING)  # log lines come from rank 0 only
    try:
        waits = dist.wait_group(context, options.wait_timeout)
        prepared = dist.on_main(
            f"prepare and check {entry.name}",
            lambda: prepare_and_check(entry, catalog, options),
            context,
            waits,
        )
        run_dir = options.runs_root / entry.name / f"{recipe}-seed{config.seed}"
        checkpoint = train(
            config,
            prepared,
            run_dir,
            resume=True,
            eval_root=options.data_root,
            catalog=catalog,
            device=options.device,
        )
        return dist.on_main(
            f"evaluate {checkpoint}",
            lambda: evaluate_run(
                entry, catalog, options, checkpoint, run_dir, recipe, config_hash(config), prepared
            ),
            context,
            waits,
        )
    finally:
        dist.teardown(context)


def prepare_and_check(entry: TrainingSet, catalog: Catalog, options: BenchOptions) -> Path:
    """Evaluation sets present, training set prepared and checked; returns the prepared set."""
    from bench.data.check import check

    ensure_eval_sets(entry, catalog, options)  # fail before hours of training, not after
    prepared = ensure_prepared(entry, catalog, options)
    report = check(prepared, entry, workers=options.workers)
    print(report.to_text())
    if not report.ok:
        raise DatasetError(f"{prepared}: `bench check {entry.name}` found problems (see above)")
    return prepared


def evaluate_run(
    entry: TrainingSet,
    catalog: Catalog,
    options: BenchOptions,
    checkpoint: Path,
    run_dir: Path,
    recipe: str,
    recipe_hash: str,
    prepared: Path | None = None,
) -> Path:
    """Evaluate the final checkpoint of a run and write its result JSON (with the prepared set's
    content hash in its provenance)."""
    from bench.eval.run import evaluate_checkpoint_run

    out = options.results_root / entry.name / f"{run_dir.name}.json"
    evaluate_checkpoint_run(
        checkpoint=checkpoint,
        targets=list(entry.eval_targets),
        data_root=options.data_root,
        catalog=catalog,
        dataset=entry.name,
        recipe=recipe,
        run_dir=run_dir,
        out=out,
        device=options.device,
        batch_size=options.batch_size,
        recipe_hash=recipe_hash,
        prepared=prepared,
    )
    return out
