"""Options that several commands share, defined once so their names and help never drift."""

from __future__ import annotations

import argparse

from bench import paths


def add_data_root(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-root", help=f"data root (default ${paths.DATA_ROOT_ENV} or ./data)")


def add_catalog(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--catalog", help="registry file (default datasets.yaml)")
