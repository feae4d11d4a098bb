"""`bench reproduce SOURCE` end to end on a demo "published table" (tests/fixtures/reproduce, never
the real datasets.yaml): present sets x seeds trained and evaluated, absent ones listed with how to
get them, finished cells reused, and the report's reproduction table with ours ± CI and a verdict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import FIXTURES

from bench.catalog import load_catalog
from bench.cli import main as cli_main
from bench.core.errors import ConfigError
from bench.pipeline import BenchOptions
from bench.report import stats
from bench.reproduce import plan, table_sets
from bench.train.recipe import load_config, recipe_path

REGISTRY = FIXTURES / "reproduce" / "datasets.yaml"


def _options(tmp_path: Path) -> BenchOptions:
    return BenchOptions(tmp_path / "data", tmp_path / "runs", tmp_path / "results", workers=1)


def test_plan_lists_cells_and_absent_sets_with_how_to_get_them(tmp_path):
    catalog = load_catalog(REGISTRY)
    todo = plan(catalog, "demo_paper", _options(tmp_path), "source", seeds=3)
    # The source recipe's own seed (5) first, then the next ones; files named as `bench bench`.
    assert [(c.dataset, c.seed, c.result.name) for c in todo.cells] == [
        ("demo_tiny", seed, f"tiny_source-seed{seed}.json") for seed in (5, 6, 7)
    ]
    absent = {item.dataset: item.how for item in todo.absent}
    assert "absent.zip" in absent["absent_set"] and "raw/absent_set" in absent["absent_set"]
    assert absent["unreleased_set"].startswith("no download is known")
    fixed = plan(catalog, "demo_paper", _options(tmp_path), "fixed", seeds=1)
    assert [c.result.name for c in fixed.cells] == ["smoke-seed0.json"]
    with pytest.raises(ConfigError, match="no_recipe_table names no recipe.*--recipe fixed"):
        plan(catalog, "no_recipe_table", _options(tmp_path), "source")
    with pytest.raises(Exception, match="did you mean.*demo_paper"):
        plan(catalog, "demo_papr", _options(tmp_path))


@pytest.mark.slow
def test_reproduce_end_to_end_then_report_shows_the_verdict(tmp_path, capsys):
    roots = ["--data-root", str(tmp_path / "data"), "--runs-root", str(tmp_path / "runs")]
    results = tmp_path / "results"
    common = ["--catalog", str(REGISTRY), *roots, "--results", str(results), "--workers", "1"]
    assert cli_main(["reproduce", "demo_paper", "--seeds", "2", *common]) == 0
    printed = capsys.readouterr().out
    assert "ABSENT absent_set" in printed and "ABSENT unreleased_set" in printed
    assert "caveat: Reports the best accuracy over training" in printed
    files = sorted((results / "demo_tiny").glob("*.json"))
    assert [f.name for f in files] == ["tiny_source-seed5.json", "tiny_source-seed6.json"]
    runs = [json.loads(f.read_text()) for f in files]
    assert {run["run"]["seed"] for run in runs} == {5, 6}
    assert all(run["run"]["recipe"] == "tiny_source" for run in runs)
    assert all(len(run["provenance"]["data"]["content_sha256"]) == 64 for run in runs)

    # Resumable: a second call finds both results and trains nothing.
    stamps = [f.stat().st_mtime_ns for f in files]
    assert cli_main(["reproduce", "demo_paper", "--seeds", "2", *common]) == 0
    assert "seed 5: done" in capsys.readouterr().out
    assert [f.stat().st_mtime_ns for f in files] == stamps

    out = tmp_path / "reports"
    assert (
        cli_main(
            ["report", "--results", str(results), "--out", str(out), "--catalog", str(REGISTRY)]
        )
        == 0
    )
    markdown = (out / "leaderboard.md").read_text()
    header = next(
        line for line in markdown.splitlines() if line.startswith("| Training set | Source")
    )
    assert header.rstrip(" |").endswith("Verdict")
    row = next(
        line for line in markdown.splitlines() if line.startswith("| Demo tiny | Demo paper")
    )
    # Ours = mean ± 95% CI over the two seeds, and the verdict the numbers imply.
    published = {"lfw": 60.0, "cfp_fp": 100.0}
    outside = []
    for target, theirs in published.items():
        mean, half = stats.mean_ci([100 * run["targets"][target]["acc"] for run in runs])
        assert f"{theirs:.2f} / {mean:.2f} ± {half:.2f}" in row
        if abs(mean - theirs) > half + 1e-9:
            outside.append(target)
    per_seed = [sum(100 * run["targets"][t]["acc"] for t in published) / 2 for run in runs]
    mean, half = stats.mean_ci(per_seed)
    if abs(mean - 80.0) > half:
        outside.append("mean")
    assert ("outside our seed spread" in row) == bool(outside)
    assert ("within our seed spread" in row) == (not outside)
    assert "† Caveats of the sources" in markdown and "best accuracy over training" in markdown
    for absent in ("Absent set", "Unreleased set"):
        assert any(line.startswith(f"| {absent} | Demo paper") and "not measured" in line
                   for line in markdown.splitlines())  # fmt: skip


def test_every_real_source_plans_with_its_recipe_and_lists_absent_sets(tmp_path):
    """The real registry: each source's recipe resolves and loads; nothing is here, so every set
    of its table is listed absent with how to get it (none silently dropped)."""
    catalog = load_catalog()
    for name, source in catalog.sources.items():
        mode = "source" if source.recipe else "fixed"
        if source.recipe:
            load_config(recipe_path(source.recipe))
        todo = plan(catalog, name, _options(tmp_path), mode, seeds=1)
        assert todo.cells == []
        assert [a.dataset for a in todo.absent] == [e.name for e in table_sets(catalog, name)]
        assert all(a.how for a in todo.absent)
