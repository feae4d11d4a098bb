"""`bench reproduce SOURCE`: train every present training set of one published table, N seeds."""

from __future__ import annotations

import argparse

from bench.catalog import load_catalog
from bench.commands.common import (
    add_pipeline_options,
    positive_int,
)
from bench.commands.launch import add_launch_options, needs_launch, relaunch
from bench.core import paths
from bench.pipeline import BenchOptions
from bench.reproduce import RECIPE_MODES, reproduce


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "source", help="a published table under `sources` in datasets.yaml (e.g. dcface_paper)"
    )
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="recipe overrides")
    parser.add_argument(
        "--recipe",
        choices=RECIPE_MODES,
        default="source",
        help="source: the table's own recipe (configs/sources/...); fixed: each set's benchmark "
        "recipe (default: source)",
    )
    parser.add_argument(
        "--seeds", type=positive_int, default=3, help="seeds per training set (default 3)"
    )
    add_pipeline_options(parser)
    add_launch_options(parser)  # --nproc N: every cell's bench bench on N processes


def main(args: argparse.Namespace) -> int:
    """0 when every present set's cells have results; absent sets are listed, not fatal; 1 when
    none of the table's sets is here."""
    if needs_launch(args):  # --nproc/--nnodes: the same command in N processes under torchrun
        return relaunch(args, "reproduce")
    options = BenchOptions(
        data_root=paths.data_root(args.data_root),
        runs_root=paths.runs_root(args.runs_root),
        results_root=paths.results_root(args.results),
        overrides=tuple(args.overrides),
        device=args.device,
        workers=args.workers,
        batch_size=args.batch_size,
    )
    done = reproduce(load_catalog(args.catalog), args.source, options, args.recipe, args.seeds)
    print(
        f"reproduce {args.source}: {len(done.cells)} result(s) under {options.results_root}, "
        f"{len(done.absent)} set(s) absent (listed above); next: bench report"
    )
    return 0 if done.cells else 1
