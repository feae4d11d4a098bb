"""Chunked nearest-centre search and collision counting against brute-force numpy references."""

from __future__ import annotations

import numpy as np
import pytest

from bench.core.errors import EvalError
from bench.diagnostics.search import close_pairs, nearest_centres

TOLERANCE = 1e-5


def _unit(rng: np.random.Generator, rows: int, dim: int) -> np.ndarray:
    x = rng.standard_normal((rows, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _brute(queries, centres, k, exclude=None):
    sims = queries.astype(np.float64) @ centres.astype(np.float64).T
    if exclude is not None:
        rows = np.flatnonzero(exclude >= 0)
        sims[rows, exclude[rows]] = -np.inf
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sims, order, axis=1), order, sims


def _check(result, queries, centres, k, exclude=None):
    """Similarities match brute force; each index is a centre with that similarity (ties ok)."""
    ref_sims, _, full = _brute(queries, centres, k, exclude)
    eligible = min(k, centres.shape[0] - (0 if exclude is None else 1))
    np.testing.assert_allclose(
        result.similarities[:, :eligible], ref_sims[:, :eligible], atol=TOLERANCE
    )
    rows = np.arange(len(queries))[:, None]
    picked = full[rows, result.indices[:, :eligible]]
    np.testing.assert_allclose(picked, result.similarities[:, :eligible], atol=TOLERANCE)
    for row in result.indices[:, :eligible]:  # no centre reported twice
        assert len(set(row.tolist())) == eligible
    if exclude is not None:
        assert not np.any(result.indices == exclude[:, None])


@pytest.mark.parametrize(
    ("count", "num_centres", "k", "query_chunk", "centre_chunk"),
    [
        (37, 23, 1, 8, 5),  # neither size a multiple of its chunk
        (64, 32, 3, 16, 8),  # exact multiples
        (5, 40, 4, 100, 7),  # chunk larger than the query count
        (1, 1, 1, 1, 1),  # single query, single centre
        (20, 3, 5, 6, 2),  # k larger than the number of centres
    ],
)
def test_nearest_matches_brute_force(count, num_centres, k, query_chunk, centre_chunk):
    rng = np.random.default_rng(count * 100 + num_centres)
    queries, centres = _unit(rng, count, 16), _unit(rng, num_centres, 16)
    result = nearest_centres(
        queries, centres, k=k, query_chunk=query_chunk, centre_chunk=centre_chunk
    )
    _check(result, queries, centres, k)
    if k > num_centres:  # the missing slots are marked, not filled with a real index
        assert np.all(result.indices[:, num_centres:] == -1)
        assert np.all(np.isneginf(result.similarities[:, num_centres:]))


def test_exclusion_gives_nearest_other_centre():
    rng = np.random.default_rng(3)
    centres = _unit(rng, 29, 8)
    labels = rng.integers(0, 29, size=50)
    # Queries close to their own centre: without exclusion the own centre would always win.
    queries = centres[labels] + 0.05 * rng.standard_normal((50, 8)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    exclude = labels.copy()
    exclude[::7] = -1  # -1 = exclude nothing for that query
    result = nearest_centres(queries, centres, k=2, exclude=exclude, query_chunk=9, centre_chunk=4)
    _check(result, queries, centres, 2, exclude)
    assert np.all(result.indices[::7, 0] == labels[::7])


def test_ties_return_a_tied_index():
    centres = np.repeat(np.eye(4, dtype=np.float32), 3, axis=0)  # every centre appears 3 times
    queries = np.eye(4, dtype=np.float32)[[0, 1, 2, 3, 0]]
    result = nearest_centres(queries, centres, k=3, query_chunk=2, centre_chunk=5)
    _check(result, queries, centres, 3)
    np.testing.assert_array_equal(result.indices // 3, np.array([[0, 1, 2, 3, 0]]).T.repeat(3, 1))


def _brute_pairs(centres, threshold):
    sims = centres.astype(np.float64) @ centres.astype(np.float64).T
    i, j = np.triu_indices(len(centres), k=1)
    above = sims[i, j] > threshold
    return set(zip(i[above].tolist(), j[above].tolist(), strict=True)), sims


@pytest.mark.parametrize(("num", "chunk"), [(31, 8), (32, 8), (5, 64), (1, 1)])
def test_close_pairs_matches_brute_force(num, chunk):
    rng = np.random.default_rng(num)
    centres = _unit(rng, num, 6)
    if num > 3:  # plant near-duplicate centres across chunk boundaries
        centres[num - 1] = centres[0]
        centres[num // 2] = centres[1] * 0.999 + centres[2] * 0.001
    threshold = 0.6
    expected, sims = _brute_pairs(centres, threshold)
    result = close_pairs(centres, threshold, chunk=chunk, max_pairs=1000)
    assert result.count == len(expected)
    assert {tuple(pair) for pair in result.pairs.tolist()} == expected
    np.testing.assert_allclose(
        result.similarities, sims[result.pairs[:, 0], result.pairs[:, 1]], atol=TOLERANCE
    )
    assert np.all(np.diff(result.similarities) <= 0)


def test_close_pairs_keeps_strongest_when_capped():
    rng = np.random.default_rng(11)
    centres = _unit(rng, 40, 3)  # 3-D: many pairs above 0.5
    expected, sims = _brute_pairs(centres, 0.5)
    result = close_pairs(centres, 0.5, chunk=7, max_pairs=5)
    assert result.count == len(expected) > 5
    strongest = np.sort([sims[i, j] for i, j in expected])[::-1][:5]
    np.testing.assert_allclose(result.similarities, strongest, atol=TOLERANCE)


def test_bad_shapes_are_errors():
    with pytest.raises(EvalError, match="same D"):
        nearest_centres(np.zeros((3, 4), np.float32), np.zeros((2, 5), np.float32))
    with pytest.raises(EvalError, match="exclude"):
        nearest_centres(
            np.zeros((3, 4), np.float32),
            np.zeros((2, 4), np.float32),
            exclude=np.zeros(2, np.int64),
        )
