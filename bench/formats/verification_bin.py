"""insightface verification `.bin` files: a pickle of (2P encoded images, P issame bools).

Downloaded pickles can run arbitrary code on load, so they go through a restricted unpickler that
allows exactly the globals that pickles of bytes, bools and numpy arrays need (each through a
wrapper that checks its arguments) and refuses every other global. Python 2 pickles of `str` are
read with `encoding="bytes"` (as insightface does); images may be `bytes` or uint8 numpy arrays of
the encoded bytes (raw `cv2.imencode` output), pickled at any protocol 0-5.
"""

from __future__ import annotations

import io
import os
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.core.errors import DatasetError, FormatError
from bench.formats.image import decode_image


# Python 3 pickles bytes at protocols 0-2 as _codecs.encode(str, "latin1") (an empty bytes as
# builtins.bytes()), numpy arrays at protocol 5 as _frombuffer(buffer, dtype, shape, order) and
# numpy scalars (np.bool_ issame values) as multiarray.scalar(dtype, raw bytes). Those callables
# are only ever reached through the checking wrappers below, never directly, so a pickle cannot
# call them with arguments that build arbitrary objects. numpy 2 moved numpy.core to numpy._core.
def _reconstruct() -> Any:
    try:
        from numpy._core.multiarray import _reconstruct as function
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct as function
    return function


def _numpy_scalar() -> Any:
    try:
        from numpy._core.multiarray import scalar as function
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import scalar as function
    return function


def _numpy_frombuffer() -> Any:
    try:
        from numpy._core.numeric import _frombuffer as function
    except ImportError:  # numpy < 2
        from numpy.core.numeric import _frombuffer as function
    return function


def _plain_dtype(dtype: Any, what: str) -> np.dtype:
    # an object dtype would let the pickle hand arbitrary Python objects to numpy
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise pickle.UnpicklingError(f"{what} with dtype {dtype!r} refused (object dtype)")
    return dtype


def _codecs_encode(text: Any, encoding: Any = "utf-8") -> bytes:
    """_codecs.encode restricted to what Python 3 writes for bytes: (str, 'latin1')."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(
            f"_codecs.encode({type(text).__name__}, {encoding!r}) refused (only str, 'latin1')"
        )
    return text.encode("latin-1")


def _empty_bytes(*args: Any) -> bytes:
    """builtins.bytes restricted to the empty call Python 3 writes for b'' at protocol <= 2."""
    if args:
        raise pickle.UnpicklingError("bytes(...) with arguments refused (only bytes())")
    return b""


def _frombuffer(buffer: Any, dtype: Any, shape: Any, order: Any = "C", *rest: Any) -> np.ndarray:
    """numpy's protocol-5 array constructor, for plain (non-object) dtypes only."""
    dtype = _plain_dtype(dtype, "array")
    if not isinstance(buffer, bytes | bytearray | memoryview | pickle.PickleBuffer):
        raise pickle.UnpicklingError(f"array buffer of type {type(buffer).__name__} refused")
    if not isinstance(shape, tuple) or order not in ("C", "F", "K") or len(rest) > 1:
        raise pickle.UnpicklingError(f"array shape {shape!r} / order {order!r} refused")
    return _numpy_frombuffer()(buffer, dtype, shape, order, *rest)


def _scalar(dtype: Any, *data: Any) -> Any:
    """numpy's scalar constructor (np.bool_ issame values), for plain dtypes and raw bytes only."""
    dtype = _plain_dtype(dtype, "scalar")
    if len(data) != 1 or not isinstance(data[0], bytes):
        raise pickle.UnpicklingError("numpy scalar without raw bytes refused")
    return _numpy_scalar()(dtype, data[0])


# (module, name) -> a factory for what that global resolves to; every other global is refused.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): lambda: np.ndarray,
    ("numpy", "dtype"): lambda: np.dtype,
    ("_codecs", "encode"): lambda: _codecs_encode,
    ("__builtin__", "bytes"): lambda: _empty_bytes,
    ("builtins", "bytes"): lambda: _empty_bytes,
    ("numpy.core.numeric", "_frombuffer"): lambda: _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): lambda: _frombuffer,
    ("numpy.core.multiarray", "scalar"): lambda: _scalar,
    ("numpy._core.multiarray", "scalar"): lambda: _scalar,
}


# what a corrupt or truncated pickle can raise (FormatError from find_class passes through)
_PICKLE_ERRORS = (
    pickle.UnpicklingError,
    EOFError,
    ValueError,
    TypeError,
    AttributeError,
    IndexError,
    KeyError,
    UnicodeDecodeError,
    OverflowError,
    MemoryError,
)


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the checked array, bytes and scalar constructors above."""

    def __init__(self, file: io.BufferedIOBase, source: str) -> None:
        super().__init__(file, encoding="bytes")
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        factory = _ALLOWED_GLOBALS.get((module, name))
        if factory is None:
            raise FormatError(
                f"{self.source}: refusing to load global {module}.{name}: a verification .bin "
                "may only contain bytes, bools and numpy arrays; this file is not a genuine "
                "insightface .bin (do not load it with plain pickle)"
            )
        return factory()


def _as_bytes(item: Any, index: int, source: str) -> bytes:
    if isinstance(item, bytes):
        return item
    if isinstance(item, bytearray | memoryview):
        return bytes(item)
    if isinstance(item, np.ndarray) and item.dtype == np.uint8:
        return item.tobytes()
    raise FormatError(f"{source}: image {index} is a {type(item).__name__}, expected encoded bytes")


def _as_bool(value: Any, index: int, source: str) -> bool:
    if isinstance(value, bool | np.bool_) or (
        isinstance(value, int | np.integer) and value in (0, 1)
    ):
        return bool(value)
    raise FormatError(f"{source}: issame[{index}] is {value!r}, expected a bool")


def load_bin_encoded(path: str | os.PathLike) -> tuple[list[bytes], np.ndarray]:
    """(2P encoded images, issame bool array of length P) from a verification .bin."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise FormatError(f"{path}: cannot read ({error})") from error
    try:
        loaded = RestrictedUnpickler(io.BytesIO(data), str(path)).load()
    except _PICKLE_ERRORS as error:
        raise FormatError(
            f"{path}: not a readable verification pickle ({type(error).__name__}: {error}); "
            "re-download the file"
        ) from error
    if not isinstance(loaded, tuple | list) or len(loaded) != 2:
        raise FormatError(f"{path}: expected a pickled (bins, issame) pair, got {type(loaded)}")
    bins, issame = loaded
    images = [_as_bytes(item, index, str(path)) for index, item in enumerate(bins)]
    same = np.asarray([_as_bool(value, index, str(path)) for index, value in enumerate(issame)])
    same = same.astype(bool).reshape(-1)
    if len(images) != 2 * len(same):
        raise FormatError(
            f"{path}: {len(images)} images for {len(same)} pairs; a .bin holds 2 images per pair"
        )
    return images, same


def load_bin(path: str | os.PathLike) -> tuple[list[np.ndarray], np.ndarray]:
    """(2P decoded RGB uint8 HxWx3 images, issame bool array of length P)."""
    encoded, issame = load_bin_encoded(path)
    images = [decode_image(buf, f"{path} image {index}") for index, buf in enumerate(encoded)]
    return images, issame


def write_bin(path: str | os.PathLike, encoded: list[bytes], issame: Sequence[bool]) -> None:
    """Write a verification .bin (protocol-4 pickle of (list[bytes], list[bool])), atomically."""
    path = Path(path)
    images = [bytes(item) for item in encoded]
    same = [bool(value) for value in issame]
    if len(images) != 2 * len(same):
        raise ValueError(f"{path}: {len(images)} images for {len(same)} pairs (need 2 per pair)")
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(temporary, "wb") as handle:
            pickle.dump((images, same), handle, protocol=4)
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


def check_pair_count(path: str | os.PathLike, found: int, expected: int) -> None:
    """DatasetError naming the file if it holds `found` pairs instead of the registry's `expected`."""
    if found != expected:
        raise DatasetError(
            f"{path}: holds {found} pairs, the registry expects {expected}; the file is "
            "incomplete or a different protocol: re-obtain it (see `bench datasets`)"
        )
