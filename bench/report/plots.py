"""Report figures (matplotlib, PNG + SVG, byte-reproducible): accuracy bars with error bars per
evaluation set, ROC curves per set, training curves from the run logs.

Figures are drawn on the Agg canvas explicitly (FigureCanvasAgg), never through pyplot, so the
report neither depends on nor changes the process-wide backend."""

from __future__ import annotations

import json
import logging
import textwrap
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import numpy as np

from bench.catalog import Catalog
from bench.core.io import atomic_write_bytes
from bench.report.tables import Row, RunResult, Suite

log = logging.getLogger(__name__)

# Fixed salt and no dates: the same inputs give the same bytes, so reports diff cleanly.
_RC = {"svg.hashsalt": "facebench", "svg.fonttype": "path", "font.size": 9}
_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


@dataclass(frozen=True)
class Plot:
    """One figure written as PNG and SVG."""

    title: str
    png: Path
    svg: Path


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure, out_dir: Path, stem: str, title: str) -> Plot:
    import matplotlib

    out_dir.mkdir(parents=True, exist_ok=True)
    png, svg = out_dir / f"{stem}.png", out_dir / f"{stem}.svg"
    # Drawn into memory, then written atomically: a killed report leaves the previous figure.
    with matplotlib.rc_context(_RC):
        for path, kind, metadata in (
            (png, "png", {"Software": None}),
            (svg, "svg", {"Date": None, "Creator": None}),
        ):
            buffer = BytesIO()
            figure.savefig(buffer, format=kind, metadata=metadata)
            atomic_write_bytes(path, buffer.getvalue())
    return Plot(title=title, png=png, svg=svg)


def _label(row: Row) -> str:
    return row.dataset if row.recipe_label == "-" else f"{row.dataset} ({row.recipe_label})"


def accuracy_bars(suite: Suite, catalog: Catalog, out_dir: Path, stem: str) -> Plot:
    """Grouped bars: one group per evaluation set, one bar per row, error bar = its spread."""
    import matplotlib

    with matplotlib.rc_context(_RC):
        figure = _figure(1.6 + 1.3 * len(suite.targets), 3.6)
        axes = figure.add_subplot()
        positions = np.arange(len(suite.targets))
        width = 0.8 / max(1, len(suite.rows))
        lowest = 100.0
        for index, row in enumerate(suite.rows):
            values = [row.scores[t].value for t in suite.targets]
            spreads = [row.scores[t].spread for t in suite.targets]
            lowest = min(lowest, min(v - s for v, s in zip(values, spreads, strict=True)))
            axes.bar(
                positions + (index - (len(suite.rows) - 1) / 2) * width,
                values,
                width,
                yerr=spreads,
                capsize=2,
                label=_label(row),
                color=_COLOURS[index % len(_COLOURS)],
            )
        # Wrapped: long set names ("Demo look-alike negatives") would run into each other.
        names = [textwrap.fill(_display(catalog, t), 16) for t in suite.targets]
        axes.set_xticks(positions, names)
        axes.set_ylabel("verification accuracy (%)")
        axes.set_ylim(max(0.0, np.floor(lowest / 5.0) * 5.0 - 5.0), 100.0)
        axes.grid(axis="y", alpha=0.3)
        # Outside the axes: a legend inside would hide bars.
        figure.legend(loc="outside lower center", ncols=min(4, len(suite.rows)), fontsize=7)
    return _save(
        figure, out_dir, stem, "Accuracy per evaluation set (error bars: fold std or 95% CI)"
    )


def roc_curves(suite: Suite, catalog: Catalog, out_dir: Path, stem: str) -> tuple[Plot, list[str]]:
    """One ROC panel per evaluation set (first seed of each row); notes for missing curves."""
    import matplotlib

    notes: list[str] = []
    with matplotlib.rc_context(_RC):
        columns = min(3, len(suite.targets))
        lines = -(-len(suite.targets) // columns)
        figure = _figure(3.4 * columns, 3.0 * lines)
        for panel, target in enumerate(suite.targets):
            axes = figure.add_subplot(lines, columns, panel + 1)
            for index, row in enumerate(suite.rows):
                roc = row.runs[0].data["targets"][target].get("roc") or {}
                fpr, tpr = np.asarray(roc.get("fpr", [])), np.asarray(roc.get("tpr", []))
                if fpr.size == 0 or fpr.size != tpr.size:
                    notes.append(f"{row.runs[0].name}: no ROC curve stored for {target}")
                    continue
                axes.plot(
                    fpr, tpr, lw=1.2, label=_label(row), color=_COLOURS[index % len(_COLOURS)]
                )
            axes.set_xscale("symlog", linthresh=1e-3)  # log-like, keeps FPR = 0
            axes.set_xlim(0.0, 1.0)
            axes.set_title(_display(catalog, target))
            axes.set_xlabel("false accept rate")
            axes.set_ylabel("true accept rate")
            axes.grid(alpha=0.3)
            if panel == 0:
                axes.legend(fontsize=7, loc="lower right")
    return _save(figure, out_dir, stem, "ROC curves per evaluation set"), notes


def training_curves(
    row: Row, out_dir: Path, stem: str, search_dirs: list[Path]
) -> tuple[Plot | None, list[str]]:
    """Loss, learning rate and periodic accuracy over steps for every seed of a row."""
    import matplotlib

    logs, notes = [], []
    for run in row.runs:
        records, note = read_log(run, search_dirs)
        if note:
            notes.append(note)
        else:
            logs.append((run, records))
    if not logs:
        return None, notes
    from matplotlib.lines import Line2D

    with matplotlib.rc_context(_RC):
        figure = _figure(10.0, 2.8)
        loss_axes, lr_axes, acc_axes = (figure.add_subplot(1, 3, i) for i in (1, 2, 3))
        for index, (run, records) in enumerate(logs):
            colour = _COLOURS[index % len(_COLOURS)]
            train = [r for r in records if r.get("type") == "train"]
            steps = [r["step"] for r in train]
            loss_axes.plot(
                steps, [r["loss"] for r in train], color=colour, label=f"seed {run.seed}"
            )
            lr_axes.plot(steps, [r["lr"] for r in train], color=colour)
            _plot_eval(acc_axes, records, colour, run.seed)
        for axes, title in (
            (loss_axes, "loss"),
            (lr_axes, "learning rate"),
            (acc_axes, "accuracy (%)"),
        ):
            axes.set_title(title)
            axes.set_xlabel("step")
            axes.grid(alpha=0.3)
        loss_axes.legend(fontsize=7)
        if acc_axes.lines:
            # Colour = seed (as in the loss panel), line style = evaluation set.
            handles = {
                line.get_label().rsplit(" s", 1)[0]: line.get_linestyle() for line in acc_axes.lines
            }
            acc_axes.legend(
                [Line2D([], [], color="black", linestyle=style) for style in handles.values()],
                list(handles),
                fontsize=6,
            )
        else:  # say why the panel is empty rather than leave a blank grid
            acc_axes.text(
                0.5,
                0.5,
                "no periodic verification\nin this run (verify_every = 0)",
                ha="center",
                va="center",
                transform=acc_axes.transAxes,
                fontsize=8,
                color="0.4",
            )
            acc_axes.set_xticks([])
            acc_axes.set_yticks([])
    return _save(figure, out_dir, stem, f"Training curves: {_label(row)}"), notes


def _plot_eval(axes, records: list[dict], colour: str, seed: int | None) -> None:
    """Periodic evaluation accuracy during training, one line style per target."""
    evals = [r for r in records if r.get("type") == "eval"]
    styles = ("-", "--", ":", "-.")
    for index, target in enumerate(sorted({r["target"] for r in evals})):
        points = [(r["step"], 100.0 * r["acc"]) for r in evals if r["target"] == target]
        axes.plot(
            *zip(*points, strict=True), styles[index % 4], color=colour, label=f"{target} s{seed}"
        )


def read_log(run: RunResult, search_dirs: list[Path]) -> tuple[list[dict], str]:
    """The run's log.jsonl records, or a note saying why there are none (never raises)."""
    reference = ((run.run.get("train") or {}).get("log")) or ""
    if not reference:
        return [], f"{run.name}: no training log recorded in the result"
    candidates = (
        [Path(reference)] if Path(reference).is_absolute() else [d / reference for d in search_dirs]
    )
    path = next((c for c in candidates if c.is_file()), None)
    if path is None:
        return [], f"{run.name}: training log {reference} not found; no training curves"
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as error:
            return [], f"{path}: line {number} is not JSON ({error.msg}); no training curves"
    required = {"train": ("step", "loss", "lr"), "eval": ("step", "target", "acc")}
    for number, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            return [], f"{path}: record {number} is not a JSON object; no training curves"
        missing = [k for k in required.get(record.get("type"), ()) if k not in record]
        if missing:
            return [], f"{path}: record {number} lacks {', '.join(missing)}; no training curves"
    if not any(r.get("type") == "train" for r in records):
        return [], f"{path}: no 'train' records; no training curves"
    return records, ""


def _display(catalog: Catalog, target: str) -> str:
    entry = catalog.evaluation.get(target)
    return entry.display_name if entry else target
