"""Image bytes <-> RGB uint8 arrays: decode (simplejpeg or Pillow), encode, and format sniffing.

JPEG decoding uses simplejpeg when it is importable, with accurate DCT and fancy upsampling so
that it gives the same pixels as MXNet's `mx.image.imdecode`, OpenCV and Pillow (the insightface
fixtures check this per image); everything else, and JPEGs simplejpeg refuses, go through Pillow.
"""

from __future__ import annotations

import io
import logging
from functools import lru_cache
from types import ModuleType

import numpy as np
from PIL import Image, UnidentifiedImageError

from bench.core.errors import FormatError

log = logging.getLogger(__name__)
# Largest width/height decoded by default. Every image of the benchmark is 112x112; the size an
# image declares in its header is checked before decoding, so a 100 KB file declaring 8000x8000
# (192 MB of pixels) is refused without allocating anything.
DEFAULT_MAX_SIDE = 1024

# Leading bytes of the image containers we accept, and the file extension each is exported as.
SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "jpg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"BM", "bmp"),
    (b"GIF8", "gif"),
)


def image_extension(buf: bytes) -> str | None:
    """The file extension of an encoded image judged by its leading bytes, or None if unknown."""
    head = bytes(buf[:12])
    for signature, extension in SIGNATURES:
        if head.startswith(signature):
            return extension
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


@lru_cache(maxsize=1)
def _simplejpeg() -> ModuleType | None:
    """simplejpeg when importable (it is optional: the `fast` extra)."""
    try:
        import simplejpeg
    except ImportError:
        log.debug("simplejpeg is not installed; decoding JPEGs with Pillow")
        return None
    return simplejpeg


def decode_image(
    buf: bytes, source: str = "", backend: str = "auto", max_side: int = DEFAULT_MAX_SIDE
) -> np.ndarray:
    """Decode encoded image bytes to an RGB uint8 HxWx3 array; grayscale becomes 3 equal channels.

    `backend` is "auto" (simplejpeg for JPEG when available, else Pillow), "pil" or "simplejpeg".
    An image whose header declares a side above `max_side` is refused before it is decoded.
    """
    if backend not in ("auto", "pil", "simplejpeg"):
        raise ValueError(f"unknown image decoder backend {backend!r}")
    where = source or "image bytes"
    if len(buf) == 0:
        raise FormatError(f"{where}: empty image (0 bytes); re-export or remove this record")
    if backend != "pil" and bytes(buf[:3]) == b"\xff\xd8\xff":
        image = _decode_simplejpeg(buf, where, backend == "simplejpeg", max_side)
        if image is not None:
            return image
    elif backend == "simplejpeg":
        raise FormatError(f"{where}: not a JPEG, simplejpeg cannot decode it")
    return _decode_pil(buf, where, max_side)


def _check_size(width: int, height: int, max_side: int, where: str) -> None:
    """FormatError, before any pixel is decoded, for an image larger than the caller expects."""
    if width > max_side or height > max_side:
        raise FormatError(
            f"{where}: the image declares {width}x{height} pixels, more than the {max_side} a "
            "side allowed here (the benchmark's images are 112x112); refused without decoding: "
            "re-align the image or drop the record"
        )


def _decode_simplejpeg(buf: bytes, where: str, required: bool, max_side: int) -> np.ndarray | None:
    """simplejpeg decode; None (fall back to Pillow) when simplejpeg is missing or refuses."""
    simplejpeg = _simplejpeg()
    if simplejpeg is None:
        if required:
            raise FormatError(
                f"{where}: simplejpeg requested but not installed (pip install simplejpeg)"
            )
        return None
    try:
        height, width, _colour, _subsampling = simplejpeg.decode_jpeg_header(bytes(buf))
    except ValueError as error:
        if required:
            raise FormatError(f"{where}: undecodable JPEG header ({error})") from error
        log.debug("%s: simplejpeg cannot read the header (%s); trying Pillow", where, error)
        return None
    _check_size(width, height, max_side, where)
    try:
        # Accurate DCT + fancy upsampling: the libjpeg defaults that MXNet/OpenCV/Pillow use.
        image = simplejpeg.decode_jpeg(
            bytes(buf), colorspace="RGB", fastdct=False, fastupsample=False
        )
    except ValueError as error:
        if required:
            raise FormatError(f"{where}: undecodable JPEG ({error})") from error
        # e.g. CMYK or arithmetic-coded JPEGs: Pillow decodes more variants, or raises clearly.
        log.debug("%s: simplejpeg refused (%s); trying Pillow", where, error)
        return None
    return _as_rgb(image, where)


# Pillow's modes for 16-bit grayscale (PNG opens as I;16, or as I in older Pillow versions).
_SIXTEEN_BIT_GRAY = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def _decode_pil(buf: bytes, where: str, max_side: int) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(bytes(buf))) as image:
            _check_size(*image.size, max_side, where)  # Image.open reads only the header
            if image.mode in _SIXTEEN_BIT_GRAY:
                # convert("RGB") clips 16-bit values at 255 (a white picture); keep the top 8
                # bits instead, as OpenCV's IMREAD_COLOR does, then repeat to 3 channels.
                values = np.clip(np.asarray(image, dtype=np.int64), 0, 65535) >> 8
                return _as_rgb(values.astype(np.uint8), where)
            rgb = image.convert("RGB")
            rgb.load()
    except (
        UnidentifiedImageError,
        OSError,
        ValueError,
        SyntaxError,
        Image.DecompressionBombError,
    ) as error:
        raise FormatError(
            f"{where}: undecodable image ({len(buf)} bytes, {type(error).__name__}: {error}); "
            "the record is corrupt: re-obtain the file or drop the record"
        ) from error
    return _as_rgb(np.asarray(rgb), where)


def _as_rgb(array: np.ndarray, where: str) -> np.ndarray:
    """Normalise a decoded array to C-contiguous uint8 HxWx3."""
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    elif array.ndim == 3 and array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise FormatError(f"{where}: decoded to {array.dtype} {array.shape}, expected uint8 HxWx3")
    return np.ascontiguousarray(array)


def _check_encodable(image: np.ndarray) -> np.ndarray:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a uint8 HxWx3 RGB array, got {image.dtype} {image.shape}")
    return np.ascontiguousarray(image)


def encode_jpeg(image: np.ndarray, quality: int = 95) -> bytes:
    """Encode an RGB uint8 HxWx3 array as baseline JPEG (4:2:0, like cv2.imencode's default)."""
    out = io.BytesIO()
    Image.fromarray(_check_encodable(image), "RGB").save(out, format="JPEG", quality=quality)
    return out.getvalue()


def encode_png(image: np.ndarray) -> bytes:
    """Encode an RGB uint8 HxWx3 array as lossless PNG."""
    out = io.BytesIO()
    Image.fromarray(_check_encodable(image), "RGB").save(out, format="PNG")
    return out.getvalue()
