"""AdaFace against a per-sample loop transcription of the paper's formula (Kim et al. 2022, eqs.
7-11), including the EMA batch statistics of the feature norms across several steps."""

from __future__ import annotations

import math
import statistics

import pytest
import torch

from bench.core.errors import ConfigError
from losses import AdaFaceMargin, build_head, build_loss

EPS = 1e-3


class PaperAdaFace:
    """Plain-Python AdaFace: mu/sigma EMA (initial 20 / 100), s_hat, g_angle, g_add."""

    def __init__(self, s=64.0, m=0.4, h=0.333, alpha=0.01) -> None:
        self.s, self.m, self.h, self.alpha = s, m, h, alpha
        self.mu, self.sigma = 20.0, 100.0

    def __call__(self, cosine: list[list[float]], labels: list[int], norms: list[float]):
        norms = [min(max(n, 1e-3), 100.0) for n in norms]
        self.mu = self.alpha * statistics.mean(norms) + (1 - self.alpha) * self.mu
        self.sigma = self.alpha * statistics.stdev(norms) + (1 - self.alpha) * self.sigma
        logits = []
        for row, label, norm in zip(cosine, labels, norms, strict=True):
            s_hat = min(max(self.h * (norm - self.mu) / (self.sigma + EPS), -1.0), 1.0)
            out = []
            for column, c in enumerate(row):
                c = min(max(c, -1 + EPS), 1 - EPS)
                if column == label:
                    angle = min(max(math.acos(c) - self.m * s_hat, EPS), math.pi - EPS)
                    c = math.cos(angle) - (self.m * s_hat + self.m)
                out.append(self.s * c)
            logits.append(out)
        return logits


def _batch(seed: int, rows: int = 6, classes: int = 5):
    generator = torch.Generator().manual_seed(seed)
    cosine = torch.rand(rows, classes, generator=generator, dtype=torch.float64) * 2 - 1
    cosine[0, 0] = 1.0  # the clamps at +-1 are exercised
    cosine[1, 2] = -1.0
    labels = torch.randint(0, classes, (rows,), generator=generator)
    labels[0], labels[1] = 0, 2
    # Spread wide enough that s_hat hits both clip limits once the EMA has moved.
    norms = torch.rand(rows, generator=generator, dtype=torch.float64) * 60 + 0.5
    norms[2] = 150.0  # above AdaFace's clip of 100
    return cosine, labels, norms


def test_matches_the_paper_formula_with_batch_statistics_over_steps() -> None:
    margin = AdaFaceMargin(s=64.0, m=0.4, h=0.333, t_alpha=0.3).double().train()
    reference = PaperAdaFace(alpha=0.3)
    for step in range(5):
        cosine, labels, norms = _batch(step)
        logits = margin(cosine, labels, norms)
        expected = reference(cosine.tolist(), labels.tolist(), norms.tolist())
        torch.testing.assert_close(logits, torch.tensor(expected, dtype=torch.float64))
        assert margin.batch_mean.item() == pytest.approx(reference.mu, rel=1e-12)
        assert margin.batch_std.item() == pytest.approx(reference.sigma, rel=1e-12)


def test_low_norm_gets_arcface_margin_mean_norm_cosface_high_norm_shifted() -> None:
    margin = AdaFaceMargin(m=0.4, h=1.0, t_alpha=1.0).double().train()
    cosine = torch.tensor([[0.5, 0.0], [0.5, 0.0], [0.5, 0.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 0])
    # With t_alpha 1 the statistics are this batch's: mean 20, std 10 -> s_hat ~1, 0, ~-1.
    logits = margin(cosine, labels, torch.tensor([30.0, 20.0, 10.0], dtype=torch.float64)) / 64
    theta = math.acos(0.5)
    assert logits[0, 0].item() == pytest.approx(math.cos(theta - 0.4) - 0.8, abs=1e-3)
    assert logits[1, 0].item() == pytest.approx(math.cos(theta) - 0.4, abs=1e-9)  # CosFace
    assert logits[2, 0].item() == pytest.approx(math.cos(theta + 0.4), abs=1e-3)  # ArcFace
    assert (logits[:, 1] == 0.0).all()


def test_statistics_frozen_in_eval_mode_and_saved_in_state_dict() -> None:
    margin = AdaFaceMargin().train()
    cosine, labels, norms = _batch(0)
    margin(cosine.float(), labels, norms.float())
    state = {k: v.clone() for k, v in margin.state_dict().items()}
    assert set(state) == {"batch_mean", "batch_std"} and state["batch_mean"].item() != 20.0
    margin.eval()
    margin(cosine.float(), labels, norms.float())
    assert margin.batch_mean.item() == state["batch_mean"].item()


def test_label_minus_one_gets_no_margin() -> None:
    margin = AdaFaceMargin()
    cosine = torch.tensor([[0.7, 0.2], [0.1, 0.6]])
    logits = margin(cosine, torch.tensor([-1, 1]), torch.tensor([10.0, 30.0]))
    torch.testing.assert_close(logits[0], cosine[0] * 64)
    assert logits[1, 1].item() != pytest.approx(0.6 * 64)


def test_head_feeds_embedding_norms_and_gradients_are_finite() -> None:
    torch.manual_seed(0)
    head = build_head("adaface", 16, 10, loss_kwargs={"m": 0.4, "h": 0.333}).train()
    embeddings = (torch.randn(8, 16) * 5).requires_grad_()
    labels = torch.randint(0, 10, (8,))
    loss = head(embeddings, labels)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(embeddings.grad).all()
    norms = embeddings.detach().norm(dim=1)
    expected_mean = 0.99 * 20.0 + 0.01 * norms.mean().item()
    assert head.margin.batch_mean.item() == pytest.approx(expected_mean, rel=1e-5)


def test_invalid_parameters_raise() -> None:
    with pytest.raises(ConfigError, match="t_alpha"):
        build_loss("adaface", t_alpha=0.0)
    with pytest.raises(ConfigError, match="adaface"):
        build_loss("adaface", s=-1.0)
    assert isinstance(build_loss("adaface"), AdaFaceMargin)
