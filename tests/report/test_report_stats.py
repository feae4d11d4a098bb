"""Report statistics and the published-table audit, against independent references."""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction
from statistics import NormalDist

import numpy as np
import pytest
import yaml

from bench.catalog import STANDARD_TARGETS, PublishedResult, load_catalog
from bench.core.paths import default_catalog_path
from bench.eval.protocol import kfold_splits, verify
from bench.report import audit, stats


@pytest.mark.parametrize("p", [0.6, 0.9, 0.975, 0.995])
def test_t_quantile_matches_closed_forms(p):
    # df=1 is the Cauchy distribution; df=2 has the closed form (2p-1)/sqrt(2p(1-p)).
    assert stats.t_quantile(p, 1) == pytest.approx(math.tan(math.pi * (p - 0.5)), rel=1e-9)
    assert stats.t_quantile(p, 2) == pytest.approx(
        (2 * p - 1) / math.sqrt(2 * p * (1 - p)), rel=1e-9
    )
    assert stats.t_quantile(1 - p, 2) == pytest.approx(-stats.t_quantile(p, 2), rel=1e-12)
    # Large df tends to the normal quantile.
    assert stats.t_quantile(p, 1e7) == pytest.approx(NormalDist().inv_cdf(p), abs=1e-5)


@pytest.mark.parametrize("df,printed", [(4, 2.776), (9, 2.262), (19, 2.093), (30, 2.042)])
def test_t_quantile_matches_printed_tables(df, printed):
    # Two-sided 95% critical values as printed (3 decimals) in standard t tables.
    assert round(stats.t_quantile(0.975, df), 3) == printed


def test_mean_ci_uses_sample_std_and_t():
    values = [90.0, 91.0, 92.5]
    mean, half = stats.mean_ci(values)
    sample_sd = math.sqrt(sum((v - sum(values) / 3) ** 2 for v in values) / 2)
    t_2 = 0.95 / math.sqrt(2 * 0.975 * 0.025)  # closed form, df = 2
    assert mean == pytest.approx(sum(values) / 3)
    assert half == pytest.approx(t_2 * sample_sd / math.sqrt(3), rel=1e-9)
    assert stats.mean_ci([88.0]) == (88.0, 0.0)


def test_mcnemar_exact_by_hand():
    # n = 10 discordant pairs, 1 vs 9: P(X <= 1) = (1 + 10) / 2^10, two-sided doubles it.
    assert stats.mcnemar_exact(1, 9) == pytest.approx(22 / 1024, rel=1e-12)
    assert stats.mcnemar_exact(9, 1) == stats.mcnemar_exact(1, 9)
    assert stats.mcnemar_exact(0, 0) == 1.0
    assert stats.mcnemar_exact(5, 5) == 1.0  # doubled tail above 1 is capped


def test_mcnemar_exact_large_counts_against_fractions():
    only_a, only_b = 80, 120
    n = only_a + only_b
    exact = 2 * sum(Fraction(math.comb(n, k), 2**n) for k in range(only_a + 1))
    assert stats.mcnemar_exact(only_a, only_b) == pytest.approx(float(exact), rel=1e-9)


@pytest.mark.parametrize("pairs", [6000, 7000, 803, 10])
def test_fold_ids_match_kfold_split(pairs):
    folds = stats.fold_ids(pairs)
    for fold, (_, test) in enumerate(kfold_splits(pairs, 10)):
        assert np.array_equal(np.flatnonzero(folds == fold), test)


def test_pair_correct_reproduces_verify_fold_accuracies():
    rng = np.random.default_rng(3)
    issame = rng.random(1003) < 0.5
    first = rng.standard_normal((1003, 16))
    second = np.where(issame[:, None], first, rng.standard_normal((1003, 16)))
    embeddings = np.empty((2006, 16))
    embeddings[0::2], embeddings[1::2] = first, second + 0.8 * rng.standard_normal((1003, 16))
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    metrics = verify(embeddings, issame)
    correct = stats.pair_correct(metrics["scores"], issame, metrics["fold_thresholds"])
    folds = stats.fold_ids(issame.size)
    per_fold = [correct[folds == f].mean() for f in range(10)]
    assert per_fold == pytest.approx(metrics["fold_accuracies"], abs=1e-12)


def test_compare_rows_mcnemar_and_bootstrap():
    rng = np.random.default_rng(0)
    good = rng.random((1, 500)) < 0.95
    bad = rng.random((1, 500)) < 0.6
    identical = stats.compare_rows([good], [good.copy()])
    assert identical.method == "mcnemar" and identical.p_value == 1.0 and identical.tied
    different = stats.compare_rows([good], [bad])
    only_a = int(np.sum(good & ~bad))
    only_b = int(np.sum(~good & bad))
    assert (different.only_a, different.only_b) == (only_a, only_b)
    assert different.p_value == pytest.approx(stats.mcnemar_exact(only_a, only_b))
    assert not different.tied
    seeds_good = rng.random((3, 500)) < 0.95
    seeds_bad = rng.random((3, 500)) < 0.6
    assert stats.compare_rows([seeds_good], [seeds_bad]).method == "bootstrap"
    assert stats.compare_rows([seeds_good], [seeds_bad]).p_value < 0.01
    assert stats.compare_rows([seeds_good], [seeds_good.copy()]).p_value == 1.0


def _expected_mismatches() -> set[tuple[str, str]]:
    """Independent arithmetic on the raw YAML: printed mean vs mean of five cells (Decimal)."""
    document = yaml.safe_load(default_catalog_path().read_text(encoding="utf-8"))
    flagged = set()
    for name, body in document["training"].items():
        for item in body.get("published", []):
            cells = item.get("scores", {})
            if "printed_mean" not in item or len(cells) != 5:
                continue
            mean = sum(Decimal(str(v)) for v in cells.values()) / 5
            if abs(Decimal(str(item["printed_mean"])) - mean) > Decimal("0.005"):
                flagged.add((name, item["source"]))
    return flagged


def test_audit_flags_exactly_the_inconsistent_registry_averages():
    expected = _expected_mismatches()
    assert expected, "the registry is known to hold at least one inconsistent average"
    entries = audit.audit_published(load_catalog())
    assert {(e.dataset, e.source) for e in entries if e.flagged} == expected
    total = sum(len(t.published) for t in load_catalog().training.values())
    assert len(entries) == total  # every published source is audited or said not auditable


@pytest.mark.parametrize("offset,flagged", [(0.004, False), (0.006, True), (-0.0049, False)])
def test_audit_tolerance_is_half_the_last_digit(offset, flagged):
    scores = dict(zip(STANDARD_TARGETS, [99.0, 90.0, 91.0, 92.0, 88.0], strict=True))
    item = PublishedResult("s", "", "r", scores, printed_mean=92.0 + offset)
    assert audit._audit_one("x", item).flagged is flagged
    partial = PublishedResult("s", "", "r", {"lfw": 99.0}, printed_mean=50.0)
    assert audit._audit_one("x", partial).status == "not auditable"
