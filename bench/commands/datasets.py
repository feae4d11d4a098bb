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
    width = max(22, *(len(name) for name in catalog.training))
    header = (
        f"{'training set':<{width}} {'format':<21} {'ids':>8} {'images':>11}  {'counts':<11} "
        "raw  prepared  aliases"
    )
    print(header)
    print("-" * len(header))
    for entry in catalog.training.values():
        raw = paths.raw_dir(root, entry.name).exists()
        prepared = (paths.prepared_dir(root, entry.name) / "manifest.json").exists()
        print(
            f"{entry.name:<{width}} {entry.format:<21} {entry.identities:>8,} {entry.images:>11,}"
            f"  {_counts(entry):<11} {_mark(raw):<4} {_mark(prepared):<9} "
            f"{', '.join(entry.aliases)}".rstrip()
        )
    print()
    header = f"{'evaluation set':<22} {'file':<21} {'pairs':>8}  present"
    print(header)
    print("-" * len(header))
    for entry in catalog.evaluation.values():
        present = (paths.eval_dir(root) / entry.file).exists()
        print(f"{entry.name:<22} {entry.file:<21} {entry.pairs:>8,}  {_mark(present)}")
    if catalog.sources:
        print()
        print("published tables (bench reproduce SOURCE):")
        for source in catalog.sources.values():
            rows = len(catalog.published_by(source.name))
            recipe = source.recipe or "no recipe config (--recipe fixed)"
            print(f"  {source.name:<22} {rows:>3} row(s)  {recipe}  {source.title}")
    return 0


def _counts(entry) -> str:
    """How sure the registry is of the download's counts (`bench check` fails only on verified)."""
    release = entry.expected_counts
    if not release.available:
        return "no download"
    return "verified" if release.verified else "unverified"


def _mark(flag: bool) -> str:
    return "yes" if flag else "-"
