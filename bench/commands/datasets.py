"""`bench datasets`: list the registry and what is present/prepared on this machine."""

from __future__ import annotations

import argparse

from bench.catalog import load_catalog
from bench.commands.common import add_catalog, add_data_root
from bench.core import paths


def configure(parser: argparse.ArgumentParser) -> None:
    add_data_root(parser)
    add_catalog(parser)


def main(args: argparse.Namespace) -> int:
    catalog = load_catalog(args.catalog)
    root = paths.data_root(args.data_root)
    print(f"data root: {root.resolve()}   registry: {catalog.path}")
    print()
    header = (
        f"{'training set':<22} {'format':<21} {'ids':>8} {'images':>11}  raw  prepared  aliases"
    )
    print(header)
    print("-" * len(header))
    for entry in catalog.training.values():
        raw = paths.raw_dir(root, entry.name).exists()
        prepared = (paths.prepared_dir(root, entry.name) / "manifest.json").exists()
        print(
            f"{entry.name:<22} {entry.format:<21} {entry.identities:>8,} {entry.images:>11,}"
            f"  {_mark(raw):<4} {_mark(prepared):<9} {', '.join(entry.aliases)}".rstrip()
        )
    print()
    header = f"{'evaluation set':<22} {'file':<21} {'pairs':>8}  present"
    print(header)
    print("-" * len(header))
    for entry in catalog.evaluation.values():
        present = (paths.eval_dir(root) / entry.file).exists()
        print(f"{entry.name:<22} {entry.file:<21} {entry.pairs:>8,}  {_mark(present)}")
    return 0


def _mark(flag: bool) -> str:
    return "yes" if flag else "-"
