"""Per-image IJB features: decode + align in DataLoader workers, flip-sum views on the device.

The array layout is insightface eval_ijbc.py's: float32 (N, 2D), the embedding of the aligned
image then the embedding of its mirror; row i is line i of the meta files. Computed features are
cached under a key of the model's and the package meta files' hashes (and the alignment
version), so scoring again with other flags costs seconds."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from bench.core import io
from bench.core.errors import DatasetError, EvalError, FormatError
from bench.eval.embed import Embedder
from bench.eval.ijb.align import align_face
from bench.eval.ijb.package import IJBPackage
from bench.formats.image import decode_image

log = logging.getLogger(__name__)
ALIGNMENT_VERSION = "umeyama-bilinear-1"  # bump when alignment output changes


class AlignedFaces(Dataset):
    """Item i: the aligned uint8 112x112x3 RGB face of line i of the package's meta files."""

    def __init__(self, package: IJBPackage) -> None:
        self.image_dir = package.image_dir
        self.names = package.image_names
        self.landmarks = package.landmarks

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> np.ndarray:
        path = self.image_dir / self.names[index]
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise DatasetError(
                f"{path}: image of meta line {index + 1} is missing from loose_crop/"
            ) from None
        image = decode_image(data, str(path))
        return align_face(image, self.landmarks[index])


def embed_package(
    package: IJBPackage, embedder: Embedder, batch_size: int, workers: int
) -> np.ndarray:
    """float32 (N, 2D) [embedding | mirrored embedding] of every image, with a progress bar."""
    from tqdm import tqdm

    loader = DataLoader(
        AlignedFaces(package),
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=np.stack,
        pin_memory=False,
    )
    outputs = []
    with tqdm(total=len(package.image_names), unit="img", desc=package.target.name) as bar:
        for batch in loader:
            plain, flipped = embedder.views(batch)
            outputs.append(np.concatenate([plain, flipped], axis=1).astype(np.float32))
            bar.update(len(batch))
    return np.concatenate(outputs)


def cache_key(package: IJBPackage, model_sha256: str) -> str:
    """Hash of what determines the features: model, meta files, alignment."""
    digest = hashlib.sha256()
    for part in (
        model_sha256,
        io.sha256_file(package.target.meta(package.root, "face_tid_mid.txt")),
        io.sha256_file(package.target.meta(package.root, "name_5pts_score.txt")),
        ALIGNMENT_VERSION,
    ):
        digest.update(part.encode())
    return digest.hexdigest()[:20]


def cached_features(
    package: IJBPackage, embedder: Embedder, cache_dir: Path, batch_size: int, workers: int
) -> tuple[np.ndarray, Path]:
    """Features from `cache_dir` when their key matches, else computed and cached atomically."""
    path = cache_dir / f"{package.target.name}-{cache_key(package, embedder.info.sha256)}.npy"
    if path.is_file():
        log.info("%s: features from the cache %s", package.target.name, path)
        return load_features(path, len(package.image_names)), path
    with torch.inference_mode():
        features = embed_package(package, embedder, batch_size, workers)
    save_features(path, features)
    return features, path


def save_features(path: Path, features: np.ndarray) -> Path:
    """Write the (N, 2D) float32 layout as .npy, atomically."""
    return io.atomic_write(path, lambda stream: np.save(stream, features.astype(np.float32)))


def load_features(path: str | Path, images: int) -> np.ndarray:
    """An (N, 2D) feature file in eval_ijbc.py's layout, checked against the package size."""
    path = Path(path)
    if not path.is_file():
        raise EvalError(f"{path}: feature file not found")
    try:
        features = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as error:
        raise FormatError(f"{path}: not a .npy array ({error})") from None
    if features.ndim != 2 or features.shape[1] % 2 or features.shape[0] != images:
        raise FormatError(
            f"{path}: shape {features.shape}, expected ({images}, 2D): one row per line of the "
            "meta files, the embedding then the mirrored image's embedding (eval_ijbc.py layout)"
        )
    return features
