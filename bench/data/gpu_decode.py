"""Batched JPEG decoding to uint8 NHWC tensors: on the GPU (nvJPEG) or on the CPU.

"gpu" uses `torchvision.io.decode_jpeg` on a list of JPEGs with device="cuda" (one nvJPEG batch),
so the CPU only ships encoded bytes; non-JPEG records (PNG sets) in a batch are decoded on the CPU
and uploaded. "simplejpeg" and "pil" decode on the CPU with `bench.formats.decode_image`.
torchvision is optional: asking for "gpu" without it (or without CUDA) is a ConfigError;
`select_decoder("auto", device)` picks the fastest one available.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import Sequence
from functools import lru_cache
from types import ModuleType

import numpy as np
import torch

from bench.core.errors import ConfigError
from bench.formats import decode_image

log = logging.getLogger(__name__)

DECODERS = ("auto", "gpu", "simplejpeg", "pil")
JPEG_SIGNATURE = b"\xff\xd8\xff"


@lru_cache(maxsize=1)
def torchvision_io() -> ModuleType | None:
    """torchvision.io when torchvision imports (it is optional), else None."""
    try:
        return importlib.import_module("torchvision.io")
    # A torchvision built for another torch fails at import with RuntimeError/OSError, not
    # ImportError: either way GPU decoding is unavailable, which callers report.
    except (ImportError, RuntimeError, OSError) as error:
        log.debug("torchvision.io unavailable (%s); GPU JPEG decoding disabled", error)
        return None


def _simplejpeg_available() -> bool:
    return importlib.util.find_spec("simplejpeg") is not None


def gpu_decode_problem(device: str) -> str | None:
    """Why GPU decoding cannot run on `device`, or None when it can."""
    if not str(device).startswith("cuda"):
        return f"device is {device!r}, not cuda"
    if not torch.cuda.is_available():
        return "torch sees no CUDA device"
    if torchvision_io() is None:
        return "torchvision is not importable (install the torchvision build matching your torch)"
    return None


def select_decoder(requested: str, device: str) -> str:
    """Resolve `requested` (auto|gpu|simplejpeg|pil) into the decoder that will run."""
    if requested not in DECODERS:
        raise ConfigError(
            f"--decoder {requested!r} is unknown; choose one of {', '.join(DECODERS)}"
        )
    if requested == "gpu":
        problem = gpu_decode_problem(device)
        if problem:
            raise ConfigError(f"--decoder gpu is not possible: {problem}; use --decoder simplejpeg")
        return "gpu"
    if requested == "simplejpeg" and not _simplejpeg_available():
        raise ConfigError(
            "--decoder simplejpeg: simplejpeg is not installed (pip install simplejpeg)"
        )
    if requested != "auto":
        return requested
    if gpu_decode_problem(device) is None:
        return "gpu"
    return "simplejpeg" if _simplejpeg_available() else "pil"


def _as_bytes(buf: bytes | torch.Tensor) -> bytes:
    """Encoded image as bytes (bench.data.loader's encoded batches hold 1-D uint8 tensors)."""
    return buf.numpy().tobytes() if isinstance(buf, torch.Tensor) else bytes(buf)


def _as_tensor(buf: bytes | torch.Tensor) -> torch.Tensor:
    """Encoded image as a 1-D uint8 CPU tensor, what torchvision's decode_jpeg takes."""
    if isinstance(buf, torch.Tensor):
        return buf
    return torch.frombuffer(bytearray(buf), dtype=torch.uint8)  # bytearray: writable memory


def split_jpeg(buffers: Sequence[bytes | torch.Tensor]) -> tuple[list[int], list[int]]:
    """Positions of the JPEG buffers and of the others (decoded on the CPU)."""
    jpeg, other = [], []
    for position, buf in enumerate(buffers):
        head = bytes(buf[:3].tolist()) if isinstance(buf, torch.Tensor) else bytes(buf[:3])
        (jpeg if head == JPEG_SIGNATURE else other).append(position)
    return jpeg, other


def decode_batch_cpu(buffers: Sequence[bytes | torch.Tensor], backend: str = "auto") -> np.ndarray:
    """uint8 (N,H,W,3) RGB decoded on the CPU (all images must share one size)."""
    images = [
        decode_image(_as_bytes(buf), f"batch image {i}", backend) for i, buf in enumerate(buffers)
    ]
    return np.stack(images)


def decode_batch_gpu(buffers: Sequence[bytes | torch.Tensor], device: str = "cuda") -> torch.Tensor:
    """uint8 (N,H,W,3) RGB on `device`: JPEGs by nvJPEG in one call, the rest on the CPU."""
    tvio = torchvision_io()
    if tvio is None:
        raise ConfigError("GPU decoding needs torchvision (pip install the build matching torch)")
    jpeg, other = split_jpeg(buffers)
    decoded: dict[int, torch.Tensor] = {}
    if jpeg:
        data = [_as_tensor(buffers[i]) for i in jpeg]
        images = tvio.decode_jpeg(data, mode=tvio.ImageReadMode.RGB, device=device)
        decoded.update(zip(jpeg, (image.permute(1, 2, 0) for image in images), strict=True))
    if other:
        host = decode_batch_cpu([buffers[i] for i in other])
        decoded.update(zip(other, torch.from_numpy(host).to(device).unbind(0), strict=True))
    return torch.stack([decoded[i] for i in range(len(buffers))])


class BatchDecoder:
    """Callable: list of encoded images -> uint8 (N,H,W,3) tensor on `device`."""

    def __init__(self, decoder: str = "auto", device: str = "cpu") -> None:
        self.device = str(device)
        self.decoder = select_decoder(decoder, self.device)

    def __call__(self, buffers: Sequence[bytes | torch.Tensor]) -> torch.Tensor:
        if self.decoder == "gpu":
            return decode_batch_gpu(buffers, self.device)
        # "simplejpeg" = decode_image's auto backend: simplejpeg for JPEGs, Pillow for the rest.
        backend = "pil" if self.decoder == "pil" else "auto"
        host = torch.from_numpy(decode_batch_cpu(buffers, backend))
        if self.device == "cpu":
            return host
        return host.pin_memory().to(self.device, non_blocking=True)
