"""A few hundred steps of the real training loop (THE recipe, `bench.train.loop.train`) on a
generated RecordIO, then its throughput from log.jsonl: the training section of gpu_proof.sh.

python benchmarks/proof_train.py --out DIR [--records 51200 --classes 1000 --epochs 3]
python benchmarks/proof_train.py --out DIR --cpu-rehearsal      # tiny sizes, for CI
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # runnable from a checkout


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--records", type=int, default=51_200, help="images (100 steps/epoch)")
    parser.add_argument("--classes", type=int, default=1_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=12)
    parser.add_argument("--cpu-rehearsal", action="store_true", help="tiny IR-18 on CPU")
    return parser.parse_args(argv)


def overrides(args: argparse.Namespace) -> list[str]:
    """Only size and run-keeping knobs change; the maths is THE recipe's."""
    common = [f"epochs={args.epochs}", "log_every=10", "checkpoint_every=100000", "progress=false"]
    if not args.cpu_rehearsal:
        return [*common, f"num_workers={args.workers}"]
    tiny = ["backbone=ir18", "backbone_kwargs.width=8", "embedding_size=32", "batch_size=16"]
    cpu = ["precision=fp32", "channels_last=false", "num_workers=0", "num_threads=1"]
    return [*common, *tiny, *cpu]


def throughput(log: Path) -> dict:
    """img/s over the windows after the first (the first holds start-up and cuDNN tuning)."""
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    windows = [r for r in records if r.get("type") == "train"]
    steady = windows[1:] or windows
    images = sum(r["images"] for r in steady)
    seconds = sum(r["elapsed"] for r in steady)
    return {
        "windows": len(windows),
        "steps": windows[-1]["step"] if windows else 0,
        "images_per_s_steady": images / seconds if seconds else 0.0,
        "images_per_s_all": sum(r["images"] for r in windows)
        / max(sum(r["elapsed"] for r in windows), 1e-9),
        "final_loss": windows[-1]["loss"] if windows else None,
    }


def main(argv: list[str]) -> int:
    args = parse(argv)
    if args.cpu_rehearsal:
        args.records, args.classes, args.epochs = min(args.records, 64), min(args.classes, 8), 1
    from bench.speed.run import write_synthetic_recordio
    from bench.speed.settings import SpeedSettings
    from bench.train.config import config_hash
    from bench.train.loop import train
    from bench.train.recipe import load_config, recipe_path

    data = args.out / "proof-data"
    if not (data / "train.rec").is_file():
        settings = SpeedSettings(records=args.records, num_classes=args.classes)
        write_synthetic_recordio(data, settings)
    cfg = load_config(recipe_path("ir50_arcface"), overrides(args))
    run = args.out / "proof-run"
    started = time.perf_counter()
    train(cfg, data, run, resume=False, device="cpu" if args.cpu_rehearsal else "auto")
    summary = {
        "recipe": "ir50_arcface",
        "recipe_hash": config_hash(cfg),
        "overrides": overrides(args),
        "records": args.records,
        "classes": args.classes,
        "wall_s": time.perf_counter() - started,
        **throughput(run / "log.jsonl"),
    }
    (args.out / "proof_train.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
