"""Dataset diagnostics on the demo generator: diversity knob, planted leaks, cards, the CLI."""

from __future__ import annotations

import hashlib
import itertools
import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from helpers import Records
from PIL import Image

from bench.demo.render import render_image
from bench.diagnostics import leakage as diag_leakage
from bench.diagnostics import stats as diag_stats
from bench.diagnostics.run import Options, diagnose
from bench.report.cards import dataset_cards

SIMILARITY = 0.3
EVAL_SEED, TRAIN_SEED = 101, 11


@cache
def _render(seed: int, identity: int, image: int, diversity: float) -> np.ndarray:
    return render_image(seed, identity, image, diversity, SIMILARITY)


def _set(seed, identities, images, diversity, first_image=0):
    pictures = [
        _render(seed, i, j, diversity)
        for i in identities
        for j in range(first_image, first_image + images)
    ]
    return pictures, [n for n in range(len(identities)) for _ in range(images)]


def pixel_embedder(images: np.ndarray) -> np.ndarray:
    """A fixed, non-learned embedder: the face region, grey, 4x4-pooled, mean-removed."""
    x = images[:, 16:96, 24:88].astype(np.float32).mean(axis=3)
    x = x.reshape(len(x), 20, 4, 16, 4).mean(axis=(2, 4)).reshape(len(x), -1)
    return x - x.mean(axis=1, keepdims=True)


class OracleEmbedder:
    """Stands in for a trained recogniser: knows which demo person an image shows (by its pixel
    hash) and returns that person's direction plus an image-dependent nuisance component."""

    def __init__(self, dim: int = 32, noise: float = 0.6) -> None:
        self.people: dict[str, tuple[int, int]] = {}
        self.dim, self.noise = dim, noise
        self.projection = np.random.default_rng(0).standard_normal((320, dim)).astype(np.float32)

    def learn(self, seed: int, identity: int, image: np.ndarray) -> None:
        self.people[hashlib.sha1(image.tobytes()).hexdigest()] = (seed, identity)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        rows = []
        for image, nuisance in zip(images, pixel_embedder(images) @ self.projection, strict=True):
            seed, identity = self.people[hashlib.sha1(image.tobytes()).hexdigest()]
            person = np.random.default_rng([seed, identity]).standard_normal(self.dim)
            rows.append(
                person / np.linalg.norm(person) + self.noise * nuisance / np.linalg.norm(nuisance)
            )
        return np.asarray(rows, np.float32)


def _oracle_set(oracle, seed, identities, images, diversity, first_image=0):
    pictures, labels = _set(seed, identities, images, diversity, first_image)
    for picture, label in zip(pictures, labels, strict=True):
        oracle.learn(seed, identities[label], picture)
    return pictures, labels


def _eval_set(oracle, identities: int, diversity: float):
    """Verification layout: genuine pairs (images 0, 1 of a person), then impostor pairs."""
    images = []
    for i in range(identities):
        images += [_render(EVAL_SEED, i, 0, diversity), _render(EVAL_SEED, i, 1, diversity)]
    for i in range(identities):
        images += [
            _render(EVAL_SEED, i, 2, diversity),
            _render(EVAL_SEED, (i + 5) % identities, 3, diversity),
        ]
    for index, image in enumerate(images):
        pair, second = divmod(index, 2)
        person = pair if pair < identities else (pair - identities + 5 * second) % identities
        oracle.learn(EVAL_SEED, person, image)
    return np.stack(images), np.array([True] * identities + [False] * identities)


def test_diversity_knob_lowers_intra_class_similarity():
    means = {}
    for diversity in (0.1, 1.0):
        pictures, labels = _set(TRAIN_SEED, list(range(10)), 6, diversity)
        result = diagnose(
            "demo",
            Records(pictures, labels),
            pixel_embedder,
            None,
            options=Options(per_identity=None, workers=0),
        )
        means[diversity] = (
            result["intra_class"]["centre_similarity"]["mean"],
            result["intra_class"]["pair_similarity"]["mean"],
        )
        assert result["sample"] == {"images": 60, "identities": 10, "dataset_images": 60}
    assert means[1.0][0] < means[0.1][0] - 0.05
    assert means[1.0][1] < means[0.1][1] - 0.05


@pytest.fixture(scope="module")
def leak_setup():
    oracle = OracleEmbedder()
    eval_images, issame = _eval_set(oracle, 16, 0.5)
    clean = _oracle_set(oracle, TRAIN_SEED, list(range(24)), 4, 0.5)
    # The leak: six evaluation people, new photos of them (images 10..13), added as identities.
    leaked = _oracle_set(oracle, EVAL_SEED, list(range(6)), 4, 0.5, first_image=10)
    leaky = (clean[0] + leaked[0], clean[1] + [24 + label for label in leaked[1]])
    return oracle, eval_images, issame, clean, leaky


def test_planted_leak_is_flagged_and_clean_set_is_not(leak_setup, tmp_path):
    oracle, eval_images, issame, clean, leaky = leak_setup
    options = Options(per_identity=None, workers=0, query_chunk=7, centre_chunk=5, worst=64)
    targets = {"demo_random": (eval_images, issame)}
    clean_result = diagnose("clean", Records(*clean), oracle, tmp_path, targets, options=options)
    leaky_result = diagnose("leaky", Records(*leaky), oracle, tmp_path, targets, options=options)
    # The null-calibrated threshold (q = 0.99 of training images' nearest-other-centre
    # similarity) lets a clean set flag about 1% of its images: a couple here, not significant.
    clean_audit = clean_result["leakage"]["demo_random"]
    assert clean_audit["flagged"] <= 2 and not clean_audit["leak_detected"]
    audit = leaky_result["leakage"]["demo_random"]
    # Queries showing a leaked person: genuine-pair images of persons 0-5, impostor images too.
    persons = [p for i in range(16) for p in (i, i)] + [
        p for i in range(16) for p in (i, (i + 5) % 16)
    ]
    leaked_queries = {index for index, person in enumerate(persons) if person < 6}
    flagged = [match for match in audit["worst"] if match["similarity"] > audit["threshold"]]
    assert audit["leak_detected"] and audit["p_value"] < 1e-6
    assert audit["flagged"] >= len(leaked_queries) // 3
    # Leaked person n (n < 6) is training identity 24 + n in the leaky set.
    hits = [m for m in flagged if m["query"] in leaked_queries and m["identity"] >= 24]
    assert len(hits) >= 0.8 * len(flagged)
    assert all(persons[m["query"]] == m["identity"] - 24 for m in hits)
    assert audit["pairs"]["genuine_leaked"] >= 1
    assert (tmp_path / audit["contact_sheet"]).is_file()
    saved = json.loads((tmp_path / "leaky.json").read_text())
    assert (
        saved["schema_version"] == 1
        and saved["leakage"]["demo_random"]["flagged"] == (audit["flagged"])
    )


def test_training_set_against_training_set(leak_setup):
    oracle, _, _, clean, leaky = leak_setup
    source = _oracle_set(oracle, EVAL_SEED, list(range(16)), 4, 0.5, first_image=20)
    options = Options(per_identity=None, workers=0)
    against = {"source": Records(*source)}
    leaky_result = diagnose(
        "leaky", Records(*leaky), oracle, None, against=against, options=options
    )
    clean_result = diagnose(
        "clean", Records(*clean), oracle, None, against=against, options=options
    )
    # Two clean identities (20, 21) resemble source people under this stand-in embedder and are
    # flagged either way; the planted ones come on top of them.
    clean_flagged = set(clean_result["against"]["source"]["identities"]["flagged_identities"])
    assert len(clean_flagged) <= 2
    flagged = leaky_result["against"]["source"]["identities"]
    planted = set(flagged["flagged_identities"]) - clean_flagged
    assert 3 <= len(planted) <= 6 and planted <= set(range(24, 30))
    assert leaky_result["against"]["source"]["leak_detected"]


def test_sample_indices_are_seeded_and_capped():
    labels = np.repeat(np.arange(5), [1, 3, 7, 7, 2])[np.random.default_rng(1).permutation(20)]
    chosen = diag_stats.sample_indices(labels, 3, seed=4)
    counts = np.bincount(labels[chosen], minlength=5)
    np.testing.assert_array_equal(counts, np.minimum(np.bincount(labels), 3))
    np.testing.assert_array_equal(chosen, diag_stats.sample_indices(labels, 3, seed=4))
    assert not np.array_equal(chosen, diag_stats.sample_indices(labels, 3, seed=5))
    assert len(diag_stats.sample_indices(labels, None, seed=0)) == 20


def test_image_statistics_against_pil():
    colour = _render(TRAIN_SEED, 0, 0, 0.5)
    grey = np.repeat(np.asarray(Image.fromarray(colour).convert("L"))[:, :, None], 3, axis=2)
    blurred = np.asarray(Image.fromarray(colour).resize((28, 28)).resize((112, 112)))
    stats = diag_stats.image_statistics(np.stack([colour, grey, blurred]))
    assert stats["grayscale"].tolist() == [False, True, False]
    assert abs(stats["brightness"][0] - grey[:, :, 0].mean()) < 0.5
    assert stats["sharpness"][2] < stats["sharpness"][0]


def test_exact_and_near_duplicates_are_counted():
    pictures, labels = _set(TRAIN_SEED, [0, 1, 2], 3, 0.8)
    pictures[1] = pictures[0]  # within identity 0
    pictures[7] = pictures[3]  # identity 2 repeats an image of identity 1
    result = diagnose(
        "dups",
        Records(pictures, labels),
        pixel_embedder,
        None,
        options=Options(per_identity=None, workers=0),
    )
    assert result["near_duplicates"]["exact"]["within_identity"] == 1
    assert result["near_duplicates"]["exact"]["across_identities"] == 1
    assert result["near_duplicates"]["embedding"]["pairs"] >= 1


def test_cards_and_cli(tmp_path):
    """`bench diagnose` on image folders with a TorchScript embedder, then the report card."""
    torch = pytest.importorskip("torch")
    from bench.cli import main

    for name, seed in (("synthetic", TRAIN_SEED), ("source", EVAL_SEED)):
        for identity in range(4):
            folder = tmp_path / name / f"id{identity}"
            folder.mkdir(parents=True)
            for image in range(3):
                Image.fromarray(_render(seed, identity, image, 0.5)).save(folder / f"{image}.png")
    model = torch.jit.script(torch.nn.Sequential(torch.nn.AvgPool2d(8), torch.nn.Flatten()))
    model.save(str(tmp_path / "model.pt"))
    out = tmp_path / "diagnostics"
    code = main(
        [
            "diagnose",
            str(tmp_path / "synthetic"),
            "--model",
            str(tmp_path / "model.pt"),
            "--trust-model",  # TorchScript runs code: loaded only when trusted
            "--targets",
            "none",
            "--against",
            str(tmp_path / "source"),
            "--out",
            str(out),
            "--per-identity",
            "2",
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    result = json.loads((out / "synthetic.json").read_text())
    assert result["sample"]["images"] == 8 and "source" in result["against"]
    cards = dataset_cards(out, tmp_path / "report")
    assert [card["name"] for card in cards] == ["synthetic"]
    for image in cards[0]["images"]:
        assert (tmp_path / "report" / "cards" / image.split("/")[-1]).is_file()
        assert f"cards/{image.split('/')[-1]}" in cards[0]["markdown"]
    assert "<img" not in cards[0]["html"]


def test_rank_tail_is_the_exact_distribution_of_queries_above_a_null_order_statistic():
    """Brute force over every ordering of m queries among n null values (all equally likely when
    they are exchangeable): X = queries ranked above the (r+1)-th largest null value."""
    m, n = 4, 5
    for r in range(n):
        counts = np.zeros(m + 1)
        for positions in itertools.combinations(range(m + n), m):  # query ranks, largest first
            nulls_before = [rank - index for index, rank in enumerate(positions)]
            counts[sum(before <= r for before in nulls_before)] += 1
        exact = counts / counts.sum()
        tail = [diag_leakage.rank_tail(x, m, n, r) for x in range(m + 2)]
        assert np.allclose(np.diff(tail) * -1, exact)
        assert np.dot(np.arange(m + 1), exact) == pytest.approx(m * (r + 1) / (n + 1))


def test_leak_p_value_holds_its_level_on_clean_data_even_at_extreme_quantiles():
    """Queries drawn like the null: p < 0.01 about 1% of the time or less. A binomial at rate
    1 - q (the threshold taken as exact) gave p < 0.01 in 5% of these trials at q = 0.99 and 25%
    at q = 0.9999, where the threshold is the null's maximum."""
    rng = np.random.default_rng(0)
    for quantile in (0.99, 0.9999):
        p_values = [
            diag_leakage._flag_counts(rng.normal(size=400), rng.normal(size=500), quantile)[
                "p_value"
            ]
            for _ in range(400)
        ]
        assert np.mean(np.asarray(p_values) < 0.01) <= 0.025


def test_colliding_identities_are_drawn_and_reach_the_card(tmp_path):
    """Identity 5 is new photos of identity 0 under another label: the pair is the strongest
    collision, drawn with thumbnails, and the dataset card carries the sheet."""
    oracle = OracleEmbedder()
    pictures, labels = _oracle_set(oracle, TRAIN_SEED, list(range(5)), 3, 0.5)
    twin, _ = _oracle_set(oracle, TRAIN_SEED, [0], 3, 0.5, first_image=3)
    diagnostics = tmp_path / "diagnostics"
    result = diagnose(
        "twins",
        Records(pictures + twin, labels + [5, 5, 5]),
        oracle,
        diagnostics,
        options=Options(per_identity=None, workers=0),
    )
    inter = result["inter_class"]
    assert {inter["strongest_pairs"][0]["a"], inter["strongest_pairs"][0]["b"]} == {0, 5}
    sheet = diagnostics / inter["contact_sheet"]
    assert Image.open(sheet).size[1] > 112 * len(inter["strongest_pairs"][:8])
    cards = dataset_cards(diagnostics, tmp_path / "reports")
    assert any(Path(image).name == sheet.name for image in cards[0]["images"])
