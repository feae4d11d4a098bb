"""Where things live on disk. The data root comes from `--data-root` or $BENCH_DATA_ROOT;
its default is `./data` relative to the working directory (never an absolute hard-coded path)."""

from __future__ import annotations

import os
from pathlib import Path

DATA_ROOT_ENV = "BENCH_DATA_ROOT"
RUNS_ROOT_ENV = "BENCH_RUNS_ROOT"
RESULTS_ROOT_ENV = "BENCH_RESULTS_ROOT"


def data_root(cli_value: str | os.PathLike | None = None) -> Path:
    """The data root: the CLI flag wins, then $BENCH_DATA_ROOT, then ./data."""
    return Path(cli_value or os.environ.get(DATA_ROOT_ENV) or "data")


def prepared_dir(root: Path, name: str) -> Path:
    """Canonical RecordIO of training set `name`: train.rec, train.idx, property, manifest.json."""
    return root / "prepared" / name


def raw_dir(root: Path, name: str) -> Path:
    """Default place of a training set's original files (what `bench prepare --from` reads)."""
    return root / "raw" / name


def eval_dir(root: Path) -> Path:
    """Verification `.bin` files (lfw.bin, cfp_fp.bin, ...) and their decoded caches."""
    return root / "eval"


def runs_root(cli_value: str | os.PathLike | None = None) -> Path:
    """Training runs: checkpoints, logs, resolved configs."""
    return Path(cli_value or os.environ.get(RUNS_ROOT_ENV) or "runs")


def results_root(cli_value: str | os.PathLike | None = None) -> Path:
    """Result JSONs that `make report` reads."""
    return Path(cli_value or os.environ.get(RESULTS_ROOT_ENV) or "results")
