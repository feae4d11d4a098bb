"""Verification sets from the data root: find the .bin, check it, decode it once, cache the pixels.

The decoded images of `<eval_dir>/<file>` are cached as `<eval_dir>/.cache/<name>-<sha16>.npy`
(uint8, (2P,112,112,3)) plus `<name>-<sha16>.issame.npy`, keyed by the .bin's sha256 so that a
replaced .bin is decoded again. Both are written to a temporary name and renamed into place."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.catalog import Catalog
from bench.core import io, paths
from bench.core.errors import DatasetError, FormatError
from bench.eval.embed import IMAGE_SHAPE

log = logging.getLogger(__name__)
CACHE_DIR = ".cache"


@dataclass(frozen=True)
class EvalData:
    """One decoded verification set: 2P images (pair i = 2i, 2i+1), P labels, the file's hash."""

    name: str
    path: Path
    sha256: str
    images: np.ndarray
    issame: np.ndarray


def eval_set_path(name: str, root: Path, catalog: Catalog) -> Path:
    """The .bin of evaluation set `name`; DatasetError saying how to get it when missing."""
    entry = catalog.eval_set(name)
    if entry.kind != "bin":
        raise DatasetError(
            f"evaluation set {name!r} is an IJB package, not a .bin pair file: score it with "
            f"`bench ijb --target {name}` (1:1 and 1:N on templates)"
        )
    path = paths.eval_dir(Path(root)) / entry.file
    if not path.is_file():
        raise DatasetError(
            f"evaluation set {name!r}: {path} not found. How to get it: {entry.obtain} "
            "(the benchmark never skips a set)"
        )
    return path


def load_eval_data(name: str, root: Path, catalog: Catalog) -> EvalData:
    """Decode (or read from cache) evaluation set `name` and check its pair count."""
    entry = catalog.eval_set(name)
    path = eval_set_path(name, root, catalog)
    sha256 = io.sha256_file(path)
    cache = path.parent / CACHE_DIR / f"{name}-{sha256[:16]}.npy"
    issame_cache = cache.with_suffix(".issame.npy")
    cached = _read_cache(cache, issame_cache)
    if cached is not None:
        images, issame = cached
    else:
        images, issame = _decode(path)
        _save_array(issame_cache, issame)
        _save_array(cache, images)  # written last: its presence means the cache is complete
    if len(issame) != entry.pairs:
        raise DatasetError(
            f"{path}: {len(issame)} pairs, but the registry entry {name!r} says {entry.pairs}; "
            f"the file is not the expected {entry.display_name} set. How to get it: {entry.obtain}"
        )
    return EvalData(name, path, sha256, images, issame)


def load_eval_set(name: str, root: Path, catalog: Catalog) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (2P,112,112,3), issame bool (P,)) of evaluation set `name`."""
    data = load_eval_data(name, root, catalog)
    return data.images, data.issame


def _read_cache(cache: Path, issame_cache: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """The cached (images, issame), or None when absent; a truncated or malformed cache (a
    killed writer, a full disk, an edit) is deleted with a warning and decoded again."""
    if not (cache.is_file() and issame_cache.is_file()):
        return None
    try:
        images = np.load(cache, mmap_mode="r")
        issame = np.load(issame_cache)
        problem = _cache_problem(images, issame)
    except (ValueError, OSError, EOFError) as error:
        problem = f"{type(error).__name__}: {error}"
    if problem is None:
        log.debug("decoded cache %s", cache)
        return images, issame
    log.warning("%s: unusable decoded cache (%s); deleting it and decoding again", cache, problem)
    for stale in (cache, issame_cache):
        stale.unlink(missing_ok=True)
    return None


def _cache_problem(images: np.ndarray, issame: np.ndarray) -> str | None:
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE:
        return f"images are {images.dtype} {images.shape}, expected uint8 (2P, 112, 112, 3)"
    if issame.dtype != bool or issame.ndim != 1 or len(images) != 2 * len(issame):
        return f"{len(images)} images for labels {issame.dtype} {issame.shape}"
    return None


def _decode(path: Path) -> tuple[np.ndarray, np.ndarray]:
    from bench.formats import load_bin

    log.info("decoding %s (once; cached by its sha256)", path)
    images, issame = load_bin(path)
    issame = np.asarray(issame, dtype=bool)
    if len(issame) == 0:
        raise FormatError(f"{path}: holds no pairs (an empty verification set); re-obtain it")
    if len(images) != 2 * len(issame):
        raise FormatError(
            f"{path}: {len(images)} images for {len(issame)} pairs (need exactly 2 per pair)"
        )
    for index, image in enumerate(images):
        if image.shape != IMAGE_SHAPE or image.dtype != np.uint8:
            raise FormatError(
                f"{path}: image {index} is {image.dtype} {image.shape}, expected uint8 "
                f"{IMAGE_SHAPE} (aligned 112x112 crops, as in the insightface .bin files)"
            )
    return np.stack(images), issame


def _save_array(path: Path, array: np.ndarray) -> None:
    """np.save through the atomic writer."""
    io.atomic_write(path, lambda stream: np.save(stream, array))
