"""`bench train DATASET [key=value ...]`: train the fixed recipe on a prepared training set.

Multi-GPU / multi-node: `torchrun --nproc_per_node 8 -m bench train DATASET`; every process
runs this command and bench.train.dist picks the rank up from torchrun's environment.
"""

from __future__ import annotations

import argparse

from bench.commands.common import (
    add_catalog,
    add_data_root,
    add_device,
    add_recipe,
    add_runs_root,
)
from bench.core import paths
from bench.core.errors import DatasetError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", help="registered training set name (see `bench datasets`)")
    parser.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="typed config overrides, e.g. epochs=2"
    )
    add_recipe(parser)
    add_data_root(parser)
    add_runs_root(parser)
    add_device(parser)
    add_catalog(parser)
    parser.add_argument(
        "--resume", action="store_true", help="continue from the run's latest checkpoint"
    )
    parser.add_argument(
        "--verify-data",
        action="store_true",
        help="hash every record against the manifest before training (reads the whole set "
        "once; without it only the index, sizes and counts are checked)",
    )


def main(args: argparse.Namespace) -> int:
    from bench.catalog import load_catalog
    from bench.train.loop import train
    from bench.train.recipe import load_config, recipe_path

    catalog = load_catalog(args.catalog)
    entry = catalog.training_set(args.dataset)  # CatalogError if unknown
    recipe_file = recipe_path(args.recipe or entry.recipe)
    cfg = load_config(recipe_file, args.overrides)
    root = paths.data_root(args.data_root)
    data_dir = paths.prepared_dir(root, entry.name)
    if not (data_dir / "train.rec").is_file():
        raise DatasetError(
            f"training set {entry.name!r} is registered but not prepared: {data_dir} has no "
            f"train.rec.\n  How to get it: {entry.obtain}\n  Then: bench prepare {entry.name} "
            f"--from PATH (PATH = what you downloaded; default {paths.raw_dir(root, entry.name)})"
            + (f" --data-root {args.data_root}" if args.data_root else "")
        )
    run_dir = paths.runs_root(args.runs_root) / entry.name / f"{recipe_file.stem}-seed{cfg.seed}"
    final = train(
        cfg,
        data_dir,
        run_dir,
        resume=args.resume,
        eval_root=root,
        catalog=catalog,
        device=args.device,
        verify_data=args.verify_data,
    )
    print(f"final model: {final}")
    return 0
