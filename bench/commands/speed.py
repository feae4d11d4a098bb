"""`bench speed`: measure training step, data pipeline, end-to-end training and eval time."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from bench.catalog import STANDARD_TARGETS
from bench.commands.common import add_device, add_workers, positive_int
from bench.core.paths import runs_root

log = logging.getLogger(__name__)


def configure(parser: argparse.ArgumentParser) -> None:
    """Flags; defaults are the full GPU settings, `--device cpu` wants tiny ones (see docs)."""
    add = parser.add_argument
    add_device(parser)
    add("--backbone", default="ir50")
    add("--width", type=int, default=64, help="base channel count (64 = the published models)")
    add("--embedding-size", type=int, default=512)
    add("--num-classes", type=int, default=10_000)
    add("--batch-size", type=positive_int, default=256, help="per-GPU batch")
    add("--steps", type=positive_int, default=50, help="timed steps per training measurement")
    add("--warmup", type=int, default=10, help="untimed steps first (compilation, cudnn tuning)")
    add(
        "--amp",
        choices=("auto", "none", "bf16", "fp16"),
        default="auto",
        help="autocast dtype (auto: bf16 on cuda, none on cpu)",
    )
    add(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="NHWC activations (default: on for cuda)",
    )
    add("--compile", action="store_true", help="torch.compile the backbone")
    add(
        "--compile-mode",
        default="default",
        choices=("default", "reduce-overhead", "max-autotune"),
        help="reduce-overhead = CUDA graphs",
    )
    add(
        "--fused-sgd",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="fused SGD kernel (default: on for cuda; else foreach)",
    )
    add("--sample-rate", type=float, default=1.0, help="Partial FC class-centre sampling rate")
    add_workers(parser)
    add("--decoder", choices=("auto", "gpu", "simplejpeg", "pil"), default="auto")
    add("--records", type=positive_int, default=8192, help="images in the synthetic RecordIO")
    add("--eval-sets", default=",".join(STANDARD_TARGETS), help="comma-separated eval sets")
    add(
        "--eval-pairs",
        type=int,
        default=None,
        help="pairs per eval set (default: each set's real count; real .bin used if present)",
    )
    add("--eval-batch", type=int, default=512)
    add("--parity-steps", type=int, default=20, help="steps of the plain-vs-optimised loss check")
    add("--seed", type=int, default=0)
    add("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    add("--data-root", default=None, help="where eval/<set>.bin are looked for")
    add("--out", default=None, help="JSON path (default: <runs root>/speed/speed-<device>.json)")


def settings_from_args(args: argparse.Namespace):
    """Resolve device-dependent defaults into SpeedSettings."""
    from bench.eval.embed import default_device
    from bench.speed.settings import SpeedSettings

    device = default_device(args.device)
    on_cuda = device.startswith("cuda")
    amp = args.amp if args.amp != "auto" else ("bf16" if on_cuda else "none")
    return SpeedSettings(
        device=device,
        backbone=args.backbone,
        width=args.width,
        embedding_size=args.embedding_size,
        num_classes=args.num_classes,
        batch_size=args.batch_size,
        steps=args.steps,
        warmup=args.warmup,
        amp=amp,
        channels_last=on_cuda if args.channels_last is None else args.channels_last,
        compile=args.compile,
        compile_mode=args.compile_mode,
        fused_sgd=on_cuda if args.fused_sgd is None else args.fused_sgd,
        sample_rate=args.sample_rate,
        workers=args.workers,
        decoder=args.decoder,
        records=args.records,
        eval_sets=tuple(name for name in args.eval_sets.split(",") if name),
        eval_pairs=args.eval_pairs,
        eval_batch=args.eval_batch,
        parity_steps=args.parity_steps,
        threads=args.threads,
        data_root=args.data_root,
        seed=args.seed,
    )


def main(args: argparse.Namespace) -> int:
    """Run the benchmark, print the table, write the JSON."""
    from bench.speed.run import run_speed

    settings = settings_from_args(args)
    report = run_speed(settings)
    out = Path(args.out) if args.out else runs_root() / "speed" / f"speed-{settings.device}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(out.name + ".tmp")
    temporary.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    temporary.replace(out)  # atomic: a reader never sees half a report
    print(format_table(report))
    print(f"JSON: {out}")
    return 0 if report["parity"]["ok"] else 1


def format_table(report: dict) -> str:
    """A plain-text table of the headline figures."""
    step, data, e2e = report["train_step"], report["data_pipeline"], report["end_to_end"]
    rows = [
        ("train step alone", f"{step['images_per_s']:,.1f} img/s ({step['ms_per_step']:.1f} ms)"),
        ("records read", f"{data['records_per_s']:,.0f} rec/s"),
        ("decode per worker", f"{data['decoded_images_per_s_per_worker']:,.0f} img/s"),
        (f"loader ({data['workers']} workers)", f"{data['loader_images_per_s']:,.1f} img/s"),
        ("end-to-end training", f"{e2e['images_per_s']:,.1f} img/s"),
        ("peak memory", f"{e2e['peak_memory']['mb']:,.0f} MB ({e2e['peak_memory']['kind']})"),
    ]
    if data["gpu_decode_images_per_s"] is not None:
        rows.insert(3, ("GPU decode", f"{data['gpu_decode_images_per_s']:,.0f} img/s"))
    for name, entry in report["evaluation"]["sets"].items():
        rows.append((f"eval {name} ({entry['pairs']} pairs)", f"{entry['seconds']:.2f} s"))
    rows.append(("eval total", f"{report['evaluation']['total_s']:.2f} s"))
    parity = report["parity"]
    verdict = "ok" if parity["ok"] else "MISMATCH"
    rows.append(("loss parity", f"{verdict} (max gap {parity['max_relative_gap']:.2e})"))
    width = max(len(name) for name, _ in rows)
    header = (
        f"bench speed on {report['environment']['device_name']} ({report['settings']['device']})"
    )
    return "\n".join([header, *(f"  {name:<{width}}  {value}" for name, value in rows)])
