"""What a model file must satisfy before and while it is evaluated: model files are untrusted input.

- TorchScript archives hold code that runs on load and in `forward` with every torch operator at
  hand (`torch.from_file(path, shared=True, ...)` writes files, for one), so they are loaded only
  when the caller says it trusts the file (`--trust-model`, `load_model(..., trust=True)`).
- ONNX files run in onnxruntime, which has no file-writing operators; their external-data files
  must lie inside the model's folder (a location such as `../../home/me/.ssh/id_rsa` is refused).
- Every model must take one float32 (N, 3, 112, 112) input and give one (N, D) float output;
  anything else is an EvalError naming the file and what was found, never a traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.core.errors import CatalogError, ConfigError, EvalError, FormatError

INPUT_CHW = (3, 112, 112)
TRUST_FLAG = "--trust-model"


def refuse_untrusted_torchscript(path: Path) -> None:
    """EvalError: a TorchScript file is loaded only when the caller trusts it."""
    raise EvalError(
        f"{path} is a TorchScript archive: loading and running it executes the code stored in "
        "it, with every torch operator available (e.g. torch.from_file can write files), so it "
        f"is not loaded by default. If you trust this file, pass {TRUST_FLAG} (bench eval, "
        "diagnose, ijb) or load_model(..., trust=True); otherwise evaluate a training "
        "checkpoint (.pt, weights only) or an ONNX export instead"
    )


def check_onnx_file(path: Path) -> None:
    """FormatError unless `path` parses as ONNX with every external-data file inside its folder."""
    import onnx
    from google.protobuf.message import DecodeError
    from onnx.external_data_helper import ExternalDataInfo, uses_external_data

    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError, RuntimeError, OSError) as error:
        raise FormatError(
            f"{path}: not a readable ONNX model ({type(error).__name__}: {error}); "
            "re-export it (bench export-onnx)"
        ) from error
    folder = path.parent.resolve()
    for tensor in _tensors(model.graph):
        if not uses_external_data(tensor):
            continue
        location = ExternalDataInfo(tensor).location
        target = (folder / location).resolve()
        if Path(location).is_absolute() or not target.is_relative_to(folder):
            raise FormatError(
                f"{path}: tensor {tensor.name!r} keeps its data in {location!r}, outside the "
                f"model's folder {folder}; external data must sit beside the model file "
                "(re-export it, or move the data next to the .onnx file)"
            )


def _tensors(graph: Any) -> Iterator[Any]:
    """Every TensorProto of an ONNX graph: initializers and node attributes, subgraphs included."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            if attribute.HasField("g"):
                yield from _tensors(attribute.g)
            for subgraph in attribute.graphs:
                yield from _tensors(subgraph)


def onnx_runtime_errors() -> tuple[type[BaseException], ...]:
    """The exception types onnxruntime raises for a model it cannot load or run."""
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    names = ("Fail", "InvalidArgument", "InvalidGraph", "InvalidProtobuf", "NoModel")
    found = tuple(getattr(state, name) for name in names if hasattr(state, name))
    more = ("NoSuchFile", "NotImplemented", "RuntimeException", "EPFail", "NotFound")
    found += tuple(getattr(state, name) for name in more if hasattr(state, name))
    return (*found, RuntimeError, ValueError)


def check_onnx_signature(session: Any, path: Path) -> None:
    """EvalError unless the session takes one float (N,3,112,112) input and gives (N, D) first."""
    inputs = session.get_inputs()
    if len(inputs) != 1:
        names = ", ".join(f"{item.name} {item.shape}" for item in inputs)
        raise EvalError(
            f"{path}: the model takes {len(inputs)} inputs ({names}); facebench feeds exactly "
            "one float32 (N, 3, 112, 112) image batch: re-export it with a single input"
        )
    model_input = inputs[0]
    if model_input.type != "tensor(float)":
        raise EvalError(
            f"{path}: input {model_input.name!r} is {model_input.type}, expected tensor(float) "
            "(float32 images normalised to [-1, 1]): re-export it with a float32 input"
        )
    shape = list(model_input.shape)
    fixed = [dim if isinstance(dim, int) else None for dim in shape[1:]]
    if len(shape) != 4 or any(
        dim is not None and dim != want for dim, want in zip(fixed, INPUT_CHW, strict=True)
    ):
        raise EvalError(
            f"{path}: input {model_input.name!r} has shape {shape}, expected (N, 3, 112, 112) "
            "NCHW (channels first; NHWC exports and other sizes are not the benchmark's input)"
        )
    output_shape = session.get_outputs()[0].shape
    if isinstance(output_shape, list) and len(output_shape) not in (0, 2):
        raise EvalError(
            f"{path}: the first output has shape {output_shape}, expected (N, D) embeddings"
        )


def embedding_array(output: Any, count: int, where: str) -> np.ndarray:
    """A model's output for `count` images as float32 (count, D); EvalError when it is not that."""
    if isinstance(output, (tuple, list)) and output:  # some exported models return (emb, ...)
        output = output[0]
    if isinstance(output, torch.Tensor):
        output = output.detach().float().cpu().numpy()
    if not isinstance(output, np.ndarray):
        raise EvalError(
            f"{where}: the model returned a {type(output).__name__}, expected a (N, D) float "
            "tensor of embeddings"
        )
    if output.ndim != 2 or output.shape[0] != count or output.shape[1] == 0:
        raise EvalError(
            f"{where}: the model returned shape {tuple(output.shape)} for {count} images, "
            f"expected ({count}, D) embeddings"
        )
    if not np.issubdtype(output.dtype, np.floating):
        raise EvalError(f"{where}: the model returned {output.dtype} values, expected floats")
    if not np.isfinite(output).all():
        raise EvalError(f"{where}: the model returned NaN or infinite embeddings")
    return output.astype(np.float32, copy=False)


def checkpoint_backbone(checkpoint: dict, path: Path) -> torch.nn.Module:
    """The registry backbone a checkpoint names, built from its backbone_kwargs once they are
    checked against the backbone's declared ranges (FormatError naming the file and the key)."""
    from backbones import build_backbone

    name, kwargs = checkpoint["backbone"], checkpoint.get("backbone_kwargs") or {}
    if not isinstance(name, str):
        raise FormatError(f"{path}: 'backbone' must be a registry name, got {name!r}")
    if not isinstance(kwargs, dict) or not all(isinstance(key, str) for key in kwargs):
        raise FormatError(
            f"{path}: 'backbone_kwargs' must map argument names to values, got a {type(kwargs).__name__}"
        )
    if not isinstance(checkpoint["model"], dict):
        raise FormatError(f"{path}: 'model' must be a state dict of tensors")
    try:
        return build_backbone(name, **kwargs)
    except (CatalogError, ConfigError) as error:
        raise FormatError(f"{path}: the checkpoint's backbone cannot be built: {error}") from error
