"""Model loading (training checkpoint | ONNX | TorchScript) and batched flip-sum embedding.

Preprocessing is insightface's: uint8 RGB NHWC -> NCHW float32 ((x / 255) - 0.5) / 0.5, and the
flipped view is the horizontal mirror. It runs in torch on the model's device, one batch at a
time, so on a GPU the CPU only ships uint8 bytes. `embed_pairs` then does what insightface's
`verification.test` does with the network outputs: float64 sum of the plain and flipped outputs,
sklearn-style L2 normalisation, and XNorm over the per-view outputs (see `embed_pairs`)."""

from __future__ import annotations

import logging
import pickle
import zipfile
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.core import io
from bench.core.errors import EvalError, FormatError
from bench.eval.model_checks import (
    check_onnx_file,
    check_onnx_signature,
    checkpoint_backbone,
    embedding_array,
    onnx_runtime_errors,
    refuse_untrusted_torchscript,
)
from bench.eval.model_zoo import few, is_facebench_checkpoint, zoo_model
from bench.eval.preprocess import normalise

log = logging.getLogger(__name__)
DEFAULT_BATCH_SIZE = 512
IMAGE_SHAPE = (112, 112, 3)


def image_tensor(images: np.ndarray) -> torch.Tensor:
    """A uint8 (N,H,W,3) batch as a CPU tensor (copied: cached sets are read-only memory maps)."""
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise FormatError(f"expected uint8 (N,H,W,3) RGB images, got {images.dtype} {images.shape}")
    return torch.from_numpy(np.array(images, copy=True))


@dataclass(frozen=True)
class ModelInfo:
    """What the result JSON records about the evaluated model."""

    path: str
    sha256: str
    format: str  # "checkpoint" | "state_dict" (model-zoo weights) | "onnx" | "torchscript"
    backbone: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "sha256": self.sha256,
            "backbone": self.backbone,
            "format": self.format,
        }


class Embedder(ABC):
    """Maps uint8 (N,112,112,3) RGB images to un-normalised float32 embeddings."""

    def __init__(self, info: ModelInfo, device: str = "cpu") -> None:
        self.info = info
        self.device = device

    @abstractmethod
    def views(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """float32 outputs for one batch: (model(images), model(mirrored images))."""

    def __call__(self, images: np.ndarray, batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        """Flip-summed float32 (N, D) embeddings, un-normalised."""
        chunks = []
        for start in range(0, len(images), batch_size):
            plain, flipped = self.views(images[start : start + batch_size])
            chunks.append(plain + flipped)
        return np.concatenate(chunks)


class TorchEmbedder(Embedder):
    """An nn.Module (or TorchScript module) evaluated in inference mode on `device`."""

    def __init__(
        self,
        module: torch.nn.Module,
        info: ModelInfo,
        device: str = "cpu",
        input_colour: str = "rgb",
    ) -> None:
        super().__init__(info, device)
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise EvalError(f"--device {device} asked for, but torch sees no CUDA device; use cpu")
        if input_colour not in ("rgb", "bgr"):
            raise EvalError(f"input colour must be rgb or bgr, got {input_colour!r}")
        self.module = module.to(device).eval()
        self.input_colour = input_colour  # the channel order the model was trained on

    def views(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        batch = image_tensor(images).to(self.device, non_blocking=True)
        if self.input_colour == "bgr":  # the evaluation sets are RGB; swap before normalising
            batch = batch.flip(-1)
        with torch.inference_mode():
            x = normalise(batch)
            try:
                plain = self.module(x)
                flipped = self.module(torch.flip(x, dims=[3]))
            except RuntimeError as error:
                raise EvalError(
                    f"{self.info.path if self.info else 'model'}: forward failed on a "
                    f"{tuple(x.shape)} float32 batch ({str(error).strip()[:300]})"
                ) from error
        where = self.info.path if self.info else "model"
        return embedding_array(plain, len(images), where), embedding_array(
            flipped, len(images), where
        )


class OnnxEmbedder(Embedder):
    """An ONNX model run by onnxruntime (CUDA provider when device is cuda and it is present)."""

    def __init__(self, path: Path, info: ModelInfo, device: str = "cpu") -> None:
        super().__init__(info, device)
        import onnxruntime

        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda"):
            available = onnxruntime.get_available_providers()
            if "CUDAExecutionProvider" not in available:
                raise EvalError(
                    f"{path}: --device {device} asked for, but onnxruntime has no CUDA provider "
                    f"(available: {', '.join(available)}); install onnxruntime-gpu or use cpu"
                )
            providers.insert(0, "CUDAExecutionProvider")
        check_onnx_file(path)
        try:
            self.session = onnxruntime.InferenceSession(str(path), providers=providers)
        except onnx_runtime_errors() as error:
            raise EvalError(
                f"{path}: onnxruntime cannot load the model ({str(error).strip()[:300]}); "
                "re-export it with standard ONNX operators only"
            ) from error
        check_onnx_signature(self.session, path)
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        # A model exported with a fixed batch size needs its batches padded to that size.
        batch_dim = model_input.shape[0]
        self.fixed_batch = batch_dim if isinstance(batch_dim, int) else None

    def _run(self, x: np.ndarray) -> np.ndarray:
        try:
            output = self._run_batches(x)
        except onnx_runtime_errors() as error:
            raise EvalError(
                f"{self.info.path}: onnxruntime failed on a ({', '.join(map(str, x.shape))}) "
                f"float32 batch ({str(error).strip()[:300]})"
            ) from error
        return embedding_array(output, x.shape[0], self.info.path)

    def _run_batches(self, x: np.ndarray) -> np.ndarray:
        count = x.shape[0]
        if self.fixed_batch is None:
            return self.session.run(None, {self.input_name: x})[0]
        outputs = []
        for start in range(0, count, self.fixed_batch):
            chunk = x[start : start + self.fixed_batch]
            padding = self.fixed_batch - chunk.shape[0]
            if padding:
                chunk = np.concatenate([chunk, np.zeros((padding, *chunk.shape[1:]), chunk.dtype)])
            outputs.append(self.session.run(None, {self.input_name: chunk})[0])
        return np.concatenate(outputs)[:count]

    def views(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.inference_mode():
            x = normalise(image_tensor(images))
            flipped = torch.flip(x, dims=[3]).contiguous().numpy()
            plain = x.contiguous().numpy()
        return self._run(plain).astype(np.float32), self._run(flipped).astype(np.float32)


def embed_pairs(
    embedder: Embedder, images: np.ndarray, batch_size: int = DEFAULT_BATCH_SIZE
) -> tuple[np.ndarray, float]:
    """L2-normalised float64 flip-sum embeddings (N, D) and XNorm, as insightface computes them.

    XNorm replicates insightface verification.test exactly: the mean L2 norm over BOTH per-view
    outputs (model(x) and model(flip(x)), 2N vectors), not over the flip-summed embeddings."""
    if len(images) == 0:
        raise FormatError("no images to embed")
    plains, flips = [], []
    for start in range(0, len(images), batch_size):
        plain, flipped = embedder.views(images[start : start + batch_size])
        plains.append(plain)
        flips.append(flipped)
    # insightface stores the float32 outputs in float64 arrays before summing and normalising.
    plain = np.concatenate(plains).astype(np.float64)
    flipped = np.concatenate(flips).astype(np.float64)
    xnorm = float(np.mean(np.linalg.norm(np.concatenate([plain, flipped]), axis=1)))
    return l2_normalize(plain + flipped), xnorm


def l2_normalize(embeddings: np.ndarray) -> np.ndarray:
    """Row-wise L2 normalisation with sklearn.preprocessing.normalize's exact arithmetic."""
    norms = np.sqrt(np.einsum("ij,ij->i", embeddings, embeddings))
    # sklearn leaves (near-)zero rows unscaled instead of dividing by ~0.
    norms[norms < 10 * np.finfo(norms.dtype).eps] = 1.0
    return embeddings / norms[:, np.newaxis]


def default_device(requested: str | None = "auto") -> str:
    """The device to evaluate on: `requested`, or for auto/None cuda when available, else cpu."""
    if requested in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def load_model(
    path: str | Path,
    device: str = "cpu",
    trust: bool = False,
    backbone: str | None = None,
    input_colour: str | None = None,
) -> Embedder:
    """An Embedder for a training checkpoint (.pt), model-zoo weights (bench.eval.model_zoo:
    arcface_torch / TFace state dicts, AdaFace checkpoints), an ONNX or a TorchScript file.

    TorchScript runs the code inside the file, so it is loaded only with `trust=True`.
    `backbone` checks the zoo weights' architecture; `input_colour` overrides the recorded one."""
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"model file {path} not found")
    if path.suffix.lower() == ".onnx":
        return OnnxEmbedder(path, ModelInfo(str(path), io.sha256_file(path), "onnx"), device)
    if _is_torchscript(path):
        if not trust:
            refuse_untrusted_torchscript(path)
        try:
            module = torch.jit.load(str(path), map_location="cpu")
        except RuntimeError as error:
            raise FormatError(
                f"{path}: not a loadable TorchScript archive ({str(error).strip()[:300]})"
            ) from error
        return TorchEmbedder(
            module, ModelInfo(str(path), io.sha256_file(path), "torchscript"), device
        )
    weights = read_weights(path)
    if is_facebench_checkpoint(weights):
        embedder = checkpoint_embedder(weights, path, device)
        embedder.input_colour = input_colour or embedder.input_colour
        return embedder
    zoo = zoo_model(weights, path, backbone, input_colour)
    info = ModelInfo(str(path), io.sha256_file(path), "state_dict", zoo.backbone)
    return TorchEmbedder(zoo.module, info, device, zoo.input_colour)


def _is_torchscript(path: Path) -> bool:
    """TorchScript archives are zip files holding code/ and constants.pkl."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("/constants.pkl") for name in archive.namelist())


def read_checkpoint(path: Path) -> dict:
    """torch.load a facebench training checkpoint (tensors and plain containers only)."""
    checkpoint = read_weights(path)
    if not is_facebench_checkpoint(checkpoint):
        keys = few(checkpoint) if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise FormatError(
            f"{path}: not a facebench checkpoint (needs keys 'backbone', 'backbone_kwargs', "
            f"'model'; found {keys}); model-zoo weights load with bench eval/export-onnx/diagnose "
            "--model (optionally --backbone NAME)"
        )
    return checkpoint


def read_weights(path: Path) -> Any:
    """torch.load any weights file (tensors and plain containers only), FormatError if unreadable."""
    try:
        return _torch_load(path)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as error:
        raise FormatError(f"{path}: not a readable torch checkpoint ({error})") from error


def _torch_load(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if not zipfile.is_zipfile(path):  # not a torch.save archive at all
            raise FormatError(f"{path}: not a readable torch checkpoint ({error})") from error
        # Full unpickling would run code from the file: model files are untrusted input, like
        # .bin files. Our checkpoints hold tensors and plain containers only.
        raise FormatError(
            f"{path}: holds objects beyond tensors and plain containers, which could run code "
            f"when unpickled ({error}); re-save it as a state dict, or export it to ONNX"
        ) from error


def load_checkpoint_backbone(
    path: Path, backbone: str | None = None
) -> tuple[torch.nn.Module, str]:
    """The backbone of a training checkpoint or of model-zoo weights, loaded, and its name."""
    weights = read_weights(path)
    if is_facebench_checkpoint(weights):
        return backbone_from_checkpoint(weights, path)
    zoo = zoo_model(weights, path, backbone)
    return zoo.module, zoo.backbone


def backbone_from_checkpoint(checkpoint: dict, path: Path) -> tuple[torch.nn.Module, str]:
    """Build the checkpoint's backbone from the registry and load its weights (strict)."""
    name = checkpoint["backbone"]
    module = checkpoint_backbone(checkpoint, path)
    state = checkpoint["model"]
    # A state dict saved from a DDP-wrapped model carries a "module." prefix on every key.
    if state and all(key.startswith("module.") for key in state):
        state = {key[len("module.") :]: value for key, value in state.items()}
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise FormatError(
            f"{path}: weights do not fit backbone {name!r} with kwargs "
            f"{checkpoint.get('backbone_kwargs')}: {str(error).splitlines()[0]}"
        ) from error
    return module.eval(), name


def checkpoint_embedder(checkpoint: dict, path: Path, device: str = "cpu") -> TorchEmbedder:
    """An Embedder for an already-read training checkpoint (read once, used for run info too)."""
    module, backbone = backbone_from_checkpoint(checkpoint, path)
    info = ModelInfo(str(path), io.sha256_file(path), "checkpoint", backbone)
    return TorchEmbedder(module, info, device, checkpoint_colour(checkpoint))


def checkpoint_colour(checkpoint: dict) -> str:
    """The channel order a training checkpoint's model was trained on (rgb before it was
    recorded): the top-level `input_colour`, else the recipe's, else rgb."""
    config = checkpoint.get("config") or {}
    return checkpoint.get("input_colour") or config.get("input_colour") or "rgb"
