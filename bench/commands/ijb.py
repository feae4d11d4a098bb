"""`bench ijb --root DIR --target ijbc (--model M | --features F)`: IJB-B/IJB-C 1:1 and 1:N."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.commands.common import (
    add_batch_size,
    add_data_root,
    add_device,
    add_results,
    add_trust_model,
    add_workers,
)
from bench.core import paths


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root",
        help="folder holding IJBB/ and/or IJBC/ (insightface's package; default <data-root>/eval)",
    )
    parser.add_argument("--target", required=True, choices=("ijbb", "ijbc"), help="IJB variant")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="checkpoint (.pt), ONNX or TorchScript file to embed with")
    source.add_argument(
        "--features",
        help="precomputed per-image features, .npy (N, 2D): embedding then mirrored embedding, "
        "row i = line i of the meta files (insightface eval_ijbc.py's layout)",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="use the procedural mini IJB (bench.demo.ijb) in --root (default "
        "<data-root>/eval/demo_ijb), writing it first when absent",
    )
    parser.add_argument(
        "--no-flip", action="store_true", help="score the plain embedding only (no flip-sum)"
    )
    parser.add_argument(
        "--image-norm",
        action="store_true",
        help="L2-normalise each image feature before pooling (reference default: off)",
    )
    parser.add_argument(
        "--no-detector-score",
        action="store_true",
        help="do not weight image features by their detector score (reference default: weight)",
    )
    parser.add_argument(
        "--save-features", help="also write the per-image features (.npy, eval_ijbc.py layout)"
    )
    parser.add_argument(
        "--cache", help="feature cache folder (default <data-root>/cache/ijb); keyed by hashes"
    )
    parser.add_argument("--out", help="result JSON (default <results>/ijb/<target>-<source>.json)")
    add_data_root(parser)
    add_results(parser)
    add_device(parser)
    add_batch_size(parser, default=256)
    add_workers(parser)
    add_trust_model(parser)


def main(args: argparse.Namespace) -> int:
    from bench.core import io
    from bench.eval.ijb.features import load_features, save_features
    from bench.eval.ijb.package import read_package
    from bench.eval.ijb.run import build_result, score
    from bench.eval.ijb.templates import ScoringFlags
    from bench.eval.results import provenance

    root = Path(args.root) if args.root else paths.eval_dir(paths.data_root(args.data_root))
    if args.demo:
        root = _demo_root(args, root)
    package = read_package(root, args.target)
    flags = ScoringFlags(
        flip=not args.no_flip,
        image_norm=args.image_norm,
        detector_score=not args.no_detector_score,
    )
    if args.features:
        features = load_features(args.features, len(package.image_names))
        source = {"from": "file", "path": args.features, "sha256": io.sha256_file(args.features)}
        model = None
    else:
        features, source, model = _embed(package, args)
    if args.save_features:
        save_features(Path(args.save_features), features)
    scored = score(package, features, flags)
    result = build_result(package, flags, scored, source, model, provenance(args.device))
    stem = Path(args.model or args.features).stem
    out = Path(args.out or paths.results_root(args.results) / "ijb" / f"{args.target}-{stem}.json")
    io.atomic_write_text(out, json.dumps(result, indent=1) + "\n")
    print(format_summary(result))
    print(f"result: {out}")
    return 0


def _demo_root(args: argparse.Namespace, root: Path) -> Path:
    from bench.demo.ijb import VARIANTS, write_mini_ijb

    root = root if args.root else root / "demo_ijb"
    if not (root / VARIANTS[args.target][0]).is_dir():
        write_mini_ijb(root, args.target)
    return root


def _embed(package, args: argparse.Namespace) -> tuple:
    from bench.eval.embed import default_device, load_model
    from bench.eval.ijb.features import cached_features

    embedder = load_model(args.model, device=default_device(args.device), trust=args.trust_model)
    cache = Path(args.cache) if args.cache else paths.data_root(args.data_root) / "cache" / "ijb"
    features, path = cached_features(package, embedder, cache, args.batch_size, args.workers)
    return features, {"from": "model", "cache": str(path)}, embedder.info.to_dict()


def format_summary(result: dict) -> str:
    """Two short tables: TAR@FAR (1:1) and rank-k / TPIR@FPIR per gallery (1:N), in percent."""
    verification = result["verification"]
    lines = [f"{result['target']} ({result['flags']['name']}): 1:1 TAR@FAR, %"]
    lines.append("  " + "  ".join(f"{far:>8}" for far in verification["tar_at_far"]) + "       AUC")
    values = [100 * tar for tar in verification["tar_at_far"].values()]
    lines.append(
        "  " + "  ".join(f"{v:8.2f}" for v in values) + f"  {100 * verification['auc']:8.2f}"
    )
    identification = result["identification"]
    fpirs = list(identification["mean"]["tpir_at_fpir"])
    lines.append("1:N, %    top1    top5   top10  " + "  ".join(f"TPIR@{f:<7}" for f in fpirs))
    for name, metrics in {**identification["galleries"], "mean": identification["mean"]}.items():
        tpirs = "  ".join(f"{100 * t:12.2f}" for t in metrics["tpir_at_fpir"].values())
        lines.append(
            f"  {name:<5} {100 * metrics['top1']:7.2f} {100 * metrics['top5']:7.2f} "
            f"{100 * metrics['top10']:7.2f}  {tpirs}"
        )
    return "\n".join(lines)
