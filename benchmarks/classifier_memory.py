"""Per-rank memory of the classifier: one process holding all centres vs model-parallel shards.

For C centres of dimension D (default 300,000 x 512: Vec2Face HSFace300K's identity count),
measures on CPU with gloo what each process holds for the head during one SGD step:
the centres, their gradient and their momentum buffer (exact tensor bytes), the logits of the
global batch against its own centres, and the process's peak resident memory (VmHWM) above
what it had before the head was built. The figures in docs/PERFORMANCE.md come from

    .venv/bin/python benchmarks/classifier_memory.py --ranks 1 4

(about 3 minutes on 2 CPU cores; each rank builds only its own shard).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MIB = 2**20


def _rss_mib() -> float:
    """Peak resident memory of this process so far (VmHWM: unlike ru_maxrss, not inherited
    from the parent that spawned it)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def _measure(rank: int, world: int, classes: int, dim: int, batch: int) -> dict:
    import torch
    import torch.distributed as dist

    from losses import build_loss
    from losses.partial_fc import PartialFC
    from losses.partial_fc_sharded import ShardedPartialFC, shard_bounds

    torch.manual_seed(rank)
    baseline = _rss_mib()
    margin = build_loss("arcface", s=64.0)
    if world == 1:
        head = PartialFC(margin, dim, classes)
    else:
        rows = len(shard_bounds(classes, rank, world))
        weight = torch.normal(0.0, 0.01, (rows, dim))
        head = ShardedPartialFC(margin, dim, classes, 1.0, weight, rank, world)
        del weight
    optimizer = torch.optim.SGD(head.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    embeddings = torch.randn(batch // world, dim, requires_grad=True)
    labels = torch.randint(0, classes, (batch // world,))
    start = time.perf_counter()
    head(embeddings, labels).backward()
    optimizer.step()
    seconds = time.perf_counter() - start
    if world > 1:
        dist.barrier()
    state = optimizer.state[head.weight]["momentum_buffer"]
    tensors = [head.weight, head.weight.grad, state]
    return {
        "rank": rank,
        "centres": head.weight.shape[0],
        "centres_mib": head.weight.numel() * 4 / MIB,
        "head_tensors_mib": sum(t.numel() * t.element_size() for t in tensors) / MIB,
        "logits_mib": batch * head.weight.shape[0] * 4 / MIB,
        "peak_rss_above_start_mib": _rss_mib() - baseline,
        "step_s": seconds,
    }


def _worker(rank: int, world: int, port: int, args: argparse.Namespace, out: str) -> None:
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        result = _measure(rank, world, args.classes, args.dim, args.batch)
        Path(out, f"{rank}.json").write_text(json.dumps(result))
    finally:
        dist.destroy_process_group()


def run() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--classes", type=int, default=300_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--batch", type=int, default=128, help="global batch")
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))  # runnable from a checkout
    import torch.multiprocessing as mp

    from bench.train.dist import free_port

    for world in args.ranks:
        if world == 1:
            results = [_measure(0, 1, args.classes, args.dim, args.batch)]
        else:
            with tempfile.TemporaryDirectory() as out:
                mp.spawn(_worker, args=(world, free_port(), args, out), nprocs=world)
                results = [json.loads(Path(out, f"{r}.json").read_text()) for r in range(world)]
        print(f"{args.classes:,} x {args.dim} on {world} rank(s), global batch {args.batch}:")
        for result in results:
            print(
                f"  rank {result['rank']}: {result['centres']:,} centres = "
                f"{result['centres_mib']:.1f} MiB; centres + gradient + momentum "
                f"{result['head_tensors_mib']:.1f} MiB; logits {result['logits_mib']:.1f} MiB; "
                f"peak RSS +{result['peak_rss_above_start_mib']:.0f} MiB; "
                f"step {result['step_s']:.2f} s"
            )
    return 0


if __name__ == "__main__":
    sys.exit(run())
