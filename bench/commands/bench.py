"""`bench bench NAME`: prepare + check + train + eval one training set (what `make bench` runs)."""

from __future__ import annotations

import argparse
import os

from bench import paths
from bench.catalog import load_catalog
from bench.commands.common import add_catalog, add_data_root
from bench.pipeline import BenchOptions, run_benchmark


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "name", help="training set from datasets.yaml (e.g. uiface_0.5m, demo_diverse)"
    )
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="recipe overrides")
    parser.add_argument(
        "--recipe", help="configs/<recipe>.yaml (default: the set's registry recipe)"
    )
    add_data_root(parser)
    parser.add_argument("--runs-root", help=f"runs (default ${paths.RUNS_ROOT_ENV} or ./runs)")
    parser.add_argument(
        "--results", help=f"results (default ${paths.RESULTS_ROOT_ENV} or ./results)"
    )
    parser.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    parser.add_argument("--batch-size", type=int, default=512, help="evaluation batch size")
    add_catalog(parser)


def main(args: argparse.Namespace) -> int:
    options = BenchOptions(
        data_root=paths.data_root(args.data_root),
        runs_root=paths.runs_root(args.runs_root),
        results_root=paths.results_root(args.results),
        recipe=args.recipe,
        overrides=tuple(args.overrides),
        device=args.device,
        workers=args.workers,
        batch_size=args.batch_size,
    )
    result = run_benchmark(args.name, load_catalog(args.catalog), options)
    print(f"result: {result}")
    return 0
