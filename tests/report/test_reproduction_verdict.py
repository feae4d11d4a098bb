"""The reproduction table's verdict: every published cell and mean within our seed spread
(95% CI over seeds) or not; one seed has no seed spread; the source's caveats come along."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from helpers import FIXTURES

from bench.catalog import load_catalog
from bench.report import audit, stats
from bench.report.tables import build_suites, load_results

FIXTURE = FIXTURES / "results" / "dcface_0.5m" / "ir50_arcface-seed0.json"
CATALOG = FIXTURES / "reproduce" / "datasets.yaml"


def _write_seeds(results: Path, accuracies: dict[str, list[float]]) -> None:
    """The fixture result as dataset demo_tiny, one file per seed with the given accuracies (%)."""
    for seed in range(len(next(iter(accuracies.values())))):
        data = json.loads(FIXTURE.read_text())
        data["run"].update(dataset="demo_tiny", recipe="tiny_source", seed=seed)
        data["targets"] = {t: data["targets"][t] for t in accuracies}
        for target, values in accuracies.items():
            data["targets"][target]["acc"] = values[seed] / 100
        data["mean_acc"] = float(np.mean([body["acc"] for body in data["targets"].values()]))
        path = results / "demo_tiny" / f"tiny_source-seed{seed}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data))


def _entry(results: Path) -> audit.ReproductionEntry:
    catalog = load_catalog(CATALOG)
    runs, warnings = load_results(results)
    suites = build_suites(runs, catalog, warnings)
    entries = audit.reproduction_table(catalog, suites)
    return next(e for e in entries if e.dataset == "demo_tiny" and e.source_id == "demo_paper")


def test_within_when_every_cell_and_the_mean_lie_inside_the_ci(tmp_path):
    # published: lfw 60, cfp_fp 100 (mean 80)
    _write_seeds(tmp_path, {"lfw": [59.0, 60.5, 61.0], "cfp_fp": [99.0, 99.5, 100.0]})
    entry = _entry(tmp_path)
    assert entry.verdict == "within" and entry.outside == ()
    per_seed = [(59.0 + 99.0) / 2, (60.5 + 99.5) / 2, (61.0 + 100.0) / 2]
    assert np.isclose(entry.mean_spread, stats.mean_ci(per_seed)[1])
    assert any("best accuracy over training" in caveat for caveat in entry.caveats)


def test_outside_names_the_cells_beyond_the_spread(tmp_path):
    _write_seeds(tmp_path, {"lfw": [59.9, 60.0, 60.1], "cfp_fp": [90.0, 90.1, 90.2]})
    entry = _entry(tmp_path)
    assert entry.verdict == "outside" and entry.outside == ("cfp_fp", "mean")


def test_one_seed_has_no_verdict(tmp_path):
    _write_seeds(tmp_path, {"lfw": [60.0], "cfp_fp": [100.0]})
    entry = _entry(tmp_path)
    assert entry.verdict == "n/a" and entry.mean_spread is None


def test_verdict_says_when_ours_used_another_recipe(tmp_path):
    catalog = load_catalog(CATALOG)
    _write_seeds(tmp_path, {"lfw": [59.0, 60.5, 61.0], "cfp_fp": [99.0, 99.5, 100.0]})
    assert audit.verdict_text(_entry(tmp_path), catalog) == "within our seed spread"
    for path in (tmp_path / "demo_tiny").glob("*.json"):
        data = json.loads(path.read_text())
        data["run"]["recipe"] = "smoke"
        path.write_text(json.dumps(data))
    text = audit.verdict_text(_entry(tmp_path), catalog)
    assert text == "within our seed spread; ours: recipe smoke, not the source's tiny_source.yaml"
