"""`bench prepare NAME --from PATH`: convert a registered training set into the canonical RecordIO."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from bench import paths
from bench.catalog import load_catalog
from bench.commands.common import add_catalog, add_data_root
from bench.errors import DatasetError

log = logging.getLogger(__name__)


def default_workers() -> int:
    """Worker processes by default: the CPUs this process may use, at most 8."""
    return max(
        1,
        min(
            8,
            len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else os.cpu_count() or 1,
        ),
    )


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="registered training set (see `bench datasets`)")
    parser.add_argument(
        "--from",
        dest="source",
        help="where the set is (default: DATA_ROOT/raw/NAME); "
        "any supported format: insightface RecordIO, DCFace record, Vec2Face LMDB, "
        "image folders",
    )
    add_data_root(parser)
    add_catalog(parser)
    parser.add_argument(
        "--workers",
        type=int,
        default=default_workers(),
        help="reader processes (default: %(default)s)",
    )
    parser.add_argument("--force", action="store_true", help="replace an existing prepared set")


def main(args: argparse.Namespace) -> int:
    from bench.prepare import prepare

    entry = load_catalog(args.catalog).training_set(args.name)
    root = paths.data_root(args.data_root)
    source = Path(args.source) if args.source else paths.raw_dir(root, entry.name)
    if not source.exists():
        generate = "  For a demo set run `bench synth` first.\n" if entry.format == "demo" else ""
        raise DatasetError(
            f"training set {entry.name!r}: {source} does not exist.\n"
            f"  Get it: {entry.obtain.strip()}\n{generate}"
            f"  Then: bench prepare {entry.name} --from PATH  (or put it at {paths.raw_dir(root, entry.name)})"
        )
    out_dir = paths.prepared_dir(root, entry.name)
    manifest = prepare(
        entry.name, source, out_dir, workers=args.workers, expected=entry, force=args.force
    )
    print(
        f"prepared {entry.name}: {manifest.images:,} images, {manifest.identities:,} identities "
        f"({manifest.source_format}) -> {out_dir}"
    )
    print(
        f"next: bench check {entry.name}"
        + (f" --data-root {args.data_root}" if args.data_root else "")
    )
    return 0
