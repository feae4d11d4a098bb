"""`bench export-onnx CKPT [--out F] [--backbone NAME]`: export a checkpoint or model-zoo weights
to ONNX and check it with onnxruntime."""

from __future__ import annotations

import argparse
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "checkpoint",
        help="training checkpoint (.pt) of this project, or model-zoo weights (arcface_torch "
        "backbone.pth, TFace backbone file, AdaFace .ckpt)",
    )
    parser.add_argument(
        "--backbone",
        help="architecture of model-zoo weights, e.g. ir50 (detected from the keys when left out)",
    )
    parser.add_argument("--out", help="ONNX file to write (default: the checkpoint with .onnx)")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default: %(default)s)")


def main(args: argparse.Namespace) -> int:
    from bench.eval.onnx_export import export_onnx

    checkpoint = Path(args.checkpoint)
    out = Path(args.out) if args.out else checkpoint.with_suffix(".onnx")
    report = export_onnx(checkpoint, out, opset=args.opset, backbone=args.backbone)
    print(report.to_text())
    return 0
