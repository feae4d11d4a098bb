"""Reports built from modified fixture results: published-vs-ours comparisons over the same
sets, partial rows in the reproduction table, training-curve files per suite, rows told apart by
recipe hash, and the note in an empty accuracy panel."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from helpers import FIXTURES

from bench.catalog import STANDARD_TARGETS, load_catalog
from bench.report import build_reports, exports, plots, tables

RESULTS = FIXTURES / "results"
FIXTURE_CATALOG = FIXTURES / "datasets.yaml"  # frozen, as in test_report.py


def _fixture_json(name: str) -> dict:
    return json.loads((RESULTS / name).read_text(encoding="utf-8"))


def _copy_result(
    source: str,
    path: Path,
    dataset: str | None = None,
    drop: tuple[str, ...] = (),
    extra: dict[str, str] | None = None,
    recipe_hash: str | None = None,
) -> dict:
    """A fixture result written to path: another dataset or recipe hash, targets dropped, or
    extra targets copied from existing ones ({new: existing})."""
    data = _fixture_json(source)
    if dataset:
        data["run"]["dataset"] = dataset
    if recipe_hash:
        data["run"]["recipe_hash"] = recipe_hash
    for target in drop:
        del data["targets"][target]
    for new, existing in (extra or {}).items():
        data["targets"][new] = data["targets"][existing]
    data["mean_acc"] = float(np.mean([body["acc"] for body in data["targets"].values()]))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return data


def _section(markdown: str, heading: str) -> list[str]:
    """The lines of one `## heading` section."""
    return markdown.split(f"## {heading}", 1)[1].split("\n## ", 1)[0].splitlines()


def _published_rows(markdown: str, dataset: str) -> list[str]:
    """The grey published rows under our row of `dataset` (in its first suite)."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if f"(`{dataset}`)" in line) + 1
    rows = []
    while lines[start].startswith("| | ↳ published:"):
        rows.append(lines[start])
        start += 1
    return rows


def _line(lines: list[str], *parts: str) -> str:
    found = [line for line in lines if all(part in line for part in parts)]
    assert len(found) == 1, f"{parts}: {len(found)} matching lines"
    return found[0]


def test_mean_gap_compares_the_same_sets(tmp_path):
    """Ours − published averages both sides over the source's own sets, never over our suite's:
    a row with a sixth set, a source with three cells, a printed-only source, a row lacking sets."""
    results = tmp_path / "results"
    six = _copy_result(
        "uiface_0.5m/ir50_arcface-seed0.json",
        results / "ms1mv2.json",
        dataset="ms1mv2",
        extra={"cfp_ff": "cfp_fp"},
    )
    _copy_result(
        "uiface_0.5m/ir50_arcface-seed0.json",
        results / "cemiface.json",
        dataset="cemiface_1.0m",
        extra={"cfp_ff": "cfp_fp"},
    )
    _copy_result(
        "dcface_0.5m/ir50_arcface-seed0.json", results / "dcface.json", drop=("calfw", "cplfw")
    )
    catalog = load_catalog(FIXTURE_CATALOG)
    build_reports(results, tmp_path / "out", catalog)
    markdown = (tmp_path / "out" / "leaderboard.md").read_text(encoding="utf-8")
    reproduction = _section(markdown, "Published numbers vs ours (reproduction)")
    for item in catalog.training["ms1mv2"].published:  # five cells, and three cells
        ours = np.mean([100 * six["targets"][target]["acc"] for target in item.scores])
        theirs = np.mean(list(item.scores.values()))
        gap = f"{ours - theirs:+.2f}"
        assert f"| {theirs:.2f} ({gap}) |" in _line(
            _published_rows(markdown, "ms1mv2"), item.source
        )
        assert f"| {ours:.2f} (ir50_arcface) | {gap} |" in _line(
            reproduction, "MS1MV2", item.source
        )
    five = np.mean([100 * six["targets"][target]["acc"] for target in STANDARD_TARGETS])
    printed = catalog.training["cemiface_1.0m"].published[0].printed_mean
    assert f"| {printed:.2f} | {five:.2f} (ir50_arcface) | {five - printed:+.2f} |" in _line(
        reproduction, "CemiFace 1.0M"
    )
    # Our DCFace row lacks CALFW and CPLFW: no mean gap against five-cell sources.
    for item in catalog.training["dcface_0.5m"].published:
        theirs = np.mean(list(item.scores.values()))
        assert f"| {theirs:.2f} (-) |" in _line(
            _published_rows(markdown, "dcface_0.5m"), item.source
        )


def test_reproduction_lists_rows_on_some_of_the_sets(tmp_path):
    """A row on only some of a source's sets is measured, not "not measured": shared cells get a
    gap, the others and the mean "-"; a row sharing no set with the source stays out."""
    results = tmp_path / "results"
    three = _copy_result(
        "dcface_0.5m/ir50_arcface-seed0.json", results / "dcface.json", drop=("calfw", "cplfw")
    )
    _copy_result(
        "dcface_0.5m/ir50_arcface-seed0.json",
        results / "cemiface.json",
        dataset="cemiface_1.0m",
        drop=("calfw", "cplfw"),
    )
    _copy_result("demo_diverse/demo_cpu-seed0.json", results / "demo.json", dataset="dcface_1.0m")
    catalog = load_catalog(FIXTURE_CATALOG)
    build_reports(results, tmp_path / "out", catalog)
    markdown = (tmp_path / "out" / "leaderboard.md").read_text(encoding="utf-8")
    reproduction = _section(markdown, "Published numbers vs ours (reproduction)")
    ours = {target: 100 * three["targets"][target]["acc"] for target in three["targets"]}
    item = catalog.training["dcface_0.5m"].published[0]
    line = _line(reproduction, "DCFace 0.5M", f"| {item.source} |")
    cells = [
        f"{item.scores[t]:.2f} / {ours[t]:.2f} ({ours[t] - item.scores[t]:+.2f})"
        for t in ("lfw", "cfp_fp", "agedb_30")
    ] + [f"{item.scores[t]:.2f} / -" for t in ("calfw", "cplfw")]
    assert "| " + " | ".join(cells) + " |" in line
    assert line.endswith("| - (ir50_arcface) | - | n/a (one seed: no seed spread) |")
    cemiface = _line(reproduction, "CemiFace 1.0M")  # printed average only
    assert "| - / " in cemiface
    assert cemiface.endswith("| 93.07 | - (ir50_arcface) | - | n/a (one seed: no seed spread) |")
    assert _line(reproduction, "DCFace 1.0M").endswith("| not measured | - | - |")


def test_training_curves_of_one_row_in_two_suites_are_two_files(tmp_path):
    """Seeds of one dataset and recipe evaluated on different sets form two suites; each suite's
    training curves show its own seeds, so they need a file each."""
    results = tmp_path / "results"
    for seed in (0, 1):
        name = f"demo_diverse/demo_cpu-seed{seed}.json"
        _copy_result(name, results / name)
    _copy_result(
        "demo_diverse/demo_cpu-seed2.json",
        results / "demo_diverse" / "demo_cpu-seed2.json",
        drop=("demo_lookalike",),
    )
    shutil.copytree(RESULTS / "_logs", results / "_logs")  # the JSONs say results/_logs/...
    build_reports(results, tmp_path / "out", load_catalog(FIXTURE_CATALOG))
    markdown = (tmp_path / "out" / "leaderboard.md").read_text(encoding="utf-8")
    stems = [f"suite{n}-train-demo_diverse-demo_cpu-d3m0c9u0a1b2" for n in (1, 2)]
    pictures = [(tmp_path / "out" / "plots" / f"{stem}.png").read_bytes() for stem in stems]
    assert pictures[0] != pictures[1]
    for number, stem in enumerate(stems, start=1):
        section = markdown.split("## Leaderboard:")[number]
        assert f"(plots/{stem}.png)" in section and markdown.count(f"(plots/{stem}.png)") == 1


def test_rows_differing_only_in_recipe_hash_show_a_short_hash(tmp_path, monkeypatch):
    """Two rows of one suite with the same dataset and recipe are told apart by a short hash in
    the markdown, HTML and LaTeX tables and the plot legends (longer where six characters tie);
    the LaTeX table has a Recipe column."""
    results = tmp_path / "results"
    _copy_result("demo_diverse/demo_cpu-seed0.json", results / "a.json")
    _copy_result("demo_diverse/demo_cpu-seed0.json", results / "b.json", recipe_hash="d3m0c9ffffff")
    _copy_result("demo_consistent/demo_cpu-seed0.json", results / "c.json")
    catalog = load_catalog(FIXTURE_CATALOG)
    build_reports(results, tmp_path / "out", catalog)
    labels = ("demo_cpu@d3m0c9u", "demo_cpu@d3m0c9f")
    markdown = (tmp_path / "out" / "leaderboard.md").read_text(encoding="utf-8")
    html = (tmp_path / "out" / "leaderboard.html").read_text(encoding="utf-8")
    tex = (tmp_path / "out" / "leaderboard.tex").read_text(encoding="utf-8")
    for label in labels:
        assert f"| {label} |" in markdown and f'<td data-sort="{label}">{label}</td>' in html
        assert f"& {exports.latex_escape(label)} &" in tex
    assert "(`demo_consistent`) | demo_cpu |" in markdown  # unambiguous: no hash
    assert "Training set & Recipe & IDs & Images &" in tex and r"{l l r r r r r r}" in tex

    runs, warnings = tables.load_results(results)
    suite = tables.build_suites(runs, catalog, warnings)[0]
    figures = []
    monkeypatch.setattr(plots, "_save", lambda figure, *args: figures.append(figure))
    plots.accuracy_bars(suite, catalog, tmp_path, "bars")
    plots.roc_curves(suite, catalog, tmp_path, "roc")
    bars = {text.get_text() for text in figures[0].legends[0].get_texts()}
    roc = {text.get_text() for text in figures[1].axes[0].get_legend().get_texts()}
    expected = {f"demo_diverse ({label})" for label in labels} | {"demo_consistent (demo_cpu)"}
    assert bars == roc == expected


def test_training_curves_say_why_the_accuracy_panel_is_empty(tmp_path, monkeypatch):
    """A run without periodic verification gets a note in its accuracy panel, not a blank grid;
    a run with it gets lines and no note."""
    runs, warnings = tables.load_results(RESULTS)
    row = next(
        row
        for suite in tables.build_suites(runs, load_catalog(), warnings)
        for row in suite.rows
        if row.dataset == "demo_diverse"
    )
    figures = []
    monkeypatch.setattr(plots, "_save", lambda figure, *args: figures.append(figure))
    plots.training_curves(row, tmp_path, "with", [FIXTURES])
    logs = tmp_path / "results" / "_logs"
    logs.mkdir(parents=True)
    for source in (RESULTS / "_logs").glob("demo_diverse-*.jsonl"):
        lines = source.read_text(encoding="utf-8").splitlines()
        (logs / source.name).write_text(
            "\n".join(line for line in lines if '"eval"' not in line), encoding="utf-8"
        )
    plots.training_curves(row, tmp_path, "without", [tmp_path])
    (with_eval, without_eval) = (figure.axes[2] for figure in figures)
    assert with_eval.lines and not with_eval.texts
    assert not without_eval.lines
    assert "no periodic verification" in without_eval.texts[0].get_text()
