"""`bench synth`: generate the procedural demo training and evaluation sets (or a preview sheet)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from bench.catalog import load_catalog
from bench.commands.common import add_catalog, add_data_root, add_workers, positive_int
from bench.core import paths
from bench.core.errors import BenchError

log = logging.getLogger(__name__)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help="demo entries of datasets.yaml (training or evaluation sets)",
    )
    parser.add_argument("--all", action="store_true", help="every demo entry of the registry")
    add_data_root(parser)
    add_catalog(parser)
    add_workers(parser)
    parser.add_argument(
        "--force", action="store_true", help="regenerate even if the data is already there"
    )
    parser.add_argument(
        "--preview",
        metavar="PNG",
        type=Path,
        help="only write a contact sheet of the named entries (rows = identities, "
        "columns = images; for evaluation sets, pairs) and generate nothing",
    )
    parser.add_argument(
        "--rows", type=positive_int, default=8, help="preview rows per entry (default 8)"
    )
    parser.add_argument(
        "--columns", type=positive_int, default=8, help="preview columns (default 8)"
    )


def main(args: argparse.Namespace) -> int:
    from bench.demo import data as demo
    from bench.diagnostics.drawing import grid_sheet

    catalog = load_catalog(args.catalog)
    demo.check_disjoint_seeds(catalog)
    names = demo.demo_names(catalog) if args.all else list(args.names)
    if not names:
        raise BenchError(
            "bench synth: name demo entries or pass --all; demo entries: "
            + ", ".join(demo.demo_names(catalog))
        )
    entries = [demo.lookup(name, catalog) for name in names]
    if args.preview is not None:
        if args.rows < 1 or args.columns < 1:
            raise BenchError("bench synth: --rows and --columns must be at least 1")
        rows = [row for entry in entries
                for row in demo.preview_rows(entry, args.rows, args.columns)]  # fmt: skip
        from bench.formats import encode_png

        args.preview.parent.mkdir(parents=True, exist_ok=True)
        args.preview.write_bytes(encode_png(grid_sheet(rows)))
        log.info("preview of %s -> %s", ", ".join(names), args.preview)
        return 0
    root = paths.data_root(args.data_root)
    for entry in entries:
        path = demo.ensure_demo_data(entry.name, root, catalog, args.workers, force=args.force)
        print(f"{entry.name}: {path}")
    return 0
