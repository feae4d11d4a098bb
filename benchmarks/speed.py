"""Speed benchmark script: the same as `bench speed` (see docs/PERFORMANCE.md for settings).

python benchmarks/speed.py --device cuda --compile
python benchmarks/speed.py --device cpu --backbone ir18 --width 16 --steps 3 ...
"""

from __future__ import annotations

import sys
from pathlib import Path


def run() -> int:
    """Dispatch to `bench speed` with this script's arguments."""
    # Runnable from a checkout without installing the package.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench.cli import main

    return main(["speed", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(run())
