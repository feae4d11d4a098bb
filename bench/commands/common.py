"""Options that several commands share, defined once so their names, defaults, checks and help
never drift: --data-root, --runs-root, --results, --catalog, --recipe, --device, --workers,
--batch-size. Ranges are checked by argparse types (a bad value is a usage error, exit 2)."""

from __future__ import annotations

import argparse
import re

from bench.core import io, paths

DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def device(text: str) -> str:
    """argparse type: auto, cpu, cuda or cuda:N."""
    if not DEVICE_PATTERN.match(text):
        raise argparse.ArgumentTypeError(f"{text!r}: choose auto, cpu, cuda or cuda:N")
    return text


def add_data_root(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-root", help=f"data root (default ${paths.DATA_ROOT_ENV} or ./data)")


def add_runs_root(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--runs-root", help=f"training runs (default ${paths.RUNS_ROOT_ENV} or ./runs)"
    )


def add_results(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--results", help=f"result JSON root (default ${paths.RESULTS_ROOT_ENV} or ./results)"
    )


def add_catalog(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--catalog", help="registry file (default datasets.yaml)")


def add_recipe(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--recipe",
        help="recipe YAML, or a name in configs/ (default: the training set's registry recipe, "
        "normally ir50_arcface)",
    )


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device",
        type=device,
        default="auto",
        help="auto (cuda when available), cpu, cuda or cuda:N (default %(default)s)",
    )


def add_trust_model(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trust-model",
        action="store_true",
        help="allow a TorchScript --model: it runs the code stored in the file (any torch "
        "operator, file writes included), so only for files you trust; checkpoints (weights "
        "only) and ONNX never need it",
    )


def add_model_zoo(parser: argparse.ArgumentParser) -> None:
    """--backbone / --input-colour for model-zoo weights (bench.eval.model_zoo)."""
    parser.add_argument(
        "--backbone",
        help="architecture of a bare state dict --model (arcface_torch backbone.pth, TFace, "
        "AdaFace .ckpt), e.g. ir50; detected from the keys and shapes when left out, an error "
        "when it does not fit them",
    )
    parser.add_argument(
        "--input-colour",
        choices=("rgb", "bgr"),
        help="channel order the model was trained on (default: what the file records; AdaFace "
        "checkpoints bgr, otherwise rgb)",
    )


def add_workers(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=io.default_workers(),
        help="parallel workers reading and decoding images (default: CPUs, at most 8: %(default)s)",
    )


def add_batch_size(parser: argparse.ArgumentParser, default: int = 512) -> None:
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=default,
        help="images per forward pass in evaluation (default %(default)s)",
    )


def add_pipeline_options(parser: argparse.ArgumentParser) -> None:
    """Where a benchmark run reads and writes and how it runs: what `bench bench` and `bench
    reproduce` share (--data-root, --runs-root, --results, --device, --workers, --batch-size,
    --catalog)."""
    add_data_root(parser)
    add_runs_root(parser)
    add_results(parser)
    add_device(parser)
    add_workers(parser)
    add_batch_size(parser)
    add_catalog(parser)
