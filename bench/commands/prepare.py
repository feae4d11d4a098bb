"""`bench prepare NAME --from PATH`: convert a registered training set into the canonical RecordIO."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from bench.catalog import Catalog, load_catalog
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
        "image folders; with --mask, the parent set (a path, or a registered name: its raw folder)",
    )
    parser.add_argument(
        "--mask",
        metavar="FILE",
        help="only the records of --from this index mask selects (a .npy array of record "
        "indices, the config.mask format of HaiyuWu's repositories: HSFace100K/200K over "
        "HSFace300K)",
    )
    add_data_root(parser)
    add_catalog(parser)
    add_workers(parser)
    parser.add_argument("--force", action="store_true", help="replace an existing prepared set")


def main(args: argparse.Namespace) -> int:
    from bench.data.prepare import prepare

    catalog = load_catalog(args.catalog)
    entry = catalog.training_set(args.name)
    root = paths.data_root(args.data_root)
    source = _source(args, root, entry.name, catalog)
    if not source.exists():
        generate = "  For a demo set run `bench synth` first.\n" if entry.format == "demo" else ""
        raise DatasetError(
            f"training set {entry.name!r}: {source} does not exist.\n"
            f"  Get it: {entry.obtain.strip()}\n{generate}"
            f"  Then: bench prepare {entry.name} --from PATH  (or put it at {paths.raw_dir(root, entry.name)})"
        )
    out_dir = paths.prepared_dir(root, entry.name)
    manifest = prepare(
        entry.name,
        source,
        out_dir,
        workers=args.workers,
        expected=entry,
        force=args.force,
        mask=args.mask,
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


def _source(args: argparse.Namespace, root: Path, name: str, catalog: Catalog) -> Path:
    """--from as given; a registered name that is not a path means that set's raw folder (the
    parent of a mask); without --from, the set's own raw folder."""
    if args.mask and not args.source:
        raise DatasetError(
            f"--mask selects records of a parent set: pass it with --from PARENT "
            f"(e.g. bench prepare {name} --from vec2face_hsface300k --mask FILE)"
        )
    if not args.source:
        return paths.raw_dir(root, name)
    source = Path(args.source)
    if not source.exists() and args.source in catalog.training:
        return paths.raw_dir(root, args.source)
    return source
