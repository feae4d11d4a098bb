"""`bench <command>`: the command table. Each command lives in `bench/commands/<module>.py`,
which defines `configure(parser)` and `main(args) -> int`; modules are imported only when their
command runs, so `bench --help` stays fast and nothing heavy (torch) loads at import time."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from bench.core.errors import BenchError

# command name -> (module under bench.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "datasets": ("datasets", "list registered training/evaluation sets and their state here"),
    "prepare": ("prepare", "convert a training set into the canonical RecordIO + manifest"),
    "check": ("check", "decode every image of a prepared set and compare with the registry"),
    "export-images": ("export_images", "write a RecordIO set back out as image folders"),
    "synth": ("synth", "generate the procedural demo training and evaluation sets"),
    "train": ("train", "train the fixed recipe on a prepared training set"),
    "eval": ("eval", "evaluate a model on the verification sets and write a result JSON"),
    "ijb": ("ijb", "IJB-B / IJB-C template 1:1 verification and 1:N identification"),
    "export-onnx": ("export_onnx", "export a checkpoint to ONNX and check it with onnxruntime"),
    "bench": ("bench", "prepare + check + train + eval one training set (what `make bench` runs)"),
    "slurm": ("slurm", "write an sbatch script that runs `bench bench` on a SLURM cluster"),
    "reproduce": ("reproduce", "train every present set of one published table, several seeds"),
    "report": ("report", "rebuild the leaderboards, plots and tables from result JSONs"),
    "diagnose": ("diagnose", "diversity, separability and identity-leakage diagnostics"),
    "speed": ("speed", "measure training step, data pipeline, end-to-end and eval speed"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench",
        description="facebench: benchmark harness for synthetic face-recognition training sets.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_module, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    # First pass finds the command; its own parser (built lazily) parses the rest.
    known, rest = parser.parse_known_args(argv[: _command_index(argv) + 1] if argv else argv)
    logging.basicConfig(
        level=logging.DEBUG if known.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    module_name, help_text = COMMANDS[known.command]
    module = importlib.import_module(f"bench.commands.{module_name}")
    command_parser = argparse.ArgumentParser(prog=f"bench {known.command}", description=help_text)
    module.configure(command_parser)
    # Intermixed: `bench train NAME --data-root R epochs=2` puts positionals after flags.
    args = command_parser.parse_intermixed_args(argv[_command_index(argv) + 1 :])
    try:
        return int(module.main(args) or 0)
    except BenchError as error:
        logging.getLogger("bench").error("%s", error)
        return 2


def _command_index(argv: list[str]) -> int:
    """Position of the command word (the first argument that is not a global flag)."""
    for index, word in enumerate(argv):
        if not word.startswith("-"):
            return index
    return len(argv) - 1
