"""The leaderboard's IJB-B / IJB-C table and ROC plot, from the result JSONs that carry IJB
metrics: `bench eval` results with an `ijb` key and `bench ijb` results (their own kind)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # tables imports is_ijb_result from here, and plots imports tables
    from bench.report.plots import Plot
    from bench.report.tables import RunResult

IJB_KIND = "facebench-ijb-result"  # bench.eval.ijb.run.KIND (report reads JSON, not eval code)
COLUMNS = ("TAR@FAR=1e-4", "TAR@FAR=1e-5", "Rank-1")


@dataclass(frozen=True)
class IJBRow:
    """One model scored on one IJB target with one set of flags."""

    label: str
    source: str  # the result file, relative to the results directory
    target: str
    flags: str
    entry: dict  # {"verification": ..., "identification": ...}

    @property
    def cells(self) -> list[str]:
        verification = self.entry["verification"]["tar_at_far"]
        rank1 = self.entry["identification"]["mean"]["top1"]
        return [
            f"{100 * value:.2f}" for value in (verification["0.0001"], verification["1e-05"], rank1)
        ]


def is_ijb_result(path: Path) -> bool:
    """Whether `path` is a `bench ijb` result (not a leaderboard .bin result)."""
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("kind") == IJB_KIND
    except (OSError, ValueError, AttributeError, RecursionError):  # load_results names it
        return False


def collect(results_dir: Path, runs: list[RunResult]) -> list[IJBRow]:
    """IJB rows of `bench eval` results (label: training set) and of `bench ijb` results."""
    rows = [
        IJBRow(run.dataset, run.name, target, entry["flags"]["name"], entry)
        for run in runs
        for target, entry in sorted(run.data.get("ijb", {}).items())
    ]
    for path in sorted(Path(results_dir).rglob("*.json")):
        if is_ijb_result(path):
            data = json.loads(path.read_text(encoding="utf-8"))
            model = (data.get("model") or {}).get("path") or data["features"].get("path", "?")
            name = path.relative_to(results_dir).as_posix()
            rows.append(
                IJBRow(
                    f"model:{Path(model).name}", name, data["target"], data["flags"]["name"], data
                )
            )
    rows.sort(key=lambda row: (row.target, -row.entry["verification"]["tar_at_far"]["0.0001"]))
    return rows


def roc_plot(rows: list[IJBRow], plot_dir: Path) -> Plot | None:
    """TAR against FAR (log scale) of every IJB row in one figure, in plot_dir/ijb/."""
    from bench.report import plots

    out_dir = plot_dir / "ijb"  # its own folder: the suites' stale-figure sweep leaves it alone
    curves = [row for row in rows if "roc" in row.entry["verification"]]
    if not curves:
        for stale in (out_dir / "roc.png", out_dir / "roc.svg"):
            stale.unlink(missing_ok=True)  # no IJB result any more: no figure either
        return None
    figure = plots._figure(6.0, 4.0)  # the report's figure style (size, fonts, atomic save)
    axes = figure.add_subplot()
    for index, row in enumerate(curves):
        roc = row.entry["verification"]["roc"]
        colour = plots._COLOURS[index % len(plots._COLOURS)]
        label = f"{row.label} · {row.target} ({row.flags})"
        axes.plot(roc["far"], roc["tar"], color=colour, label=label)
    axes.set_xscale("log")
    axes.set_xlim(1e-6, 1e-1)
    axes.set_xlabel("FAR (1:1 template pairs)")
    axes.set_ylabel("TAR")
    axes.grid(True, linestyle="--", linewidth=0.5)
    axes.legend(fontsize="x-small", loc="lower right")
    return plots._save(figure, out_dir, "roc", "IJB-B / IJB-C 1:1 ROC")


def view(rows: list[IJBRow], figure: dict | None) -> dict:
    """What the templates show: columns, rows with cells in percent, the ROC figure view."""
    return {
        "columns": list(COLUMNS),
        "rows": [
            {
                "label": row.label,
                "source": row.source,
                "target": row.target,
                "flags": row.flags,
                "cells": row.cells,
            }
            for row in rows
        ],
        "figure": figure,
    }
