"""`bench report`: rebuild the leaderboards, plots, reproduction table, audit and exports."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.catalog import load_catalog
from bench.commands.common import add_catalog
from bench.core import paths


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--results",
        help=f"result JSONs, read recursively (default ${paths.RESULTS_ROOT_ENV} or ./results)",
    )
    parser.add_argument("--out", default="reports", help="output directory (default ./reports)")
    parser.add_argument(
        "--diagnostics",
        default="diagnostics",
        help="`bench diagnose` output to include as dataset cards (default ./diagnostics, if present)",
    )
    add_catalog(parser)


def main(args: argparse.Namespace) -> int:
    from bench.report import build_reports

    summary = build_reports(
        paths.results_root(args.results),
        Path(args.out),
        load_catalog(args.catalog),
        diagnostics_dir=Path(args.diagnostics) if args.diagnostics else None,
    )
    print(f"report built from {summary.results_used} result JSON(s) into {summary.out_dir}/:")
    for path in summary.written:
        if path.parent == summary.out_dir:
            print(f"  {path}")
    plots = [path for path in summary.written if path.parent != summary.out_dir]
    if plots:
        print(f"  {len(plots)} plot files under {summary.out_dir / 'plots'}/")
    for note in summary.notes:
        print(f"note: {note}")
    for warning in summary.warnings:
        print(f"WARNING: {warning}")
    return 0
