"""`bench bench NAME`: prepare + check + train + eval one training set (what `make bench` runs)."""

from __future__ import annotations

import argparse
import os

from bench.catalog import load_catalog
from bench.commands.common import (
    add_pipeline_options,
    add_recipe,
)
from bench.commands.launch import add_launch_options, needs_launch, relaunch
from bench.core import paths
from bench.pipeline import BenchOptions, run_benchmark


def configure(parser: argparse.ArgumentParser) -> None:
    add_arguments(parser)
    add_launch_options(parser)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """What `bench bench` runs (without the launch options; `bench slurm` forwards these)."""
    parser.add_argument(
        "name", help="training set from datasets.yaml (e.g. uiface_0.5m, demo_diverse)"
    )
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="recipe overrides")
    add_recipe(parser)
    add_pipeline_options(parser)
    parser.add_argument(
        "--wait-timeout",
        type=float,
        default=360.0,
        help="minutes ranks > 0 wait for rank 0 to prepare/check/evaluate (default %(default)s)",
    )


def main(args: argparse.Namespace) -> int:
    if needs_launch(args):  # --nproc/--nnodes: the same command in N processes under torchrun
        return relaunch(args, "bench")
    options = BenchOptions(
        data_root=paths.data_root(args.data_root),
        runs_root=paths.runs_root(args.runs_root),
        results_root=paths.results_root(args.results),
        recipe=args.recipe,
        overrides=tuple(args.overrides),
        device=args.device,
        workers=args.workers,
        batch_size=args.batch_size,
        wait_timeout=args.wait_timeout * 60.0,
    )
    result = run_benchmark(args.name, load_catalog(args.catalog), options)
    if os.environ.get("RANK", "0") == "0":  # under torchrun every rank returns here
        print(f"result: {result}")
    return 0
