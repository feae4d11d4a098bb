"""Index masks: a training set defined as a subset of another one's records.

The format is HaiyuWu/SOTA-Face-Recognition-Train-and-Test's `config.mask` (how HSFace100K/200K are
made from HSFace300K): a NumPy `.npy` file holding a 1-D integer array of record indices into the
parent set, in the parent's record order (its LMDB `__keys__` order; `np.load(mask)` there, then
`index = mask[index]`). The parent's labels are kept (renumbered 0..K-1 by prepare when the subset
leaves gaps)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from bench.core.errors import DatasetError


def load_mask(
    path: str | os.PathLike, parent_records: int, parent: str = "the parent"
) -> np.ndarray:
    """The record indices a mask file selects, checked against a parent of `parent_records`."""
    path = Path(path)
    try:
        mask = np.load(path, allow_pickle=False)  # a mask is plain numbers: never unpickle
    except FileNotFoundError:
        raise DatasetError(f"mask file {path} not found") from None
    except (OSError, ValueError) as error:
        raise DatasetError(
            f"{path}: not a NumPy .npy array of record indices ({error}); a mask is saved with "
            "np.save(path, indices)"
        ) from None
    if mask.ndim != 1 or not np.issubdtype(mask.dtype, np.integer):
        raise DatasetError(
            f"{path}: a mask is a 1-D integer array of record indices, found shape "
            f"{mask.shape} of {mask.dtype}"
        )
    if not len(mask):
        raise DatasetError(f"{path}: the mask selects no record")
    mask = mask.astype(np.int64)
    outside = mask[(mask < 0) | (mask >= parent_records)]
    if len(outside):
        raise DatasetError(
            f"{path}: index {int(outside[0])} is outside {parent} ({parent_records:,} records); "
            "is this the mask of another parent set?"
        )
    unique, counts = np.unique(mask, return_counts=True)
    if len(unique) != len(mask):
        raise DatasetError(
            f"{path}: record {int(unique[counts > 1][0])} is selected more than once; a mask "
            "selects each record at most once"
        )
    return mask
