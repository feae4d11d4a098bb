"""`bench check NAME`: decode every image of a prepared set and compare it with the registry."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.catalog import load_catalog
from bench.commands.common import add_catalog, add_data_root, add_workers
from bench.core import paths
from bench.core.io import atomic_write_text


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="registered training set (see `bench datasets`)")
    add_data_root(parser)
    add_catalog(parser)
    add_workers(parser)
    parser.add_argument(
        "--json", dest="json_out", help="also write the report as JSON to this file"
    )


def main(args: argparse.Namespace) -> int:
    """Prints the report; exit code 0 if all is well, 1 on any problem."""
    from bench.data.check import check

    entry = load_catalog(args.catalog).training_set(args.name)
    prepared = paths.prepared_dir(paths.data_root(args.data_root), entry.name)
    report = check(prepared, entry, workers=args.workers)
    print(report.to_text())
    if args.json_out:
        atomic_write_text(Path(args.json_out), json.dumps(report.to_dict(), indent=1) + "\n")
    return 0 if report.ok else 1
