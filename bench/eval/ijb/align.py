"""5-point similarity alignment onto the ArcFace 112x112 template, as insightface's IJB scripts.

The reference estimates skimage's SimilarityTransform (Umeyama's least-squares rotation, uniform
scale and translation) from the five detected points to the template, then resamples the loose
crop with cv2.warpAffine (bilinear, black border). Here both are numpy: `similarity_transform`
is Umeyama's closed form, `warp_affine` samples the inverse map bilinearly at integer pixel
centres like OpenCV; OpenCV's fixed-point weights (1/32 pixel) can move a pixel value by one."""

from __future__ import annotations

import numpy as np

from bench.core.errors import FormatError

SIZE = 112
# insightface's ArcFace destination points for a 112x112 crop (left eye, right eye, nose tip,
# left and right mouth corner): arcface_torch eval_ijbc.py's 96-wide points shifted by 8 in x.
TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float32,
)


def similarity_transform(source: np.ndarray, destination: np.ndarray = TEMPLATE) -> np.ndarray:
    """3x3 matrix of the least-squares similarity mapping source points onto destination."""
    source = np.asarray(source, dtype=np.float64)
    destination = np.asarray(destination, dtype=np.float64)
    if source.shape != destination.shape or source.ndim != 2 or source.shape[1] != 2:
        raise FormatError(
            f"expected matching (K, 2) point sets, got {source.shape}, {destination.shape}"
        )
    source_mean, destination_mean = source.mean(axis=0), destination.mean(axis=0)
    source_centred = source - source_mean
    destination_centred = destination - destination_mean
    covariance = destination_centred.T @ source_centred / len(source)
    signs = np.ones(2)
    if np.linalg.det(covariance) < 0:
        signs[1] = -1  # a reflection would fit better; Umeyama keeps a proper rotation
    u, singular, vt = np.linalg.svd(covariance)
    rank = np.linalg.matrix_rank(covariance)
    if rank == 0:
        raise FormatError(f"degenerate landmarks (all points equal): {source.tolist()}")
    matrix = np.eye(3)
    if rank == 1 and np.linalg.det(u) * np.linalg.det(vt) <= 0:
        matrix[:2, :2] = u @ np.diag([1.0, -1.0]) @ vt
    elif rank == 1:
        matrix[:2, :2] = u @ vt
    else:
        matrix[:2, :2] = u @ np.diag(signs) @ vt
    scale = (singular @ signs) / source_centred.var(axis=0).sum()
    matrix[:2, 2] = destination_mean - scale * (matrix[:2, :2] @ source_mean)
    matrix[:2, :2] *= scale
    return matrix


def warp_affine(image: np.ndarray, matrix: np.ndarray, size: int = SIZE) -> np.ndarray:
    """uint8 (size, size, C): pixel (x, y) of the output is image at inverse(matrix) @ (x, y, 1)."""
    inverse = np.linalg.inv(np.vstack([matrix[:2], [0.0, 0.0, 1.0]]))
    grid = np.arange(size, dtype=np.float64)
    xs, ys = grid[np.newaxis, :], grid[:, np.newaxis]
    source_x = inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]
    source_y = inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2]
    left, top = np.floor(source_x), np.floor(source_y)
    fx = (source_x - left)[..., np.newaxis]
    fy = (source_y - top)[..., np.newaxis]
    # A one-pixel black frame makes every out-of-image neighbour read 0 (BORDER_CONSTANT).
    padded = np.pad(image.astype(np.float64), ((1, 1), (1, 1), (0, 0)))
    height, width = padded.shape[:2]
    x0 = np.clip(left.astype(np.int64) + 1, 0, width - 1)
    x1 = np.clip(left.astype(np.int64) + 2, 0, width - 1)
    y0 = np.clip(top.astype(np.int64) + 1, 0, height - 1)
    y1 = np.clip(top.astype(np.int64) + 2, 0, height - 1)
    value = (
        padded[y0, x0] * (1 - fx) * (1 - fy)
        + padded[y0, x1] * fx * (1 - fy)
        + padded[y1, x0] * (1 - fx) * fy
        + padded[y1, x1] * fx * fy
    )
    return np.clip(np.rint(value), 0, 255).astype(np.uint8)


def align_face(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The 112x112 aligned face of a loose crop (uint8 HxWx3 RGB) with five landmarks."""
    return warp_affine(image, similarity_transform(landmarks))
