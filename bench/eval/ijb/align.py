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
    fx, fy = source_x - left, source_y - top
    left, top = left.astype(np.int64), top.astype(np.int64)
    height, width = image.shape[:2]
    value = np.zeros((size, size, image.shape[2]), dtype=np.float64)
    # Only the 4 x size^2 neighbours are read (a loose crop can be large); a neighbour outside
    # the image reads 0, OpenCV's BORDER_CONSTANT.
    for dy, weight_y in ((0, 1.0 - fy), (1, fy)):
        for dx, weight_x in ((0, 1.0 - fx), (1, fx)):
            x, y = left + dx, top + dy
            inside = (x >= 0) & (x < width) & (y >= 0) & (y < height)
            pixels = image[np.clip(y, 0, height - 1), np.clip(x, 0, width - 1)]
            value += pixels * (weight_x * weight_y * inside)[..., np.newaxis]
    return np.clip(np.rint(value), 0, 255).astype(np.uint8)


def align_face(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The 112x112 aligned face of a loose crop (uint8 HxWx3 RGB) with five landmarks."""
    return warp_affine(image, similarity_transform(landmarks))
