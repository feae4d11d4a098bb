"""A training checkpoint records its recipe's channel order; the evaluator feeds the model that
order (AdaFace-trained models expect BGR), swapping the RGB evaluation images before normalising."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from backbones import build_backbone
from bench.core.errors import EvalError
from bench.eval.embed import TorchEmbedder, load_model

KWARGS = {"width": 8, "embedding_size": 16}


def _checkpoint(tmp_path, extra: dict) -> tuple:
    torch.manual_seed(1)
    module = build_backbone("ir18", **KWARGS).eval()
    path = tmp_path / f"final-{len(list(tmp_path.iterdir()))}.pt"
    state = {"backbone": "ir18", "backbone_kwargs": KWARGS, "model": module.state_dict()}
    torch.save({**state, **extra}, path)
    return path, module


def _images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (3, 112, 112, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    "extra", [{"input_colour": "bgr"}, {"config": {"input_colour": "bgr", "seed": 0}}]
)
def test_bgr_checkpoint_is_evaluated_on_swapped_channels(tmp_path, extra: dict) -> None:
    path, module = _checkpoint(tmp_path, extra)
    embedder = load_model(path)
    assert embedder.input_colour == "bgr"
    images = _images()
    as_rgb = TorchEmbedder(module, info=None, input_colour="rgb")
    np.testing.assert_allclose(embedder(images), as_rgb(images[..., ::-1]), rtol=1e-5, atol=1e-5)
    assert not np.allclose(embedder(images), as_rgb(images), atol=1e-3)


def test_checkpoint_without_a_recorded_order_is_rgb(tmp_path) -> None:
    path, module = _checkpoint(tmp_path, {})
    embedder = load_model(path)
    assert embedder.input_colour == "rgb"
    images = _images()
    reference = TorchEmbedder(module, info=None)(images)
    np.testing.assert_allclose(embedder(images), reference, rtol=1e-5, atol=1e-5)


def test_unknown_colour_order_is_an_error(tmp_path) -> None:
    path, _ = _checkpoint(tmp_path, {"input_colour": "grb"})
    with pytest.raises(EvalError, match="rgb or bgr"):
        load_model(path)
