"""`bench export-images SRC OUT`: write a training set (any format) as `<label>/<n>.<ext>` folders."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "source", metavar="SRC", help="a prepared set or any supported training-set path"
    )
    parser.add_argument(
        "out", metavar="OUT", help="output folder (created; must be empty unless --force)"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace an existing OUT as a whole (staged, then renamed into place)",
    )


def main(args: argparse.Namespace) -> int:
    from bench.data.export import export_images

    count = export_images(args.source, args.out, force=args.force)
    print(f"exported {count:,} images to {args.out}")
    return 0
