"""IJB scoring against loop transcriptions of the reference (ijb_reference.py): template pooling
bitwise, 1:1 TAR@FAR and AUC, corrected 1:N, every flag combination, on generated cases."""

from __future__ import annotations

import itertools
from pathlib import Path

import ijb_reference as ref
import numpy as np
import pytest

from bench.core.errors import EvalError
from bench.eval.ijb import identify, verify
from bench.eval.ijb.package import TARGETS, IJBPackage, Subjects
from bench.eval.ijb.run import score
from bench.eval.ijb.templates import ScoringFlags, image_features, pool_templates

FLAGS = [ScoringFlags(*combo) for combo in itertools.product((True, False), repeat=3)]
REFERENCE_FPIRS = [([10**e for e in np.arange(-4, 0, 4 / 100)] + [1])[i] for i in (0, 25, 50, 75)]


def make_case(seed: int, subjects: int = 30, dim: int = 8) -> dict:
    """Per-image features of templates of stills and video frames; 1:1 pairs; 1:N files."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((subjects, dim))
    rows, template_subject, media = [], {}, 100
    template = 7  # ids neither dense nor starting at 0, like IJB's
    for subject in range(subjects):
        for _ in range(rng.integers(2, 5)):
            template += int(rng.integers(1, 4))
            template_subject[template] = subject + 1
            for _ in range(rng.integers(1, 4)):
                media += int(rng.integers(1, 3))
                for _ in range(rng.integers(1, 4) if rng.random() < 0.5 else 1):
                    rows.append((template, media, subject))
    rng.shuffle(rows)  # frames of one media are not contiguous in the meta files
    templates = np.array([r[0] for r in rows], dtype=np.int64)
    medias = np.array([r[1] for r in rows], dtype=np.int64)
    own = centres[[r[2] for r in rows]]
    noise = lambda: 1.2 * rng.standard_normal(own.shape)  # noqa: E731
    features = np.concatenate([own + noise(), own + noise()], axis=1).astype(np.float32)
    ids = np.array(sorted(template_subject))
    first, second = np.triu_indices(len(ids), k=1)
    labels = np.array(
        [
            template_subject[ids[a]] == template_subject[ids[b]]
            for a, b in zip(first, second, strict=False)
        ]
    )
    pairs = np.stack([ids[first], ids[second], labels.astype(np.int64)], axis=1)
    return {
        "templates": templates,
        "medias": medias,
        "features": features,
        "scores": rng.uniform(0.1, 1.0, len(rows)).astype(np.float32),
        "pairs": pairs,
        "template_subject": template_subject,
    }


def test_pooling_is_bitwise_the_reference_loop():
    case = make_case(0)
    for flags in FLAGS:
        feats = image_features(case["features"], case["scores"], flags)
        expected_feats = ref.process_embeddings(
            case["features"], case["scores"], flags.flip, flags.image_norm, flags.detector_score
        )
        np.testing.assert_array_equal(feats, expected_feats)
        pooled = pool_templates(feats, case["templates"], case["medias"])
        expected, ids, _ = ref.image2template_feature(feats, case["templates"], case["medias"])
        np.testing.assert_array_equal(pooled.ids, ids)
        np.testing.assert_array_equal(pooled.features, expected)


def test_roc_matches_sklearn_transcription_with_ties():
    rng = np.random.default_rng(3)
    for trial in range(20):
        labels = rng.integers(0, 2, 400)
        scores = rng.integers(0, 25, 400).astype(np.float64) / 7.0  # many tied scores
        if trial % 2:
            scores = rng.standard_normal(400) + labels
        fpr, tpr, thresholds = ref.roc_curve(labels, scores)
        curve = verify.roc_curve(labels, scores)
        np.testing.assert_allclose(curve.fpr, fpr, rtol=0, atol=1e-15)
        np.testing.assert_allclose(curve.tpr, tpr, rtol=0, atol=1e-15)
        np.testing.assert_array_equal(curve.thresholds, thresholds)
        tars, area = ref.tar_at_fars(labels, scores)
        metrics = verify.verification_metrics(verify.roc_curve(labels, scores))
        assert list(metrics["tar_at_far"].values()) == pytest.approx(tars, abs=1e-12)
        assert metrics["auc"] == pytest.approx(area, abs=1e-12)


def test_pair_scores_both_strategies_match_the_loop():
    rng = np.random.default_rng(5)
    features = rng.standard_normal((50, 6))
    first, second = rng.integers(0, 50, 3000), rng.integers(0, 50, 3000)  # block products
    expected = np.array(
        [np.sum(features[a] * features[b]) for a, b in zip(first, second, strict=False)]
    )
    np.testing.assert_allclose(verify.pair_scores(features, first, second), expected, atol=1e-12)
    sparse_first, sparse_second = first[:40], second[:40]  # gathered row by row
    np.testing.assert_allclose(
        verify.pair_scores(features, sparse_first, sparse_second), expected[:40], atol=1e-12
    )


def _identification_case(seed: int, gallery: int = 60, mated: int = 500, non_mated: int = 2000):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((gallery + non_mated, 16))
    gallery_ids = rng.permutation(np.arange(1000, 1000 + gallery))
    gallery_feats = ref.sklearn_normalize(
        centres[:gallery] + 0.3 * rng.standard_normal((gallery, 16))
    )
    mates = rng.integers(0, gallery, mated)
    probe_centres = np.concatenate([centres[mates], centres[gallery:]])
    probe_feats = ref.sklearn_normalize(
        probe_centres + 0.9 * rng.standard_normal(probe_centres.shape)
    )
    probe_ids = np.concatenate([gallery_ids[mates], np.arange(5000, 5000 + non_mated)])
    order = rng.permutation(len(probe_ids))
    return probe_feats[order], probe_ids[order], gallery_feats, gallery_ids


def test_identification_matches_the_corrected_reference():
    probe_feats, probe_ids, gallery_feats, gallery_ids = _identification_case(1)
    top1, top5, top10, recalls, positives = ref.evaluation_1n(
        probe_feats, gallery_feats, probe_ids, gallery_ids, REFERENCE_FPIRS
    )
    metrics = identify.identification_metrics(
        identify.search_scores(probe_feats, probe_ids, gallery_feats, gallery_ids)
    )
    assert metrics["top1"] == top1 / positives
    assert metrics["top5"] == top5 / positives
    assert metrics["top10"] == top10 / positives
    assert list(metrics["tpir_at_fpir"].values()) == recalls
    assert identify.FPIRS == tuple(REFERENCE_FPIRS)
    assert 0 < metrics["top1"] < metrics["top10"] < 1 and 0 < recalls[0] < recalls[-1] < 1


def _package(case: dict) -> IJBPackage:
    subject = case["template_subject"]
    ids = np.array(sorted(subject))
    galleries, probes = {}, []
    for name, part in zip(("G1", "G2"), (0, 1), strict=False):
        chosen = [
            t
            for t in ids
            if subject[t] % 2 == part and t == min(u for u in ids if subject[u] == subject[t])
        ]
        galleries[name] = Subjects(
            Path(name), np.array(chosen), np.array([subject[t] for t in chosen])
        )
        probes += [t for t in ids if subject[t] % 2 == part and t not in chosen]
    probes = np.array(probes)
    return IJBPackage(
        root=Path("."),
        target=TARGETS["ijbc"],
        image_dir=Path("."),
        image_names=[f"{i}.jpg" for i in range(len(case["templates"]))],
        templates=case["templates"],
        medias=case["medias"],
        landmarks=np.zeros((len(case["templates"]), 5, 2), np.float32),
        detector_scores=case["scores"],
        pairs_path=Path("pairs.txt"),
        pairs=case["pairs"],
        galleries=galleries,
        probes=Subjects(Path("probes"), probes, np.array([subject[t] for t in probes])),
    )


@pytest.mark.parametrize("flags", FLAGS, ids=lambda flags: flags.name)
def test_whole_scoring_matches_the_reference_for_every_flag(flags):
    case = make_case(11)
    package = _package(case)
    scored = score(package, case["features"], flags)
    feats = ref.process_embeddings(
        case["features"], case["scores"], flags.flip, flags.image_norm, flags.detector_score
    )
    template_feats, ids, _ = ref.image2template_feature(feats, case["templates"], case["medias"])
    pair_scores = ref.verification(template_feats, ids, case["pairs"][:, 0], case["pairs"][:, 1])
    tars, area = ref.tar_at_fars(case["pairs"][:, 2], pair_scores)
    assert list(scored.verification["tar_at_far"].values()) == pytest.approx(tars, abs=1e-9)
    assert scored.verification["auc"] == pytest.approx(area, abs=1e-9)
    counts, recalls = np.zeros(3), []
    for name, gallery in package.galleries.items():
        g_feats, _, g_ids = ref.image2template_feature(
            feats, case["templates"], case["medias"], gallery.templates, gallery.subjects
        )
        p_feats, _, p_ids = ref.image2template_feature(
            feats,
            case["templates"],
            case["medias"],
            package.probes.templates,
            package.probes.subjects,
        )
        top1, top5, top10, recall, positives = ref.evaluation_1n(
            p_feats, g_feats, p_ids, g_ids, REFERENCE_FPIRS
        )
        ours = scored.identification["galleries"][name]
        assert (ours["top1"], ours["top5"], ours["top10"]) == (
            top1 / positives,
            top5 / positives,
            top10 / positives,
        )
        assert list(ours["tpir_at_fpir"].values()) == recall
        counts += (top1, top5, top10)
        recalls.append(recall)
    mean = scored.identification["mean"]
    assert [mean["top1"], mean["top5"], mean["top10"]] == list(
        counts / len(package.probes.templates)
    )
    assert list(mean["tpir_at_fpir"].values()) == list(
        (np.array(recalls[0]) + np.array(recalls[1])) / 2
    )


def test_unknown_template_in_pairs_is_an_error():
    case = make_case(2)
    case["pairs"][5, 1] = 999_999
    with pytest.raises(EvalError, match=r"pairs.txt line 6: template 999999"):
        score(_package(case), case["features"], ScoringFlags())


def test_unknown_template_in_a_1n_file_names_its_csv_line():
    case = make_case(2)
    package = _package(case)
    probes = package.probes
    templates = probes.templates.copy()
    templates[3] = 777_777
    broken = Subjects(probes.path, templates, probes.subjects)
    package = IJBPackage(**{**package.__dict__, "probes": broken})
    with pytest.raises(EvalError, match=r"probes line 5: template 777777"):
        score(package, case["features"], ScoringFlags())


def test_one_template_per_gallery_subject():
    with pytest.raises(EvalError, match="one template per subject"):
        identify.search_scores(np.eye(3), np.array([1, 2, 3]), np.eye(3), np.array([1, 1, 2]))
