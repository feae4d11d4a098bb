"""`bench bench` end to end on a tiny demo entry: generate -> prepare -> check -> train -> eval
-> result JSON -> `bench report`; and the fail-fast paths of a missing real data set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from bench.cli import main as cli_main
from bench.core.paths import default_catalog_path
from bench.eval.results import read_result


def _tiny_catalog(tmp_path: Path) -> Path:
    """The repository registry with the demo entries shrunk to seconds of work."""
    document = yaml.safe_load(default_catalog_path().read_text())
    for name in ("demo_consistent", "demo_diverse"):
        entry = document["training"][name]
        entry.update(identities=6, images=24, recipe="smoke")
        entry["demo"].update(identities=6, images_per_identity=4)
    for name in ("demo_random", "demo_pose", "demo_lookalike"):
        entry = document["evaluation"][name]
        entry["pairs"] = 20
        entry["demo"]["identities"] = 6
    path = tmp_path / "datasets.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.mark.slow
def test_bench_then_report_on_a_tiny_demo_set(tmp_path, capsys):
    catalog = _tiny_catalog(tmp_path)
    roots = ["--data-root", str(tmp_path / "data"), "--runs-root", str(tmp_path / "runs")]
    results = tmp_path / "results"
    common = ["--catalog", str(catalog), *roots, "--results", str(results), "--workers", "1"]
    assert cli_main(["bench", "demo_diverse", *common]) == 0

    result_path = results / "demo_diverse" / "smoke-seed0.json"
    result = read_result(result_path)  # validates the schema
    assert set(result["targets"]) == {"demo_random", "demo_pose", "demo_lookalike"}
    assert result["run"]["dataset"] == "demo_diverse" and result["run"]["recipe"] == "smoke"
    for metrics in result["targets"].values():
        assert metrics["pairs"] == 20 and 0.0 <= metrics["acc"] <= 1.0
    assert (tmp_path / "runs" / "demo_diverse" / "smoke-seed0" / "final.pt").is_file()

    # A second run reuses the data and the finished run and gives the same numbers.
    first = json.loads(result_path.read_text())["targets"]["demo_random"]["acc"]
    assert cli_main(["bench", "demo_diverse", *common]) == 0
    assert json.loads(result_path.read_text())["targets"]["demo_random"]["acc"] == first

    reports = tmp_path / "reports"
    assert cli_main(["report", "--results", str(results), "--out", str(reports),
                     "--catalog", str(catalog)]) == 0  # fmt: skip
    leaderboard = (reports / "leaderboard.md").read_text()
    assert "`demo_diverse`" in leaderboard
    assert (reports / "leaderboard.html").is_file()


def test_missing_real_evaluation_sets_fail_before_training(tmp_path, caplog):
    code = cli_main(
        ["bench", "uiface_0.5m", "--data-root", str(tmp_path), "--runs-root", str(tmp_path / "r")]
    )
    assert code == 2
    message = caplog.text
    for name in ("lfw.bin", "cfp_fp.bin", "agedb_30.bin", "calfw.bin", "cplfw.bin"):
        assert name in message
    assert "never skips" in message
    assert not (tmp_path / "r").exists()  # nothing was trained


def test_missing_training_set_says_where_to_get_it(tmp_path, caplog):
    eval_dir = tmp_path / "eval"
    eval_dir.mkdir()
    for name in ("lfw", "cfp_fp", "agedb_30", "calfw", "cplfw"):
        (eval_dir / f"{name}.bin").write_bytes(b"")  # presence is checked first; content later
    code = cli_main(["bench", "uiface_0.5m", "--data-root", str(tmp_path)])
    assert code == 2
    assert "Tencent/TFace" in caplog.text and "bench prepare uiface_0.5m" in caplog.text


@pytest.mark.slow
def test_recipe_path_and_periodic_verification_use_the_given_registry(tmp_path):
    """A recipe given as a file path names the run by its stem (as `bench train` does), and
    periodic verification reads the evaluation sets of the --catalog registry (the default
    registry's demo_random has another pair count, so reading it would fail)."""
    catalog = _tiny_catalog(tmp_path)
    recipe = tmp_path / "elsewhere" / "myrecipe.yaml"
    recipe.parent.mkdir()
    recipe.write_text((default_catalog_path().parent / "configs" / "smoke.yaml").read_text())
    runs = tmp_path / "runs"
    args = ["bench", "demo_diverse", "--catalog", str(catalog), "--recipe", str(recipe),
            "--data-root", str(tmp_path / "data"), "--runs-root", str(runs),
            "--results", str(tmp_path / "results"), "--workers", "1",
            "verify_every=1", "verify_targets=demo_random"]  # fmt: skip
    assert cli_main(args) == 0
    run_dir = runs / "demo_diverse" / "myrecipe-seed0"
    assert (run_dir / "final.pt").is_file() and not list(recipe.parent.glob("*-seed0"))
    records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert any(r.get("type") == "eval" and r["target"] == "demo_random" for r in records)
    result = read_result(tmp_path / "results" / "demo_diverse" / "myrecipe-seed0.json")
    assert result["run"]["recipe"] == "myrecipe"
