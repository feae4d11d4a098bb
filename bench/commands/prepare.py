"""`bench prepare NAME --from PATH`: convert a registered training set into the canonical RecordIO."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from bench.catalog import load_catalog
from bench.commands.common import add_catalog, add_data_root, add_workers
from bench.core import paths
from bench.core.errors import DatasetError

log = logging.getLogger(__name__)


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
    add_workers(parser)
    parser.add_argument("--force", action="store_true", help="replace an existing prepared set")


def main(args: argparse.Namespace) -> int:
    from bench.data.prepare import prepare

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
