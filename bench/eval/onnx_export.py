"""Export a training checkpoint's backbone to ONNX and prove onnxruntime computes the same thing.

The graph takes "input" (batch, 3, 112, 112) float32 in [-1, 1] (already normalised, as the
backbone does) with a dynamic batch axis and returns "embedding" (batch, D). After export the file
is checked with onnx.checker and run with onnxruntime on random inputs at two batch sizes; the
export fails unless, for every output row, max |ort - torch| <= ABS_TOLERANCE * max(1, max |torch|)
and the cosine similarity is >= 1 - COSINE_TOLERANCE (float32 reassociation differences are ~1e-6
relative; a wrong graph is off by orders of magnitude more)."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bench.core.errors import EvalError
from bench.eval.embed import load_checkpoint_backbone

log = logging.getLogger(__name__)
ABS_TOLERANCE = 1e-4
COSINE_TOLERANCE = 1e-5
OPSET = 17
CHECK_BATCH_SIZES = (1, 3)


@dataclass(frozen=True)
class ExportReport:
    """Where the ONNX file went and how closely onnxruntime matched torch."""

    path: Path
    backbone: str
    exporter: str
    max_abs_diff: float
    min_cosine: float

    def to_text(self) -> str:
        return (
            f"{self.path}: {self.backbone} exported ({self.exporter} exporter); onnxruntime vs "
            f"torch: max |diff| {self.max_abs_diff:.2e}, min cosine {self.min_cosine:.8f}"
        )


def export_onnx(
    checkpoint: Path, out: Path, opset: int = OPSET, seed: int = 0, backbone: str | None = None
) -> ExportReport:
    """Export `checkpoint`'s backbone (or model-zoo weights' of architecture `backbone`, detected
    when None) to `out` (.onnx), check it, and compare it with torch."""
    module, backbone = load_checkpoint_backbone(Path(checkpoint), backbone)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    exporter = _export(module, out, opset)
    import onnx

    try:
        onnx.checker.check_model(str(out), full_check=True)
    except onnx.checker.ValidationError as error:
        raise EvalError(f"{out}: exported graph fails onnx.checker: {error}") from error
    max_abs_diff, min_cosine = compare_with_torch(module, out, seed)
    report = ExportReport(out, backbone, exporter, max_abs_diff, min_cosine)
    log.info("%s", report.to_text())
    return report


def _export(module: torch.nn.Module, out: Path, opset: int) -> str:
    """Run the TorchScript-based exporter, or the dynamo one where this torch lacks it."""
    try:
        export_torchscript(module, out, opset)
        return "torchscript"
    except (TypeError, RuntimeError, NotImplementedError) as error:
        log.info("TorchScript-based ONNX export unavailable (%s); using the dynamo exporter", error)
    export_dynamo(module, out, opset)
    return "dynamo"


def export_torchscript(module: torch.nn.Module, out: Path, opset: int = OPSET) -> None:
    """torch.onnx.export(dynamo=False) with a dynamic batch axis."""
    with warnings.catch_warnings():
        # torch >= 2.9 marks this exporter deprecated; it still gives a plain dynamic-batch graph.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            module,
            (torch.randn(2, 3, 112, 112),),
            str(out),
            opset_version=opset,
            dynamo=False,
            input_names=["input"],
            output_names=["embedding"],
            dynamic_axes={"input": {0: "batch"}, "embedding": {0: "batch"}},
        )


def export_dynamo(module: torch.nn.Module, out: Path, opset: int = OPSET) -> None:
    """torch.onnx.export(dynamo=True) (torch.export + onnxscript) with a dynamic batch axis."""
    program = torch.onnx.export(
        module,
        (torch.randn(2, 3, 112, 112),),
        dynamo=True,
        opset_version=opset,
        input_names=["input"],
        output_names=["embedding"],
        dynamic_shapes=({0: torch.export.Dim("batch", min=1)},),
    )
    program.save(str(out))


def compare_with_torch(module: torch.nn.Module, onnx_path: Path, seed: int = 0) -> tuple:
    """(max abs diff, min cosine) of onnxruntime vs torch on random inputs; EvalError if off."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(seed)
    worst_diff, worst_cosine = 0.0, 1.0
    for batch_size in CHECK_BATCH_SIZES:
        x = torch.rand(batch_size, 3, 112, 112, generator=generator) * 2 - 1
        with torch.inference_mode():
            expected = module.eval()(x).float().numpy().astype(np.float64)
        got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0].astype(np.float64)
        if got.shape != expected.shape:
            raise EvalError(
                f"{onnx_path}: onnxruntime output {got.shape} != torch {expected.shape}"
            )
        diff = float(np.abs(got - expected).max())
        cosine = float(
            np.min(
                np.sum(got * expected, 1)
                / (np.linalg.norm(got, axis=1) * np.linalg.norm(expected, axis=1) + 1e-12)
            )
        )
        scale = max(1.0, float(np.abs(expected).max()))
        if not (diff <= ABS_TOLERANCE * scale and cosine >= 1 - COSINE_TOLERANCE):
            raise EvalError(
                f"{onnx_path}: onnxruntime disagrees with torch at batch {batch_size}: max |diff| "
                f"{diff:.3e} (allowed {ABS_TOLERANCE * scale:.1e}), min cosine {cosine:.8f} "
                f"(allowed {1 - COSINE_TOLERANCE}); do not use this ONNX file"
            )
        worst_diff, worst_cosine = max(worst_diff, diff), min(worst_cosine, cosine)
    return worst_diff, worst_cosine
