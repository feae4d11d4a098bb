"""`bench diagnose DATASET --model PATH`: diversity, separability and identity-leakage diagnostics."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.commands.common import (
    add_batch_size,
    add_catalog,
    add_data_root,
    add_device,
    add_model_zoo,
    add_trust_model,
    add_workers,
    non_negative_int,
)
from bench.core import paths
from bench.core.errors import DatasetError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", help="registered training set name, or a path to one")
    parser.add_argument(
        "--model", required=True, help="face embedder: checkpoint (.pt), ONNX or TorchScript file"
    )
    add_trust_model(parser)
    add_model_zoo(parser)
    add_data_root(parser)
    parser.add_argument(
        "--per-identity",
        type=non_negative_int,
        default=20,
        help="images sampled per identity (0 = all; default %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default %(default)s)")
    parser.add_argument(
        "--targets",
        help="comma-separated evaluation sets for the leakage audit, or 'none' "
        "(default: the training set's eval_targets in the registry)",
    )
    parser.add_argument(
        "--against",
        action="append",
        default=[],
        help="another training set (name or path) whose identities may reappear "
        "in DATASET, e.g. its generator's source; repeatable",
    )
    parser.add_argument("--out", default="diagnostics", help="output folder (default %(default)s)")
    add_batch_size(parser, default=256)
    add_device(parser)
    add_workers(parser)
    add_catalog(parser)
    _thresholds(parser)


def _thresholds(parser: argparse.ArgumentParser) -> None:
    """Options that set the thresholds and the search precision."""
    parser.add_argument(
        "--leak-quantile",
        type=float,
        default=0.99,
        help="quantile of the null (training images' similarity to their nearest OTHER "
        "identity centre) used as the leak threshold: a clean evaluation set flags about "
        "1 - q of its images (default %(default)s)",
    )
    parser.add_argument(
        "--collision-threshold",
        type=float,
        help="centre cosine above which two identities collide (default: "
        "calibrated on split-half same-identity centres)",
    )
    parser.add_argument(
        "--near-duplicate-threshold",
        type=float,
        default=0.95,
        help="same-identity image cosine above which images are near duplicates",
    )
    parser.add_argument(
        "--search-dtype",
        default="float32",
        choices=["float32", "float16"],
        help="matmul precision of the nearest-centre search (float16 on GPU)",
    )


def resolve_dataset(name_or_path: str, root: Path, catalog) -> tuple[str, object]:
    """(name, opened records) of a registered set (prepared, else raw) or of a path."""
    from bench.formats import open_dataset

    path = Path(name_or_path)
    if path.exists():
        return path.name, open_dataset(path)
    entry = catalog.training_set(name_or_path)  # CatalogError with close matches
    for candidate in (paths.prepared_dir(root, entry.name), paths.raw_dir(root, entry.name)):
        if candidate.exists():
            return entry.name, open_dataset(candidate)
    raise DatasetError(
        f"training set {entry.name!r}: neither {paths.prepared_dir(root, entry.name)} nor "
        f"{paths.raw_dir(root, entry.name)} exists. How to get it: {entry.obtain}"
    )


def _targets(text: str | None, name: str, catalog) -> list[str]:
    if text is None:
        return list(catalog.training_set(name).eval_targets) if name in catalog.training else []
    if text.strip().lower() == "none":
        return []
    return [target.strip() for target in text.split(",") if target.strip()]


def main(args: argparse.Namespace) -> int:
    from bench.catalog import load_catalog
    from bench.diagnostics.results import headline
    from bench.diagnostics.run import Options, diagnose, eval_sets_for
    from bench.eval.embed import default_device, load_model

    if not 0.0 < args.leak_quantile < 1.0:
        raise DatasetError(f"--leak-quantile must lie in (0, 1), got {args.leak_quantile}")
    catalog = load_catalog(args.catalog)
    root = paths.data_root(args.data_root)
    name, records = resolve_dataset(args.dataset, root, catalog)
    against = dict(resolve_dataset(other, root, catalog) for other in args.against)
    eval_sets = eval_sets_for(_targets(args.targets, name, catalog), root, catalog)
    device = default_device(args.device)
    embedder = load_model(
        args.model,
        device=device,
        trust=args.trust_model,
        backbone=args.backbone,
        input_colour=args.input_colour,
    )
    options = Options(
        per_identity=args.per_identity or None,
        seed=args.seed,
        batch_size=args.batch_size,
        near_duplicate_threshold=args.near_duplicate_threshold,
        collision_threshold=args.collision_threshold,
        leak_quantile=args.leak_quantile,
        device=device,
        search_dtype=args.search_dtype,
        workers=args.workers,
    )
    result = diagnose(
        name,
        records,
        lambda images: embedder(images, args.batch_size),
        Path(args.out),
        eval_sets,
        against,
        options,
        embedder.info.to_dict(),
    )
    width = max(len(key) for key, _ in headline(result))
    for key, value in headline(result):
        print(f"{key.ljust(width)}  {value}")
    print(f"diagnostics: {Path(args.out) / (name + '.json')}")
    return 0
