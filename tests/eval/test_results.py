"""bench.eval.results: compact score encoding, build/validate, atomic write, read."""

from __future__ import annotations

import copy
import json
import math
import re

import numpy as np
import pytest

from bench.core.errors import ResultError
from bench.eval.protocol import verify
from bench.eval.results import (
    build_result,
    decode_issame,
    decode_scores,
    encode_issame,
    encode_scores,
    git_sha,
    read_result,
    target_entry,
    validate_result,
    write_result,
)

MODEL = {"path": "runs/x/final.pt", "sha256": "ab" * 32, "backbone": "ir18", "format": "checkpoint"}


def make_entry(seed: int = 0, pairs: int = 203) -> tuple[dict, np.ndarray]:
    rng = np.random.default_rng(seed)
    issame = rng.random(pairs) < 0.5
    embeddings = rng.standard_normal((2 * pairs, 8))
    embeddings[1::2][issame] = embeddings[0::2][issame] + 0.5 * rng.standard_normal(
        (issame.sum(), 8)
    )
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    metrics = verify(embeddings, issame)
    return target_entry(metrics, issame, xnorm=21.5, file_sha256="cd" * 32), metrics


def make_result() -> dict:
    lfw, _ = make_entry(0)
    cfp, _ = make_entry(1, pairs=350)
    return build_result(MODEL, {"lfw": lfw, "cfp_fp": cfp})


def test_scores_and_labels_round_trip():
    rng = np.random.default_rng(0)
    scores = rng.random(1001) * 4
    assert np.array_equal(decode_scores(encode_scores(scores)), scores.astype(np.float32))
    for count in (1, 7, 8, 9, 1001):
        issame = rng.random(count) < 0.5
        decoded = decode_issame(encode_issame(issame), count)
        assert decoded.dtype == bool and np.array_equal(decoded, issame)


def test_target_entry_keeps_metrics_and_encodes_scores():
    entry, metrics = make_entry()
    assert "scores" not in entry
    for key in ("acc", "acc_std", "threshold", "val", "val_std", "far", "auc", "eer"):
        assert entry[key] == metrics[key]
    assert entry["xnorm"] == 21.5 and entry["pairs"] == 203
    np.testing.assert_array_equal(
        decode_scores(entry["scores_b64"]), metrics["scores"].astype(np.float32)
    )


def test_build_write_read_round_trip(tmp_path):
    result = make_result()
    assert result["schema_version"] == 1 and result["kind"] == "facebench-result"
    assert result["mean_acc"] == pytest.approx(
        (result["targets"]["lfw"]["acc"] + result["targets"]["cfp_fp"]["acc"]) / 2
    )
    provenance = result["provenance"]
    assert set(provenance) >= {"git_sha", "created", "hostname", "hardware", "software"}
    assert provenance["software"]["numpy"] == np.__version__
    path = write_result(tmp_path / "results" / "r.json", result)
    assert read_result(path) == json.loads(json.dumps(result))
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]  # no temporary left behind


def test_nan_rates_are_stored_as_null(tmp_path):
    _, metrics = make_entry()
    entry = target_entry(
        {**metrics, "val": math.nan, "far": math.nan}, np.zeros(203, bool), 1.0, "ef" * 32
    )
    assert entry["val"] is None and entry["far"] is None
    result = build_result(MODEL, {"lfw": entry})
    write_result(tmp_path / "r.json", result)
    assert "NaN" not in (tmp_path / "r.json").read_text()


def test_git_sha_is_hex_or_unknown():
    sha = git_sha()
    assert sha == "unknown" or re.fullmatch(r"[0-9a-f]{40}", sha)


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda r: r.update(schema_version=2), "schema_version 2 is not supported"),
        (lambda r: r.update(kind="other"), "'kind'"),
        (lambda r: r.pop("provenance"), "missing key 'provenance'"),
        (lambda r: r["targets"]["lfw"].pop("acc"), "targets.lfw: missing key 'acc'"),
        (lambda r: r["targets"]["lfw"].update(acc="0.9"), "key 'acc' must be float/int"),
        (lambda r: r["targets"]["lfw"].update(pairs=True), "key 'pairs' must be int"),
        (lambda r: r["targets"]["lfw"].update(pairs=204), "204 pairs"),
        (lambda r: r["targets"]["lfw"].update(scores_b64="***"), "do not decode"),
        (lambda r: r["targets"]["lfw"].update(issame_b64=encode_issame([True] * 300)), "labels"),
        (lambda r: r["model"].update(format="pickle"), "model.format"),
        (lambda r: r.update(targets={}), "'targets' is empty"),
        (lambda r: r["targets"]["lfw"]["roc"].pop("tpr"), "roc: missing key 'tpr'"),
    ],
)
def test_validation_names_the_bad_key(mutate, message):
    result = copy.deepcopy(make_result())
    mutate(result)
    with pytest.raises(ResultError, match=re.escape(message)):
        validate_result(result, "some/file.json")
    with pytest.raises(ResultError, match="some/file.json"):
        validate_result(result, "some/file.json")


def test_read_result_errors_name_the_file(tmp_path):
    with pytest.raises(ResultError, match="not found"):
        read_result(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ResultError, match=re.escape(str(tmp_path / "bad.json"))):
        read_result(tmp_path / "bad.json")
    (tmp_path / "old.json").write_text(
        json.dumps({"kind": "facebench-result", "schema_version": 0})
    )
    with pytest.raises(ResultError, match="schema_version 0"):
        read_result(tmp_path / "old.json")
