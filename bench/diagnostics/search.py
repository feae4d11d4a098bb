"""Chunked nearest-centre search and centre-pair collision counting (no O(N x C) memory).

Both work on L2-normalised rows, so a dot product is a cosine similarity. The similarity matrix
is never materialised: queries are taken `query_chunk` rows at a time and centres
`centre_chunk` columns at a time; each block's top-k is merged into a running top-k. Peak extra
memory is one block, `query_chunk x centre_chunk` similarities (plus the top-k buffers).

Scale (D = 512, one GPU, torch; queries streamed from host memory one chunk at a time):

- 0.5M images x 10K identities: 2*N*C*D = 5.1e12 FLOPs. The centres are 20 MB (fp32); a block
  of 8,192 queries x 10K centres is 328 MB fp32. On an H100 that is ~0.1 s of fp32 matmul
  (~0.01 s fp16), about 1-2 s in all with top-k and copying the 1 GB (fp32) of queries to the
  device. On 16 CPU cores (BLAS at ~0.5-1 TFLOP/s fp32) about 5-20 s.
- 5M images x 100K identities: 5.1e14 FLOPs; queries 10 GB fp32 / 5 GB fp16 (streamed, never
  all on the GPU), centres 205 MB fp32. With query_chunk 8,192 and centre_chunk 32,768 a block
  is 1.07 GB fp32 (0.5 GB fp16). On an H100: ~8 s of plain fp32 matmul or ~1 s fp16/TF32 tensor
  cores, plus ~2-4 s of memory-bound top-k over the 5e11 similarities and ~1 s of transfers:
  expect 5-20 s. On CPU: 10-60 min; use a GPU.
- Centre-pair collisions at 100K identities: C^2/2 = 5e9 pairs (40 GB if materialised in fp32);
  blockwise it is ~1 s of GPU matmul. At 10K identities it is trivial anywhere.

Embedding the images (the IR-50 forward passes, twice with the flip) dominates all of this by
one to two orders of magnitude; the search is never the bottleneck.

Ties: similarities returned are exact block results; among exactly equal similarities any of the
tied indices may be returned (torch.topk does not order ties)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from bench.core.errors import EvalError

log = logging.getLogger(__name__)
DEFAULT_QUERY_CHUNK = 8192
DEFAULT_CENTRE_CHUNK = 32768
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass(frozen=True)
class TopK:
    """Per query: the k best similarities (descending) and the indices of those centres."""

    similarities: np.ndarray  # float32 (N, k); -inf where fewer than k centres were eligible
    indices: np.ndarray  # int64 (N, k); -1 where fewer than k centres were eligible


def _as_tensor(array: np.ndarray | torch.Tensor, device: str, dtype: torch.dtype) -> torch.Tensor:
    tensor = torch.as_tensor(array)
    return tensor.to(device=device, dtype=dtype, non_blocking=True)


def _check_inputs(queries, centres, k: int, chunks: tuple[int, int]) -> None:
    if queries.ndim != 2 or centres.ndim != 2 or queries.shape[1] != centres.shape[1]:
        raise EvalError(
            f"nearest-centre search needs (N,D) queries and (C,D) centres of the same D; got "
            f"{tuple(queries.shape)} and {tuple(centres.shape)}"
        )
    if k < 1 or min(chunks) < 1:
        raise EvalError(f"k and chunk sizes must be positive (k={k}, chunks={chunks})")


def nearest_centres(
    queries: np.ndarray | torch.Tensor,
    centres: np.ndarray | torch.Tensor,
    k: int = 1,
    exclude: np.ndarray | None = None,
    query_chunk: int = DEFAULT_QUERY_CHUNK,
    centre_chunk: int = DEFAULT_CENTRE_CHUNK,
    device: str = "cpu",
    dtype: str = "float32",
) -> TopK:
    """Top-k most similar centres of every query by blocked matmul; `exclude[i]` (a centre index,
    or -1 for none) is left out for query i, which gives the nearest OTHER centre."""
    _check_inputs(queries, centres, k, (query_chunk, centre_chunk))
    if dtype not in _DTYPES:
        raise EvalError(f"search dtype {dtype!r} unknown; use one of {', '.join(_DTYPES)}")
    count, num_centres = queries.shape[0], centres.shape[0]
    if exclude is not None and len(exclude) != count:
        raise EvalError(f"exclude has {len(exclude)} entries for {count} queries")
    torch_dtype = _DTYPES[dtype]
    centre_tensor = _as_tensor(centres, device, torch_dtype)
    best_sims = np.full((count, k), -np.inf, np.float32)
    best_index = np.full((count, k), -1, np.int64)
    for start in range(0, count, query_chunk):
        stop = min(start + query_chunk, count)
        block = _as_tensor(queries[start:stop], device, torch_dtype)
        skip = None
        if exclude is not None:
            skip = torch.as_tensor(np.asarray(exclude[start:stop], np.int64), device=device)
        sims, index = _search_block(block, centre_tensor, k, skip, centre_chunk)
        best_sims[start:stop] = sims.float().cpu().numpy()
        best_index[start:stop] = index.cpu().numpy()
    log.debug("nearest-centre search: %d queries x %d centres, k=%d", count, num_centres, k)
    return TopK(best_sims, best_index)


def _search_block(
    block: torch.Tensor,
    centres: torch.Tensor,
    k: int,
    exclude: torch.Tensor | None,
    centre_chunk: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Running top-k of one query block over the centres, centre_chunk columns at a time."""
    rows = block.shape[0]
    sims = torch.full((rows, k), -torch.inf, dtype=torch.float32, device=block.device)
    index = torch.full((rows, k), -1, dtype=torch.int64, device=block.device)
    for start in range(0, centres.shape[0], centre_chunk):
        part = (block @ centres[start : start + centre_chunk].T).float()
        if exclude is not None:
            local = exclude - start
            hit = (local >= 0) & (local < part.shape[1])
            part[hit.nonzero(as_tuple=True)[0], local[hit]] = -torch.inf
        take = min(k, part.shape[1])
        part_sims, part_index = torch.topk(part, take, dim=1)
        merged_sims = torch.cat([sims, part_sims], dim=1)
        merged_index = torch.cat([index, part_index + start], dim=1)
        sims, order = torch.topk(merged_sims, k, dim=1)
        index = torch.gather(merged_index, 1, order)
    # An excluded (or missing) centre keeps -inf; it must not look like a real index.
    index[torch.isneginf(sims)] = -1
    return sims, index


@dataclass(frozen=True)
class Collisions:
    """Centre pairs (i < j) with similarity above a threshold: the count, and the strongest."""

    threshold: float
    count: int
    pairs: np.ndarray  # int64 (M, 2), the M <= max_pairs most similar pairs, i < j
    similarities: np.ndarray  # float32 (M,), descending


def close_pairs(
    centres: np.ndarray | torch.Tensor,
    threshold: float,
    chunk: int = 4096,
    max_pairs: int = 1000,
    device: str = "cpu",
    dtype: str = "float32",
) -> Collisions:
    """Count centre pairs i < j with cosine > threshold, over the upper triangle block by block;
    keeps the `max_pairs` most similar pairs (memory O(chunk^2 + max_pairs))."""
    if centres.ndim != 2 or chunk < 1 or max_pairs < 0:
        raise EvalError(f"close_pairs needs (C,D) centres and positive chunk; got {centres.shape}")
    if dtype not in _DTYPES:
        raise EvalError(f"search dtype {dtype!r} unknown; use one of {', '.join(_DTYPES)}")
    tensor = _as_tensor(centres, device, _DTYPES[dtype])
    num = tensor.shape[0]
    count = 0
    kept_pairs = np.zeros((0, 2), np.int64)
    kept_sims = np.zeros(0, np.float32)
    for row in range(0, num, chunk):
        for column in range(row, num, chunk):
            sims = (tensor[row : row + chunk] @ tensor[column : column + chunk].T).float()
            i, j = torch.nonzero(sims > threshold, as_tuple=True)
            upper = (i + row) < (j + column)  # the diagonal block holds each pair twice
            i, j = i[upper], j[upper]
            count += int(i.numel())
            if i.numel() and max_pairs:
                found = torch.stack([i + row, j + column], dim=1).cpu().numpy()
                kept_pairs = np.concatenate([kept_pairs, found])
                kept_sims = np.concatenate([kept_sims, sims[i, j].cpu().numpy()])
                kept_pairs, kept_sims = _strongest(kept_pairs, kept_sims, max_pairs)
    return Collisions(float(threshold), count, kept_pairs, kept_sims)


def _strongest(pairs: np.ndarray, sims: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """The `limit` most similar pairs, most similar first (ties by pair order, deterministic)."""
    order = np.lexsort((pairs[:, 1], pairs[:, 0], -sims))[:limit]
    return pairs[order], sims[order]
