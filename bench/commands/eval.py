"""`bench eval --model PATH`: evaluate a model on verification sets and write a result JSON."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.catalog import STANDARD_TARGETS, Catalog, load_catalog
from bench.commands.common import (
    add_batch_size,
    add_catalog,
    add_data_root,
    add_device,
    add_model_zoo,
    add_results,
    add_trust_model,
)
from bench.core import io, paths
from bench.core.errors import EvalError
from bench.core.io import ensure_directory


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="checkpoint (.pt), ONNX or TorchScript file")
    parser.add_argument(
        "--targets",
        default=",".join(STANDARD_TARGETS),
        help="comma-separated evaluation sets (default: %(default)s)",
    )
    add_trust_model(parser)
    add_model_zoo(parser)
    add_data_root(parser)
    add_batch_size(parser)
    add_device(parser)
    add_results(parser)
    parser.add_argument(
        "--out", help="result JSON file (default: <results>/eval/<model file name>.json)"
    )
    add_catalog(parser)


def main(args: argparse.Namespace) -> int:
    from bench.eval.embed import default_device, load_model
    from bench.eval.ijb.run import evaluate_packages, read_packages, split_targets
    from bench.eval.results import write_result
    from bench.eval.run import build_result, check_targets, evaluate

    catalog = load_catalog(args.catalog)
    root = paths.data_root(args.data_root)
    names, ijb_names = split_targets(_split(args.targets), catalog)  # IJB: bench.eval.ijb
    if not names:
        raise EvalError("bench eval needs at least one .bin target; for IJB alone use bench ijb")
    packages = read_packages(ijb_names, paths.eval_dir(root), catalog)
    targets = check_targets(names, root, catalog)  # before loading the model
    out = (
        Path(args.out)
        if args.out
        else paths.results_root(args.results) / "eval" / f"{Path(args.model).name}.json"
    )
    ensure_directory(out.parent)  # an unwritable --out fails before the evaluation, not after
    embedder = load_model(
        args.model,
        device=default_device(args.device),
        trust=args.trust_model,
        backbone=args.backbone,
        input_colour=args.input_colour,
    )
    entries = evaluate(embedder, targets, root, catalog, args.batch_size)
    cache = root / "cache" / "ijb"
    ijb = evaluate_packages(embedder, packages, cache, args.batch_size, io.default_workers())
    result = build_result(embedder, entries, ijb=ijb)
    write_result(out, result)
    print(format_table(result, catalog))
    for warning in result["warnings"]:
        print(f"WARNING: {warning}")
    print(f"result: {out}")
    return 0


def _split(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise EvalError("--targets is empty; give e.g. --targets lfw,cfp_fp")
    return names


def format_table(result: dict, catalog: Catalog) -> str:
    """Accuracy ± std per set in percent (higher is better) and the mean."""
    rows = [("set", "pairs", "acc % (↑)", "VAL@FAR=1e-3 %", "XNorm")]
    for name, entry in result["targets"].items():
        val = "n/a" if entry["val"] is None else f"{100 * entry['val']:.2f}"
        rows.append(
            (
                catalog.eval_set(name).display_name,
                str(entry["pairs"]),
                f"{100 * entry['acc']:.2f} ± {100 * entry['acc_std']:.2f}",
                val,
                f"{entry['xnorm']:.2f}",
            )
        )
    rows.append(("mean", "", f"{100 * result['mean_acc']:.2f}", "", ""))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
