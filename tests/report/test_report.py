"""`bench report` from the committed fixture result JSONs: golden markdown, aggregation, bad input,
exports, plots, dataset cards. Regenerate the golden file with UPDATE_GOLDEN=1."""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shutil
import sys
import types

import jinja2
import numpy as np
import pytest
from helpers import FIXTURES

from bench.catalog import load_catalog
from bench.cli import main as cli_main
from bench.report import build_reports, exports, plots, tables
from bench.report.build import render

RESULTS = FIXTURES / "results"
GOLDEN = FIXTURES / "golden" / "leaderboard.md"
FIXTURE_CATALOG = FIXTURES / "datasets.yaml"  # frozen: the golden must not follow the live registry
# Volatile: the build time, and where the results directory lies on this machine.
VOLATILE = (
    (re.compile(r"^Built: .*$", re.M), "Built: <time>"),
    (re.compile(r"under `[^`]*`"), "under `<results>`"),
)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    summary = build_reports(RESULTS, out, load_catalog(FIXTURE_CATALOG))
    return summary, out


def _fixture_json(name: str) -> dict:
    return json.loads((RESULTS / name).read_text(encoding="utf-8"))


def test_markdown_matches_golden(built):
    _, out = built
    text = (out / "leaderboard.md").read_text(encoding="utf-8")
    for pattern, replacement in VOLATILE:
        text = pattern.sub(replacement, text)
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8"), (
        "run with UPDATE_GOLDEN=1 after a deliberate change"
    )


def test_every_fixture_result_is_used_without_warnings(built):
    summary, _ = built
    assert summary.results_used == len(list(RESULTS.rglob("*.json")))
    assert summary.warnings == []


def test_seed_aggregation_and_ranking_from_csv(built):
    _, out = built
    rows = list(csv.DictReader((out / "leaderboard.csv").open(encoding="utf-8")))
    seeds = [_fixture_json(f"demo_diverse/demo_cpu-seed{s}.json") for s in (0, 1, 2)]
    # Three seeds: mean ± t(0.975, df=2) * s / sqrt(3), with t from its closed form.
    t_2 = 0.95 / math.sqrt(2 * 0.975 * 0.025)
    for target in ("demo_random", "demo_pose", "demo_lookalike"):
        values = np.array([100 * s["targets"][target]["acc"] for s in seeds])
        line = next(r for r in rows if r["dataset"] == "demo_diverse" and r["target"] == target)
        assert float(line["acc"]) == pytest.approx(values.mean(), abs=1e-4)
        assert float(line["spread"]) == pytest.approx(
            t_2 * values.std(ddof=1) / math.sqrt(3), abs=1e-4
        )
        assert line["spread_kind"] == "ci95" and line["seeds"] == "0 1 2"
    single = _fixture_json("uiface_0.5m/ir50_arcface-seed0.json")
    line = next(r for r in rows if r["dataset"] == "uiface_0.5m" and r["target"] == "cfp_fp")
    assert float(line["spread"]) == pytest.approx(
        100 * single["targets"]["cfp_fp"]["acc_std"], abs=1e-4
    )
    # Within each suite, rows are sorted by the mean (best first).
    for suite in {r["suite"] for r in rows}:
        means = [
            float(r["mean"])
            for r in rows
            if r["suite"] == suite and r["target"] == r["suite"].split("+")[0]
        ]
        assert means == sorted(means, reverse=True) and len(means) >= 2


def test_ties_are_marked_from_the_paired_test(built):
    _, out = built
    runs, warnings = tables.load_results(RESULTS)
    suites = tables.build_suites(runs, load_catalog(), warnings)
    markdown = (out / "leaderboard.md").read_text(encoding="utf-8")
    tested = [row for suite in suites for row in suite.rows if row.versus_next is not None]
    assert (
        tested
        and any(r.versus_next.tied for r in tested)
        and any(not r.versus_next.tied for r in tested)
    )
    for row in tested:
        line = next(x for x in markdown.splitlines() if f"(`{row.dataset}`)" in x)
        assert ("| ≈ (" in line) is row.versus_next.tied


def test_published_numbers_and_audit_flag_in_report(built):
    _, out = built
    markdown = (out / "leaderboard.md").read_text(encoding="utf-8")
    catalog = load_catalog(FIXTURE_CATALOG)  # the registry the report was built with
    ours = _fixture_json("dcface_0.5m/ir50_arcface-seed0.json")
    published = catalog.training["dcface_0.5m"].published[0]
    gap = 100 * ours["targets"]["lfw"]["acc"] - published.scores["lfw"]
    assert f"{published.scores['lfw']:.2f} ({gap:+.2f})" in markdown
    assert markdown.count("**MISMATCH**") == 1
    assert "## Published numbers vs ours (reproduction)" in markdown
    assert markdown.count("not measured") == sum(
        len(t.published)
        for name, t in catalog.training.items()
        if name not in {"dcface_0.5m", "uiface_0.5m", "vec2face_hsface10k"}
    )


def test_missing_training_log_is_a_visible_note(built):
    summary, out = built
    assert any("vec2face_hsface10k" in note and "not found" in note for note in summary.notes)
    assert "training log results/_logs/vec2face_hsface10k" in (out / "leaderboard.md").read_text(
        encoding="utf-8"
    )
    assert (out / "plots" / "suite2-train-demo_diverse-demo_cpu-d3m0c9u0a1b2.png").is_file()
    assert not list((out / "plots").glob("*-train-vec2face*"))


def test_html_is_self_contained(built):
    _, out = built
    html = (out / "leaderboard.html").read_text(encoding="utf-8")
    assert 'src="data:image/png;base64,' in html
    assert not re.search(r'(src|href)="(?!data:|#)', html), "external reference in the HTML"
    assert "@media print" in html and "<style>" in html and "<script>" in html


def test_plots_are_png_svg_and_reproducible(built, tmp_path):
    _, out = built
    for stem in ("suite1-accuracy", "suite1-roc", "suite2-accuracy", "suite2-roc"):
        assert (out / "plots" / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        svg = (out / "plots" / f"{stem}.svg").read_text(encoding="utf-8")
        assert "<svg" in svg and "<dc:date>" not in svg
    runs, warnings = tables.load_results(RESULTS)
    suite = tables.build_suites(runs, load_catalog(), warnings)[0]
    again = plots.accuracy_bars(suite, load_catalog(), tmp_path, "suite1-accuracy")
    assert again.svg.read_bytes() == (out / "plots" / "suite1-accuracy.svg").read_bytes()
    assert again.png.read_bytes() == (out / "plots" / "suite1-accuracy.png").read_bytes()


def test_latex_export(built):
    _, out = built
    tex = (out / "leaderboard.tex").read_text(encoding="utf-8")
    assert tex.count(r"\begin{tabular}") == 2 and r"\toprule" in tex
    assert "UIFace 0.5M" in tex and r"\textbf{" in tex
    assert exports.latex_escape("a_b & 5% #1") == r"a\_b \& 5\% \#1"


def test_bad_results_are_named_and_left_out(tmp_path, capsys, monkeypatch):
    results = tmp_path / "results"
    shutil.copytree(RESULTS / "demo_consistent", results / "demo_consistent")
    (results / "broken").mkdir()
    (results / "broken" / "truncated.json").write_text(
        '{"schema_version": 1, "kind"', encoding="utf-8"
    )
    old = _fixture_json("demo_diverse/demo_cpu-seed0.json")
    old["schema_version"] = 99
    (results / "broken" / "future.json").write_text(json.dumps(old), encoding="utf-8")
    diagnostics = tmp_path / "diagnostics"
    diagnostics.mkdir()
    card = {
        "name": "demo_consistent",
        "markdown": "### Card demo_consistent",
        "html": "<h3>Card demo_consistent</h3>",
        "images": [],
    }
    stand_in = types.ModuleType("bench.report.cards")
    stand_in.dataset_cards = lambda diag_dir, out_dir: [dict(card)]
    monkeypatch.setitem(sys.modules, "bench.report.cards", stand_in)
    out = tmp_path / "reports"
    argv = [
        "report",
        "--results",
        str(results),
        "--out",
        str(out),
        "--diagnostics",
        str(diagnostics),
    ]
    assert cli_main(argv) == 0
    printed = capsys.readouterr().out
    markdown = (out / "leaderboard.md").read_text(encoding="utf-8")
    html = (out / "leaderboard.html").read_text(encoding="utf-8")
    for name, reason in (
        ("broken/truncated.json", "not valid JSON"),
        ("broken/future.json", "schema_version 99"),
    ):
        for text in (printed, markdown, html):
            assert name in text and reason in text
    assert "## ⚠ Warnings" in markdown and "demo_diverse" not in markdown.split("## Published")[0]
    assert "(`demo_consistent`)" in markdown
    assert "### Card demo_consistent" in markdown and "<h3>Card demo_consistent</h3>" in html


def test_missing_diagnostics_module_is_a_visible_note(tmp_path, monkeypatch):
    results = tmp_path / "results"
    shutil.copytree(RESULTS / "demo_consistent", results / "demo_consistent")
    (tmp_path / "diagnostics").mkdir()
    monkeypatch.setitem(sys.modules, "bench.report.cards", None)  # import fails
    stale = tmp_path / "out" / "plots" / "suite9-accuracy.svg"  # from an earlier build
    stale.parent.mkdir(parents=True)
    stale.write_text("<svg/>", encoding="utf-8")
    summary = build_reports(results, tmp_path / "out", load_catalog(), tmp_path / "diagnostics")
    assert not stale.exists() and (tmp_path / "out" / "plots" / "suite1-accuracy.svg").is_file()
    assert any("dataset cards not included" in note for note in summary.notes)
    assert "dataset cards not included" in (tmp_path / "out" / "leaderboard.md").read_text(
        encoding="utf-8"
    )


def test_missing_results_directory_is_an_error(tmp_path):
    assert (
        cli_main(["report", "--results", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    )


def test_templates_are_strict_and_escaped():
    with pytest.raises(jinja2.UndefinedError):
        render("leaderboard.html.j2", {"results_used": 0}, autoescape=True)
