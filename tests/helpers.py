"""Small builders and paths shared by the test modules (imported as `helpers`: pyproject's
pytest `pythonpath` puts tests/ on sys.path; the test folders mirror bench/'s packages)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.formats import MemoryRecords as Records  # noqa: F401  (re-exported for the tests)
from bench.formats import encode_png, write_canonical

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
CONFIGS = REPO / "configs"
# Files written by the real MXNet and Python 2, shipped beside the repository.
SHARED_FIXTURES = REPO.parent / "shared" / "fixtures" / "insightface"


def make_set(out: Path, classes: int = 4, per_class: int = 6, seed: int = 0) -> Path:
    """A tiny procedurally generated 112x112 canonical set: one colour layout per class + noise."""
    rng = np.random.default_rng(seed)
    items = []
    for label in range(classes):
        layout = rng.integers(0, 256, (4, 4, 3))
        for _ in range(per_class):
            image = np.kron(layout, np.ones((28, 28, 1))) + rng.integers(-20, 20, (112, 112, 3))
            items.append((encode_png(np.clip(image, 0, 255).astype(np.uint8)), label))
    out.mkdir(parents=True, exist_ok=True)
    write_canonical(out, items, classes)
    return out
