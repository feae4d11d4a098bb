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


# --- the project's own files: the registry and the recipes ----------------------------------
# In a source checkout (editable install, or running from the clone) datasets.yaml and configs/
# sit next to the bench package, and users edit those. A regular `pip install .` has no
# checkout: the wheel carries copies as package data under bench/resources/ (symlinks in the
# source tree, so there is one copy to edit).
CATALOG_ENV = "BENCH_CATALOG"
CATALOG_NAME = "datasets.yaml"
RECIPES_NAME = "configs"
_PACKAGE = Path(__file__).resolve().parent.parent


def repository_root() -> Path | None:
    """The source checkout this package was imported from, or None for an installed package."""
    root = _PACKAGE.parent
    return root if (root / CATALOG_NAME).is_file() and (root / RECIPES_NAME).is_dir() else None


def _project_file(name: str) -> Path:
    root = repository_root()
    return root / name if root is not None else _PACKAGE / "resources" / name


def default_catalog_path() -> Path:
    """$BENCH_CATALOG, else the checkout's datasets.yaml, else the installed package's copy."""
    env = os.environ.get(CATALOG_ENV)
    return Path(env) if env else _project_file(CATALOG_NAME)


def recipes_dir() -> Path:
    """The folder of the named recipes (configs/*.yaml)."""
    return _project_file(RECIPES_NAME)
