"""The procedural face renderer: shapes, determinism, the knobs, identity separability."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from bench.core.errors import DatasetError
from bench.demo.params import (
    IDENTITY_DIM,
    check_knobs,
    face_params,
    identity_vector,
    image_rng,
    lookalike_vector,
    sample_nuisance,
)
from bench.demo.render import SIZE, render_face, render_image
from bench.diagnostics.drawing import grid_sheet

SEED = 5


def _stack(identities: int, images: int, diversity: float, similarity: float) -> np.ndarray:
    """float32 (identities, images, 112, 112, 3) rendered images."""
    return np.stack([
        np.stack([render_image(SEED, i, j, diversity, similarity) for j in range(images)])
        for i in range(identities)
    ]).astype(np.float32)  # fmt: skip


def chroma_features(images: np.ndarray) -> np.ndarray:
    """The simple baseline: L2-normalised sqrt-histogram of (r, g) chromaticity x brightness of
    the central face region. Brightness-invariant colour statistics of skin, hair, eyes, lips."""
    x = np.asarray(images, np.float32)[..., 30:100, 30:82, :] + 1.0
    total = x.sum(-1)
    bins = 8
    r = np.minimum((x[..., 0] / total * 1.5 * bins).astype(np.int64), bins - 1)
    g = np.minimum((x[..., 1] / total * 1.5 * bins).astype(np.int64), bins - 1)
    level = np.minimum((total / 766.0 * 4).astype(np.int64), 3)
    codes = ((r * bins + g) * 4 + level).reshape(len(x), -1)
    hist = np.stack([np.bincount(c, minlength=bins * bins * 4) for c in codes]).astype(np.float32)
    hist = np.sqrt(hist)
    return hist / np.linalg.norm(hist, axis=1, keepdims=True)


def test_render_is_uint8_rgb_112():
    image = render_image(SEED, 0, 0, 1.0, 0.3)
    assert image.shape == (SIZE, SIZE, 3) and image.dtype == np.uint8
    assert image.flags["C_CONTIGUOUS"]
    assert image.std() > 10  # not a blank canvas


def test_same_seed_same_pixels_other_seed_other_pixels():
    first = render_image(SEED, 3, 7, 0.8, 0.3)
    assert np.array_equal(first, render_image(SEED, 3, 7, 0.8, 0.3))
    assert not np.array_equal(first, render_image(SEED + 1, 3, 7, 0.8, 0.3))
    assert not np.array_equal(first, render_image(SEED, 4, 7, 0.8, 0.3))
    assert not np.array_equal(first, render_image(SEED, 3, 8, 0.8, 0.3))


def test_image_does_not_depend_on_render_order():
    forward = [render_image(SEED, i, j, 1.0, 0.3) for i in range(2) for j in range(2)]
    backward = [render_image(SEED, i, j, 1.0, 0.3) for i in (1, 0) for j in (1, 0)][::-1]
    assert all(np.array_equal(a, b) for a, b in zip(forward, backward, strict=True))


def test_extreme_nuisances_render():
    face = face_params(identity_vector(SEED, 1, 0.0))
    rng = image_rng(SEED, 1, 0)
    base = sample_nuisance(rng, 1.0)
    for occluder in range(-1, 4):
        for yaw in (-50.0, 0.0, 50.0):
            nuisance = dataclasses.replace(
                base, occluder=occluder, yaw=math.radians(yaw), blur=2.0, noise=12.0
            )
            image = render_face(face, nuisance, rng)
            assert image.shape == (SIZE, SIZE, 3) and image.dtype == np.uint8


def test_diversity_increases_intra_identity_variation():
    def spread(diversity: float) -> float:
        images = _stack(4, 5, diversity, 0.3)
        diffs = np.abs(images[:, :, None] - images[:, None, :])
        return float(diffs.mean())

    low, mid, high = spread(0.1), spread(0.5), spread(1.0)
    assert low < mid < high


def test_similarity_pulls_identities_together():
    def between(similarity: float) -> float:
        means = _stack(8, 3, 0.2, similarity).mean(axis=1)  # identity mean images
        return float(np.abs(means[:, None] - means[None, :]).mean())

    assert between(0.0) > between(0.5) > between(0.9)


def test_similarity_shrinks_identity_vectors_toward_the_mean_face():
    z0 = identity_vector(SEED, 2, 0.0)
    assert z0.shape == (IDENTITY_DIM,)
    np.testing.assert_allclose(identity_vector(SEED, 2, 0.6), 0.4 * z0)
    assert np.all(identity_vector(SEED, 2, 1.0) == 0.0)


def test_lookalike_is_closer_than_another_identity():
    z = identity_vector(SEED, 0, 0.3)
    twin = lookalike_vector(z, SEED, 0, 0.35)
    others = [identity_vector(SEED, i, 0.3) for i in range(1, 30)]
    assert np.linalg.norm(twin - z) < min(np.linalg.norm(o - z) for o in others)


def test_nearest_class_mean_baseline_separates_consistent_identities():
    identities, images, train = 20, 8, 6
    stack = _stack(identities, images, 0.25, 0.3)
    features = chroma_features(stack.reshape(-1, SIZE, SIZE, 3)).reshape(identities, images, -1)
    means = features[:, :train].mean(axis=1)
    predicted = np.argmax(features[:, train:] @ means.T, axis=-1)
    accuracy = float((predicted == np.arange(identities)[:, None]).mean())
    assert accuracy > 5.0 / identities  # far above chance (1 / identities)


def test_knobs_validated():
    assert check_knobs({}, "x")["diversity"] == pytest.approx(0.5)
    with pytest.raises(DatasetError, match="diversty"):
        check_knobs({"diversty": 1.0}, "datasets.yaml: training.demo_x.demo.params")
    with pytest.raises(DatasetError, match="similarity"):
        check_knobs({"similarity": 1.5}, "x")


def test_contact_sheet_layout():
    tiles = [[np.full((4, 5, 3), 10 * (r + c), np.uint8) for c in range(3)] for r in range(2)]
    sheet = grid_sheet(tiles, gap=1)
    assert sheet.shape == (2 * 5 + 1, 3 * 6 + 1, 3)
    assert sheet[1 + 5, 1 + 2 * 6, 0] == 10 * (1 + 2)
    assert sheet[0, 0, 0] == 255
