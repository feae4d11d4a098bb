"""THE input normalisation: uint8 RGB NHWC -> float (N,3,H,W) in [-1, 1], insightface's exact
float ops ((x / 255) - 0.5) / 0.5. Training (bench.train.step.to_model_input) and evaluation
(bench.eval.embed) both call `normalise`, so a model always sees in evaluation what it saw in
training; a test feeds one image through both paths and compares the tensors."""

from __future__ import annotations

import torch


def normalise(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N,H,W,3) RGB -> contiguous float32 (N,3,H,W) in [-1, 1] on the same device.

    Contiguous NCHW: a permuted NHWC tensor is channels_last-strided by accident; callers that
    want channels_last (a CUDA speed lever) ask for it explicitly."""
    x = images.permute(0, 3, 1, 2).float()
    return (((x / 255) - 0.5) / 0.5).contiguous()
