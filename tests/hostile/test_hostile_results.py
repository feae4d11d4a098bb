"""Hostile result JSONs (issue 18 items 2, 3, 10): impossible numbers, undecodable bytes, deep
nesting and wrong-typed seeds are each named in a warning and left out while the report still
builds from the good files; a recipe name starting a spreadsheet formula is exported inert."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from helpers import FIXTURES

from bench.cli import main as cli
from bench.report.tables import load_results

GOOD = FIXTURES / "results" / "uiface_0.5m" / "ir50_arcface-seed0.json"
CATALOG = FIXTURES / "datasets.yaml"


def _good() -> dict:
    return json.loads(GOOD.read_text(encoding="utf-8"))


def _edited(edit) -> bytes:
    """The good result as another dataset, changed by edit(data); json.dumps writes NaN and
    Infinity as a careless writer would."""
    data = _good()
    data["run"]["dataset"] = "dcface_0.5m"
    edit(data)
    return json.dumps(data).encode("utf-8")


def _first_target(key: str, value) -> bytes:
    def edit(data: dict) -> None:
        next(iter(data["targets"].values()))[key] = value
        accs = [body["acc"] for body in data["targets"].values()]
        # mean_acc kept consistent where possible, so only the target entry is impossible.
        data["mean_acc"] = sum(accs) / len(accs) if all(map(math.isfinite, accs)) else 0.5

    return _edited(edit)


def _top(key: str, value) -> bytes:
    return _edited(lambda data: data.update({key: value}))


def _seed(value) -> bytes:
    return _edited(lambda data: data["run"].update(seed=value))


BAD = {
    "acc_inf": _first_target("acc", math.inf),
    "acc_500_percent": _first_target("acc", 5.0),
    "acc_nan": _first_target("acc", math.nan),
    "acc_negative": _first_target("acc", -0.5),
    "std_negative": _first_target("acc_std", -0.1),
    "auc_above_one": _first_target("auc", 1.5),
    "xnorm_inf": _first_target("xnorm", math.inf),
    "pairs_zero": _first_target("pairs", 0),
    "mean_acc_inflated": _top("mean_acc", 0.999),
    "non_utf8": b'{"kind": "facebench-result", "\xff\xfe": 1}',
    "deep_nesting": b"[" * 100_000,
    "seed_string": _seed("zero"),
    "seed_list": _seed([1, 2]),
    "huge_integer": b'{"schema_version": ' + b"9" * 5000 + b"}",
}


def _report(results: Path, out: Path, capsys) -> tuple[int, str]:
    code = cli(["report", "--results", str(results), "--out", str(out), "--catalog", str(CATALOG)])
    return code, capsys.readouterr().out


def _results_with(tmp_path: Path, bad: dict[str, bytes]) -> Path:
    results = tmp_path / "results"
    (results / "good").mkdir(parents=True)
    (results / "good" / "uiface.json").write_bytes(GOOD.read_bytes())
    (results / "bad").mkdir()
    for case, data in bad.items():
        (results / "bad" / f"{case}.json").write_bytes(data)
    return results


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_result_is_named_and_left_out(tmp_path, case):
    runs, warnings = load_results(_results_with(tmp_path, {case: BAD[case]}))
    assert [run.name for run in runs] == ["good/uiface.json"]
    assert len(warnings) == 1 and warnings[0].startswith(f"bad/{case}.json: left out"), warnings


def test_the_report_builds_from_the_good_results_and_names_the_bad(tmp_path, capsys):
    code, out = _report(_results_with(tmp_path, BAD), tmp_path / "out", capsys)
    assert code == 0
    for case in BAD:
        assert f"WARNING: bad/{case}.json: left out of the report" in out
    assert "report built from 1 result JSON(s)" in out
    markdown = (tmp_path / "out" / "leaderboard.md").read_text(encoding="utf-8")
    assert "uiface_0.5m" in markdown and "dcface_0.5m`)" not in markdown
    assert "bad/acc_inf.json" in markdown  # the warning is visible in the page too


def test_a_formula_in_a_recipe_name_is_exported_inert(tmp_path, capsys):
    results = tmp_path / "results"
    results.mkdir()
    for recipe in ("=1+1", "+SUM(A1)", "-2+3", "@cmd", "plain"):
        data = _good()
        data["run"]["recipe"] = recipe
        (results / f"{abs(hash(recipe))}.json").write_text(json.dumps(data), encoding="utf-8")
    code, _ = _report(results, tmp_path / "out", capsys)
    assert code == 0
    with open(tmp_path / "out" / "leaderboard.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    recipes = {row["recipe"] for row in rows}
    assert recipes == {"'=1+1", "'+SUM(A1)", "'-2+3", "'@cmd", "plain"}
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "@", "\t", "\r")), row
            # Numbers stay numbers (a negative accuracy gap is data, not a formula).
            assert not value.startswith("-") or _is_number(value), row


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
