"""The leakage audit with a REAL trained model (tests/fixtures/models/demo_diverse_ir18w8.pt, made
by tests/fixtures/make_demo_model.py): a clean training set drawn from demo_diverse is not
flagged against a demo_random-like evaluation set; the same set with new photos of 15 of the
evaluation people planted in it is."""

from __future__ import annotations

import dataclasses
import hashlib
from functools import cache

import numpy as np
import pytest
from helpers import REPO, Records

from bench.catalog import load_catalog
from bench.demo.data import make_eval_set, plan_pairs
from bench.demo.render import render_image
from bench.diagnostics import stats as diag_stats
from bench.diagnostics.run import Options, diagnose
from bench.formats import decode_image, encode_jpeg, load_bin

ROOT = REPO
MODEL = ROOT / "tests" / "fixtures" / "models" / "demo_diverse_ir18w8.pt"
CLEAN_IDENTITIES, IMAGES, PLANTED = 60, 6, 15
EVAL_IDENTITIES, EVAL_PAIRS = 40, 160
NEW_PHOTOS = 10_000  # image indices far above any evaluation slot: new photos, not copies


class CachedEmbedder:
    """The model, embedding each distinct image once (the clean images recur in the planted set)."""

    def __init__(self, embedder) -> None:
        self.embedder, self.seen = embedder, {}

    def __call__(self, images: np.ndarray) -> np.ndarray:
        keys = [hashlib.sha1(image.tobytes()).hexdigest() for image in images]
        new = [i for i, key in enumerate(keys) if key not in self.seen]
        if new:
            for i, row in zip(new, self.embedder(images[new], 128), strict=True):
                self.seen[keys[i]] = row
        return np.stack([self.seen[key] for key in keys])


@cache
def _photo(seed: int, identity: int, image: int, diversity: float, similarity: float):
    """One training image as the demo stores it (JPEG quality 95, decoded again)."""
    return decode_image(encode_jpeg(render_image(seed, identity, image, diversity, similarity), 95))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from bench.eval.embed import load_model

    catalog = load_catalog(ROOT / "datasets.yaml")
    train, target = catalog.training_set("demo_diverse"), catalog.evaluation["demo_random"]
    small = dataclasses.replace(
        target,
        pairs=EVAL_PAIRS,
        demo=dataclasses.replace(target.demo, identities=EVAL_IDENTITIES),
    )
    path = make_eval_set(small, tmp_path_factory.mktemp("eval") / "demo_random.bin", workers=1)
    images, issame = load_bin(path)
    pairs, _ = plan_pairs(small)
    person = np.array([slot[0] for pair in pairs for slot in pair])  # random protocol: variant 0
    # The planted people: the evaluation identities that appear most often.
    present, counts = np.unique(person, return_counts=True)
    planted = present[np.argsort(-counts, kind="stable")][:PLANTED]
    knobs = (train.demo.params["diversity"], train.demo.params["similarity"])
    clean = [_photo(train.demo.seed, i, j, *knobs) for i in range(CLEAN_IDENTITIES)
             for j in range(IMAGES)]  # fmt: skip
    eval_knobs = (target.demo.params["diversity"], target.demo.params["similarity"])
    leak = [_photo(target.demo.seed, int(i), NEW_PHOTOS + j, *eval_knobs) for i in planted
            for j in range(IMAGES)]  # fmt: skip
    labels = np.repeat(np.arange(CLEAN_IDENTITIES + PLANTED), IMAGES)
    return {
        "embed": CachedEmbedder(load_model(MODEL)),
        "eval": (np.stack(images), np.asarray(issame, bool)),
        "person": person,
        "planted": planted,
        "clean": Records(clean, labels[: len(clean)].tolist()),
        "planted_set": Records(clean + leak, labels.tolist()),
    }


def _audit(setup, name: str) -> dict:
    result = diagnose(
        name,
        setup[name],
        setup["embed"],
        None,
        {"demo_random": setup["eval"]},
        options=Options(per_identity=None, workers=0, worst=40),
    )
    return result["leakage"]["demo_random"]


def test_clean_set_flags_what_the_null_predicts(setup):
    audit = _audit(setup, "clean")
    queries = audit["queries"]
    print({key: audit[key] for key in ("threshold", "flagged", "expected_if_clean", "p_value")})
    assert audit["calibration"]["quantile"] == 0.99
    assert audit["flagged"] <= audit["expected_if_clean"] + 0.02 * queries
    assert not audit["leak_detected"]


def test_genuine_pair_rule_is_reported_and_over_flags_the_clean_set(setup):
    """Why the null decides: the genuine-pair rule rho / sqrt(rho + (1 - rho)/k) (rho the median
    genuine-pair cosine, k images per centre), still reported as `genuine_rule`, flags many
    clean images of this model."""
    images, issame = setup["eval"]
    audit = _audit(setup, "clean")
    rule = audit["genuine_rule"]
    queries = diag_stats.normalise(setup["embed"](images))
    rho = float(np.median(np.einsum("ij,ij->i", queries[0::2], queries[1::2])[issame]))
    assert rule["centre_images"] == IMAGES
    assert rule["threshold"] == pytest.approx(rho / np.sqrt(rho + (1.0 - rho) / IMAGES), abs=1e-5)
    print(f"genuine rule {rule['threshold']:.3f}: {rule['flagged']} of {audit['queries']}")
    assert rule["flagged"] > 0.05 * audit["queries"]
    assert rule["flagged"] > audit["flagged"]


def test_planted_people_are_flagged(setup):
    audit = _audit(setup, "planted_set")
    person, planted = setup["person"], setup["planted"]
    of_planted = np.isin(person, planted)
    flagged = [match for match in audit["worst"] if match["similarity"] > audit["threshold"]]
    print(
        {key: audit[key] for key in ("threshold", "flagged", "expected_if_clean", "p_value")},
        f"{of_planted.sum()} images of planted people",
    )
    assert len(flagged) == audit["flagged"]  # `worst` holds every flagged image here
    # A flagged image is a hit when it shows a planted person and points to that person's
    # training identity (planted person n of `planted` is training identity 60 + n).
    hits = sum(
        person[match["query"]] in planted
        and match["identity"] == CLEAN_IDENTITIES + list(planted).index(person[match["query"]])
        for match in flagged
    )
    print(f"hits {hits} of {len(flagged)} flagged; pairs {audit['pairs']}")
    assert audit["leak_detected"]
    assert audit["flagged"] >= audit["expected_if_clean"] + 10
    assert hits >= 0.7 * len(flagged)
