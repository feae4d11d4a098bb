"""The layout's rules, checked: imports flow one way (import-linter contract in pyproject.toml),
a non-editable install finds the registry and the recipes, and training and evaluation feed a
model the same tensor for the same image (one normalisation)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import REPO
from torch import nn

from bench.eval.embed import ModelInfo, TorchEmbedder
from bench.train.step import to_model_input

BIN = Path(sys.executable).parent


def test_import_layers_contract_is_kept():
    done = subprocess.run(
        [str(BIN / "lint-imports")], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "BROKEN" not in done.stdout and "Contracts: 2 kept, 0 broken." in done.stdout


class _Recorder(nn.Module):
    """Remembers every input it sees; returns a fixed-size embedding."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.clone())
        return x.flatten(1)[:, :8]


def test_training_and_evaluation_feed_the_model_the_same_tensor():
    image = np.random.default_rng(0).integers(0, 256, (1, 112, 112, 3), dtype=np.uint8)
    recorder = _Recorder()
    TorchEmbedder(recorder, ModelInfo("recorder", "", "checkpoint")).views(image)
    plain, mirrored = recorder.seen
    for flip, seen in ((False, plain), (True, mirrored)):
        trained = to_model_input(
            torch.from_numpy(image), torch.tensor([flip]), torch.device("cpu"), False
        )
        assert torch.equal(trained, seen)
        assert seen.is_contiguous()  # NCHW, not a permuted NHWC view


@pytest.mark.slow
def test_a_non_editable_install_finds_the_registry_and_the_recipes(tmp_path):
    """`pip install .` (a wheel, no checkout): datasets.yaml and configs/ travel as package data."""
    wheels = tmp_path / "wheels"
    subprocess.run(
        [str(BIN / "python"), "-m", "pip", "wheel", str(REPO), "--no-deps",
         "--no-build-isolation", "-q", "-w", str(wheels)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    site = tmp_path / "site"
    with zipfile.ZipFile(next(wheels.glob("facebench-*.whl"))) as wheel:
        wheel.extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("BENCH_CATALOG", None)

    def bench(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(BIN / "python"), "-m", "bench", *argv],
            cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip

    listing = bench("datasets")
    assert listing.returncode == 0, listing.stderr
    assert str(site / "bench" / "resources" / "datasets.yaml") in listing.stdout
    assert "ms1mv2" in listing.stdout
    # Resolving the registry entry and its recipe works; only the (absent) data stops it.
    training = bench("train", "demo_diverse")
    assert training.returncode != 0 and "is registered but not prepared" in training.stderr
