"""Margin losses and the Partial FC head, against hand computations and a plain full softmax."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from bench.core.errors import CatalogError, ConfigError
from losses import CombinedMargin, build_head, build_loss, loss_names, sample_centres

S = 64.0


def _cosines() -> tuple[torch.Tensor, torch.Tensor]:
    cosine = torch.tensor([[0.9, 0.1, -0.3], [0.2, 0.5, 0.4], [-0.95, 0.0, 0.3]])
    return cosine, torch.tensor([0, 1, 0])


def test_arcface_target_is_s_cos_theta_plus_m_and_others_s_cos() -> None:
    cosine, labels = _cosines()
    logits = build_loss("arcface")(cosine, labels)
    for row, label in enumerate(labels.tolist()):
        for column in range(cosine.shape[1]):
            c = cosine[row, column].item()
            if column != label:
                expected = S * c
            else:  # cos(theta + m) over the whole range, as current arcface_torch
                expected = S * math.cos(math.acos(c) + 0.5)
            assert logits[row, column].item() == pytest.approx(expected, abs=1e-4)


def test_cosface_target_is_s_cos_minus_m() -> None:
    cosine, labels = _cosines()
    logits = build_loss("cosface")(cosine, labels)
    expected = cosine * S
    expected[torch.arange(3), labels] = (cosine[torch.arange(3), labels] - 0.4) * S
    torch.testing.assert_close(logits, expected)


def test_combined_margin_with_m1_matches_formula() -> None:
    margin = CombinedMargin(S, 1.5, 0.2, 0.1)
    cosine = torch.tensor([[0.8, 0.3]])
    logits = margin(cosine, torch.tensor([0]))
    expected = S * (math.cos(1.5 * math.acos(0.8) + 0.2) - 0.1)
    assert logits[0, 0].item() == pytest.approx(expected, abs=1e-4)
    assert logits[0, 1].item() == pytest.approx(S * 0.3, abs=1e-5)


def test_label_minus_one_gets_no_margin() -> None:
    cosine = torch.tensor([[0.7, 0.2], [0.1, 0.6]])
    logits = build_loss("arcface")(cosine, torch.tensor([-1, 1]))
    torch.testing.assert_close(logits[0], cosine[0] * S)
    assert logits[1, 1].item() == pytest.approx(S * math.cos(math.acos(0.6) + 0.5), abs=1e-4)


@pytest.mark.parametrize(
    "margin",
    [
        build_loss("arcface"),
        build_loss("cosface"),
        build_loss("softmax"),
        CombinedMargin(S, 1.2, 0.5, 0.0),  # m1 != 1: the fallback must meet the curve at -1
        CombinedMargin(S, 2.0, 0.1, 0.1),
        CombinedMargin(S, 0.8, 0.3, 0.0),  # never reaches pi: no fallback at all
    ],
    ids=["arcface", "cosface", "softmax", "m1=1.2", "m1=2", "m1=0.8"],
)
def test_target_logit_is_monotonic_and_continuous_in_theta(margin: CombinedMargin) -> None:
    # m1 = 1 follows cos(theta + m2) everywhere, as arcface_torch: decreasing up to pi - m2 only.
    end = math.pi - margin.m2 if margin.m1 == 1.0 else math.pi
    cos_target = torch.cos(torch.linspace(0.0, end, 20001))
    values = margin.target_logit(cos_target)
    assert (values[1:] <= values[:-1] + 1e-6).all()
    assert (values[:-1] - values[1:]).max() < 0.01  # no jump


@pytest.mark.parametrize(
    "margin",
    [CombinedMargin(S, 1, 0.5, 0), CombinedMargin(S, 1, 0, 0.4), CombinedMargin(S, 2, 0.1, 0.1)],
)
def test_gradient_finite_at_cos_plus_minus_one(margin: CombinedMargin) -> None:
    cosine = torch.tensor([[1.0, -1.0], [-1.0, 1.0], [1.0, 1.0]], requires_grad=True)
    labels = torch.tensor([0, 0, 1])
    loss = F.cross_entropy(margin(cosine, labels), labels)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(cosine.grad).all()


@pytest.mark.parametrize("name", loss_names())
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_head_under_autocast_is_finite_and_close_to_float32(name: str, dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    margins = (1.0, 0.3, 0.2) if name == "combined" else None
    head = build_head(name, 32, 50, margins=margins)
    embeddings = torch.randn(8, 32, requires_grad=True)
    labels = torch.randint(0, 50, (8,))
    reference = head(embeddings, labels)
    with torch.autocast("cpu", dtype=dtype):
        loss = head(embeddings.to(dtype), labels)
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert torch.isfinite(embeddings.grad).all() and torch.isfinite(head.weight.grad).all()
    assert loss.item() == pytest.approx(reference.item(), rel=0.05)


def _full_softmax_reference(head, embeddings, labels, weight=None) -> torch.Tensor:
    """Independent ArcFace loss: normalise, matmul, hand margin on the target, cross-entropy."""
    weight = head.weight if weight is None else weight
    cosine = F.normalize(embeddings) @ F.normalize(weight).t()
    rows = torch.arange(len(labels))
    theta = torch.acos(cosine[rows, labels].clamp(-1, 1))
    logits = cosine.clone()
    logits[rows, labels] = torch.cos(theta + 0.5)
    return F.cross_entropy(S * logits, labels)


def test_partial_fc_rate_one_equals_full_softmax() -> None:
    torch.manual_seed(0)
    head = build_head("arcface", 16, 40, sample_rate=1.0).train()
    embeddings, labels = torch.randn(12, 16), torch.randint(0, 40, (12,))
    head.weight.data.copy_(torch.randn(40, 16))  # well-separated from the 0.01 init
    torch.testing.assert_close(
        head(embeddings, labels), _full_softmax_reference(head, embeddings, labels)
    )


def test_partial_fc_sampled_loss_is_the_softmax_over_the_sampled_centres() -> None:
    torch.manual_seed(0)
    head = build_head("arcface", 16, 100, sample_rate=0.25).train()
    embeddings, labels = torch.randn(10, 16), torch.randint(0, 100, (10,))
    torch.manual_seed(5)
    index, local = sample_centres(labels, 100, head.num_sample)
    torch.manual_seed(5)
    loss = head(embeddings, labels)
    reference = _full_softmax_reference(head, embeddings, local, weight=head.weight[index])
    torch.testing.assert_close(loss, reference)
    loss.backward()
    touched = head.weight.grad.abs().sum(1) > 0
    assert set(torch.nonzero(touched).flatten().tolist()) <= set(index.tolist())
    assert set(labels.tolist()) <= set(torch.nonzero(touched).flatten().tolist())


def test_sample_centres_keeps_positives_and_count() -> None:
    torch.manual_seed(3)
    labels = torch.tensor([5, 17, 17, 99, 0])
    index, local = sample_centres(labels, 100, 30)
    assert index.numel() == 30 and index.unique().numel() == 30
    assert set(labels.tolist()) <= set(index.tolist())
    assert torch.equal(index[local], labels)
    assert torch.equal(index, index.sort().values)


def test_sample_centres_keeps_all_positives_when_they_exceed_the_budget() -> None:
    labels = torch.arange(20)
    index, local = sample_centres(labels, 100, 10)
    assert torch.equal(index, labels) and torch.equal(index[local], labels)


def test_head_sample_count_and_eval_uses_all_centres() -> None:
    torch.manual_seed(0)
    head = build_head("cosface", 8, 1000, sample_rate=0.1)
    assert head.num_sample == 100
    embeddings, labels = torch.randn(4, 8), torch.randint(0, 1000, (4,))
    head.eval()
    cosine = F.normalize(embeddings) @ F.normalize(head.weight).t()
    logits = cosine.clone()
    logits[torch.arange(4), labels] -= 0.4
    torch.testing.assert_close(head(embeddings, labels), F.cross_entropy(S * logits, labels))


def test_bad_configuration_errors() -> None:
    with pytest.raises(CatalogError, match="arcface"):
        build_loss("arcfce")
    with pytest.raises(ConfigError, match="sample_rate"):
        build_head("arcface", 8, 10, sample_rate=0.0)
    with pytest.raises(ConfigError, match="margins"):
        build_loss("combined")
    with pytest.raises(ConfigError, match="m2"):
        CombinedMargin(64.0, 1.0, 4.0, 0.0)
