"""insightface verification `.bin` files: a pickle of (2P encoded images, P issame bools).

Downloaded pickles can run arbitrary code on load, so they go through a restricted unpickler that
allows exactly the numpy globals an array pickle needs and refuses every other global. Python 2
pickles of `str` are read with `encoding="bytes"` (as insightface does); images may be `bytes` or
uint8 numpy arrays of the encoded bytes (raw `cv2.imencode` output).
"""

from __future__ import annotations

import io
import os
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.errors import DatasetError, FormatError
from bench.formats.image import decode_image

# (module, name) -> where to find it today; numpy 2 moved numpy.core to numpy._core.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
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


def _reconstruct() -> Any:
    try:
        from numpy._core.multiarray import _reconstruct as function
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct as function
    return function


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only numpy's array-reconstruction globals."""

    def __init__(self, file: io.BufferedIOBase, source: str) -> None:
        super().__init__(file, encoding="bytes")
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise FormatError(
                f"{self.source}: refusing to load global {module}.{name}: a verification .bin "
                "may only contain bytes, bools and numpy arrays; this file is not a genuine "
                "insightface .bin (do not load it with plain pickle)"
            )
        if name == "_reconstruct":
            return _reconstruct()
        return np.ndarray if name == "ndarray" else np.dtype


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
