"""5-point alignment: the similarity transform against hand-computed ones, the warp's sampling,
and the demo package's crops aligning back onto the rendered faces."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.core.errors import FormatError
from bench.demo.ijb import FACE_POINTS
from bench.eval.ijb.align import TEMPLATE, align_face, similarity_transform, warp_affine


def test_template_is_insightfaces_arcface_points():
    # eval_ijbc.py: the 96-wide points with 8 added to x.
    points = np.array(
        [
            [30.2946, 51.6963],
            [65.5318, 51.5014],
            [48.0252, 71.7366],
            [33.5493, 92.3655],
            [62.7299, 92.2041],
        ]
    )
    points[:, 0] += 8.0
    np.testing.assert_allclose(TEMPLATE, points, atol=1e-5)
    np.testing.assert_array_equal(FACE_POINTS.astype(np.float32), TEMPLATE)


def test_scaled_and_shifted_points_give_the_inverse_map():
    # source = 2 * template + (5, 7)  =>  template = 0.5 * source - (2.5, 3.5), by hand.
    source = 2.0 * TEMPLATE.astype(np.float64) + np.array([5.0, 7.0])
    matrix = similarity_transform(source)
    np.testing.assert_allclose(
        matrix, [[0.5, 0.0, -2.5], [0.0, 0.5, -3.5], [0.0, 0.0, 1.0]], atol=1e-9
    )


def test_rotation_is_recovered():
    angle, scale, shift = math.radians(25.0), 1.7, np.array([-12.0, 30.0])
    rotation = scale * np.array(
        [[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]
    )
    template = TEMPLATE.astype(np.float64)
    source = (template - shift) @ np.linalg.inv(rotation).T  # rotation @ source + shift = template
    matrix = similarity_transform(source)
    np.testing.assert_allclose(matrix[:2, :2], rotation, atol=1e-9)
    np.testing.assert_allclose(matrix[:2, 2], shift, atol=1e-9)


def test_noisy_points_give_the_least_squares_fit():
    rng = np.random.default_rng(0)
    source = TEMPLATE + rng.normal(0, 2.0, TEMPLATE.shape)
    matrix = similarity_transform(source)
    fitted = source @ matrix[:2, :2].T + matrix[:2, 2]
    residual = np.sum((fitted - TEMPLATE) ** 2)
    for delta in np.eye(4) * 1e-4:  # no nearby similarity (a, b, tx, ty) fits better
        a, b = matrix[0, 0] + delta[0], matrix[1, 0] + delta[1]
        other = source @ np.array([[a, -b], [b, a]]).T + matrix[:2, 2] + delta[2:]
        assert np.sum((other - TEMPLATE) ** 2) >= residual


def test_degenerate_points_are_an_error():
    with pytest.raises(FormatError, match="degenerate"):
        similarity_transform(np.ones((5, 2)))


def test_warp_samples_like_opencv():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (20, 30, 3)).astype(np.uint8)
    identity = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    np.testing.assert_array_equal(warp_affine(image, identity, size=20), image[:, :20])
    shift = np.array([[1.0, 0, 3.0], [0, 1.0, -2.0]])  # output(x, y) = image(x - 3, y + 2)
    out = warp_affine(image, shift, size=20)
    np.testing.assert_array_equal(out[:18, 3:], image[2:20, :17])
    assert not out[:, :3].any() and not out[18:].any()  # outside the image: black
    half = np.array([[1.0, 0, -0.5], [0, 1.0, 0]])  # halfway between two columns
    expected = np.rint((image[:, :20].astype(float) + image[:, 1:21]) / 2)
    np.testing.assert_array_equal(warp_affine(image, half, size=20), expected)


def test_demo_crops_align_back_onto_the_rendered_faces(tmp_path):
    from bench.demo.ijb import MiniIJB, write_mini_ijb
    from bench.demo.render import render_image
    from bench.eval.ijb.package import read_package
    from bench.formats.image import decode_image

    spec = MiniIJB(subjects=2, probes_per_subject=1)
    package = read_package(write_mini_ijb(tmp_path, "ijbb", spec), "ijbb")
    image = decode_image((package.image_dir / "1.jpg").read_bytes())
    assert image.shape == (spec.crop, spec.crop, 3)
    aligned = align_face(image, package.landmarks[0]).astype(int)
    face = render_image(spec.seed, 1, 1, spec.diversity, spec.similarity).astype(int)
    assert np.abs(aligned - face)[8:104, 8:104].mean() < 6.0  # JPEG + two resamplings
    unaligned = image[19:131, 19:131].astype(int)
    assert (
        np.abs(unaligned - face)[8:104, 8:104].mean()
        > 2 * np.abs(aligned - face)[8:104, 8:104].mean()
    )
